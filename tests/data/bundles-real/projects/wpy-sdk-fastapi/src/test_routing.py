# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_routing.py
import pytest
from _client import fetch, get_json, read_json
test_path_param_int = None
test_path_param_int_invalid = None
test_path_param_float = None
test_path_param_enum = None
test_path_param_enum_invalid = None
test_path_param_rest = None
test_query_param_optional_present = None
test_query_param_optional_absent = None
test_query_param_required_missing = None
test_query_param_required_present = None
test_query_param_list = None
test_query_param_list_empty = None
test_query_param_validation_too_short = None
test_query_param_validation_ok = None
test_put_method = None
test_delete_method = None
test_patch_method = None
test_api_router_with_prefix = None
