# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_cors.py
import pytest
from _client import fetch
ORIGIN_HEADER = None
CREDENTIALS_HEADER = None
test_cors_allowed_origins = None
test_cors_disallowed_origin = None
test_cors_no_origin_no_headers = None
