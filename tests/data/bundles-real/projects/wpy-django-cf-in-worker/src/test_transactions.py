# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_transactions.py
import contextlib
from unittest.mock import patch
import pytest
from django.db import connections, transaction
from django.db.transaction import TransactionManagementError

def _capture_run_query():
    if alias == 'do':
        from django_cf.db.base_engine import CFResult
ALIASES = None
TRANSACTION_CONTROL_SQL = None
_get_connection = None
_restore_connection_state = None
_select_one = None
_capture_run_query = None
test_ensure_connection_starts_in_autocommit = None
test_on_commit_outside_atomic_executes_immediately = None
test_on_commit_inside_successful_atomic_defers_until_exit = None
test_failed_outer_atomic_discards_on_commit_and_recovers = None
test_caught_inner_atomic_exception_blocks_queries_until_outer_exit = None
test_nested_atomic_emits_no_transaction_control_sql = None
