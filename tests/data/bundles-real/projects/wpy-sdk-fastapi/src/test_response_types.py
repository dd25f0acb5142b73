# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_response_types.py
import pytest
from _client import fetch, get_json
test_json_response_201 = None
test_html_response = None
test_plain_text_response = None
test_redirect_response = None
test_async_streaming_response = None
test_async_streaming_content_type = None
test_set_cookie = None
test_read_cookie = None
test_read_cookie_missing = None
test_read_header = None
test_read_header_missing = None
test_custom_response_headers = None
test_request_url_path = None
test_no_content_204 = None
