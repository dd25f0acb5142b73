# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_drf_auth_permissions.py
import pytest
from _client import fetch, get_json
test_auth_and_permission_cases = None
