# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_sessions.py
import pytest
from _client import cookie_value, fetch, get_json, post_json
test_session_set_and_get_values = None
test_session_flush = None
test_session_overwrites = None
test_session_cookie_present = None
test_session_empty_initially = None
