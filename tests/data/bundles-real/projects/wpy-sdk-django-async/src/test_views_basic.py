# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_views_basic.py
import json
import pytest
from _client import fetch, post_json
test_simple_async_view = None
test_status_codes = None
test_echo_method = None
test_async_cbv_get = None
test_async_cbv_post = None
test_head_request = None
test_options_returns_allowed = None
