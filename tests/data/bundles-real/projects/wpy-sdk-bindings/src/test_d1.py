# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_d1.py
import pytest
from pyodide.ffi import JsException
from workers.rpc import _BindingWrapper, _RpcStubWrapper

async def test_bind_null():
    import sys
TEST_TABLE = None
TEST_TABLE_TYPES = None
TEST_TABLE_BATCH = None
EXEC_TABLE = None
EXEC_MULTI_TABLE = None
_cleanup_d1 = None
_ensure_tables = None
test_chained_statements_stay_binding_wrappers = None
test_insert_and_select_via_run = None
test_all_returns_results = None
test_first_returns_single_row = None
test_first_with_column_name = None
test_first_on_empty_result = None
test_raw_returns_arrays = None
test_raw_with_column_names = None
test_bind_types = None
test_exec_create_and_query = None
test_exec_multiple_statements = None
test_batch_multiple_inserts = None
test_run_metadata_fields = None
test_update_row = None
test_delete_row = None
test_session_prepare_and_query = None
test_session_bookmark = None
test_session_batch = None
test_invalid_sql_raises_error = None
test_raw_dict_column_names = None
test_bind_null = None
test_none_options_raw = None
