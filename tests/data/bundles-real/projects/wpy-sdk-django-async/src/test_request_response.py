# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_request_response.py
import json
import pytest
from _client import fetch, get_json, post_form, post_json
test_request_method = None
test_request_get_params = None
test_request_post_bodies = None
test_request_headers = None
test_request_path_and_content_type = None
test_response_statuses = None
test_json_response_dict = None
test_response_custom_headers = None
