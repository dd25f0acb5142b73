# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_staticfiles.py
import pytest
from _client import fetch, get_json, read_json
test_staticfiles_serves_text = None
test_staticfiles_serves_html = None
test_staticfiles_guesses_content_type = None
test_staticfiles_serves_json = None
test_staticfiles_sets_content_length = None
test_staticfiles_sets_validators = None
test_staticfiles_honours_if_none_match = None
test_staticfiles_missing_file_returns_404 = None
test_file_response_serves_file = None
test_file_response_sets_content_length = None
test_api_route_still_works = None
