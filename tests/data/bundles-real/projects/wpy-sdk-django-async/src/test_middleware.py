# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_middleware.py
import pytest
from _client import fetch, post_json
test_middleware_headers = None
test_session_middleware_cookie = None
