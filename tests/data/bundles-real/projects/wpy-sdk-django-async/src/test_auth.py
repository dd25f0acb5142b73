# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_auth.py
import pytest
from _client import cookie_value, fetch, get_json, post_json, read_json
_login = None
test_auth_login_success = None
test_auth_login_failure = None
test_auth_user_anonymous = None
test_auth_user_after_login = None
test_auth_logout = None
test_auth_protected_access = None
