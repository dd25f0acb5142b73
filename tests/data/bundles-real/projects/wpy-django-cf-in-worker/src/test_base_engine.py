# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_base_engine.py
from decimal import Decimal
from unittest.mock import MagicMock, patch
import pytest

class TestCFResult:

    def test_init():
        from django_cf.db.base_engine import CFResult

    def test_iter():
        from django_cf.db.base_engine import CFResult

    def test_set_lastrowid():
        from django_cf.db.base_engine import CFResult

    def test_set_rowcount():
        from django_cf.db.base_engine import CFResult

    def test_fetchone_with_data():
        from django_cf.db.base_engine import CFResult

    def test_fetchone_empty():
        from django_cf.db.base_engine import CFResult

    def test_fetchall():
        from django_cf.db.base_engine import CFResult

    def test_fetchall_empty():
        from django_cf.db.base_engine import CFResult

    def test_fetchmany_default():
        from django_cf.db.base_engine import CFResult

    def test_fetchmany_specific_size():
        from django_cf.db.base_engine import CFResult

    def test_fetchmany_non_positive_size_does_not_advance():
        from django_cf.db.base_engine import CFResult

    def test_fetchmany_more_than_available():
        from django_cf.db.base_engine import CFResult

    def test_fetchone_then_fetchall_returns_remaining_rows():
        from django_cf.db.base_engine import CFResult

    def test_from_object_with_list_rows():
        from django_cf.db.base_engine import CFResult

    def test_from_object_with_dict_rows():
        from django_cf.db.base_engine import CFResult

    def test_from_object_insert_rowcount():
        from django_cf.db.base_engine import CFResult

    def test_from_object_update_rowcount():
        from django_cf.db.base_engine import CFResult

    def test_from_object_delete_rowcount():
        from django_cf.db.base_engine import CFResult

    def test_from_object_select_rowcount():
        from django_cf.db.base_engine import CFResult

    def test_from_object_lastrowid():
        from django_cf.db.base_engine import CFResult

class TestIsReadOnlyQuery:

    def test_select_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_insert_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_update_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_delete_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_create_table_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_alter_table_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_drop_table_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_replace_query():
        from django_cf.db.base_engine import is_read_only_query

    def test_empty_query():
        from django_cf.db.base_engine import is_read_only_query

class TestReplaceDateTruncInSql:

    def test_no_date_trunc():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_django_date_trunc_replacement():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_django_datetime_trunc_replacement():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_year_truncation_in_case():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_month_truncation_in_case():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_day_truncation_in_case():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

    def test_multiple_date_truncs():
        from django_cf.db.base_engine import replace_date_trunc_in_sql

class TestCFDatabase:

    def test_connect():
        from django_cf.db.base_engine import CFDatabase

    def test_cursor_returns_self():
        from django_cf.db.base_engine import CFDatabase

    def test_commit_does_nothing():
        from django_cf.db.base_engine import CFDatabase

    def test_rollback_does_nothing():
        from django_cf.db.base_engine import CFDatabase

    def test_close_does_nothing():
        from django_cf.db.base_engine import CFDatabase

    def test_defer_foreign_keys():
        from django_cf.db.base_engine import CFDatabase

    def test_execute_converts_boolean_true():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_execute_converts_boolean_false():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_execute_converts_decimal_to_string():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_execute_no_params():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_fetchone_delegates_to_result():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_fetchall_delegates_to_result():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_lastrowid_property():
        from django_cf.db.base_engine import CFDatabase, CFResult

    def test_rowcount_property():
        from django_cf.db.base_engine import CFDatabase, CFResult

class TestCFDatabaseFeatures:

    def test_transactions_disabled():
        from django_cf.db.base_engine import CFDatabaseFeatures

    def test_savepoints_disabled():
        from django_cf.db.base_engine import CFDatabaseFeatures

    def test_constraint_checks_disabled():
        from django_cf.db.base_engine import CFDatabaseFeatures

    def test_max_query_params():
        from django_cf.db.base_engine import CFDatabaseFeatures

    def test_bulk_insert_enabled():
        from django_cf.db.base_engine import CFDatabaseFeatures

class TestCFDatabaseWrapper:

    def test_get_database_version():
        from django_cf.db.base_engine import CFDatabaseWrapper

    def test_close_does_nothing():
        from django_cf.db.base_engine import CFDatabaseWrapper

    def test_savepoint_not_allowed():
        from django_cf.db.base_engine import CFDatabaseWrapper

    def test_start_transaction_under_autocommit_is_noop():
        from django_cf.db.base_engine import CFDatabaseWrapper

    def test_is_usable_always_true():
        from django_cf.db.base_engine import CFDatabaseWrapper

    def test_run_query_not_implemented():
        from django_cf.db.base_engine import CFDatabaseWrapper

class TestCFDatabaseOperations:

    def test_bulk_insert_sql():
        from django_cf.db.base_engine import CFDatabaseOperations

    def test_last_executed_query_no_params():
        from django_cf.db.base_engine import CFDatabaseOperations

    def test_last_executed_query_with_params():
        from django_cf.db.base_engine import CFDatabaseOperations

    def test_last_executed_query_catches_formatting_errors():
        from django_cf.db.base_engine import CFDatabaseOperations

    def test_last_executed_query_does_not_catch_keyboard_interrupt():
        from django_cf.db.base_engine import CFDatabaseOperations

class TestCFSQLCompiler:

    def test_replace_date_trunc_functions_year():
        from django_cf.db.base_engine import CFSQLCompiler

    def test_replace_date_trunc_functions_month():
        from django_cf.db.base_engine import CFSQLCompiler

    def test_replace_date_trunc_functions_day():
        from django_cf.db.base_engine import CFSQLCompiler

    def test_replace_date_trunc_functions_hour():
        from django_cf.db.base_engine import CFSQLCompiler

    def test_replace_date_trunc_functions_unknown_kind():
        from django_cf.db.base_engine import CFSQLCompiler
TestCFResult = None
TestIsReadOnlyQuery = None
TestReplaceDateTruncInSql = None
TestCFDatabase = None
TestCFDatabaseFeatures = None
TestCFDatabaseWrapper = None
TestCFDatabaseOperations = None
TestCFSQLCompiler = None
