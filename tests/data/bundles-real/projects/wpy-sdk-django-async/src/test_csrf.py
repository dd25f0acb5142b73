# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_csrf.py
import re
import pytest
from _client import cookie_value, fetch, post_json, read_json
test_csrf_form_renders_token = None
test_post_without_csrf_rejected = None
test_csrf_exempt_allows_post = None
test_csrf_form_token_post = None
