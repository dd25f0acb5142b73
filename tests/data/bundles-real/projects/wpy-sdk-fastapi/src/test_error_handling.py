# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_error_handling.py
import pytest
from _client import fetch, get_json, post_json, read_json
test_http_exception_404 = None
test_http_exception_dict_detail = None
test_http_exception_custom_headers = None
test_validation_error_missing_body_fields = None
test_validation_error_wrong_body_types = None
test_validation_error_body_loc = None
test_validation_error_query_param = None
test_validation_error_path_param = None
test_valid_body_passes = None
test_custom_exception_handler = None
test_unhandled_exception_returns_500 = None
