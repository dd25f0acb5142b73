# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_do.py
import pytest
from pyodide.ffi import JsProxy
from workers import env as top_level_env
_get_stub = None
test_storage_put_and_get = None
test_storage_get_nonexistent = None
test_storage_put_multiple = None
test_storage_get_multiple = None
test_storage_delete = None
test_storage_delete_multiple = None
test_storage_list = None
test_storage_list_with_options = None
test_storage_delete_all = None
test_storage_value_types = None
test_sql_exec_and_query = None
test_sql_cursor_one = None
test_sql_cursor_column_names = None
test_sql_cursor_rows_read_written = None
test_sql_cursor_iter = None
test_sql_cursor_toarray_getitem_int = None
test_sql_database_size = None
test_alarm_set_get_delete = None
test_transaction = None
test_ctx_id = None
test_namespace_id_from_name = None
test_namespace_new_unique_id = None
test_namespace_id_from_string = None
test_rpc_echo = None
test_rpc_dict = None
test_rpc_dict_via_top_level_env = None
test_stub_id = None
test_fetch = None
test_block_concurrency_while = None
test_storage_sync = None
test_id_equals = None
