# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_caching.py
import pytest
from _client import get_json, post_json, read_json
test_cache_set_and_get = None
test_cache_delete_and_missing = None
test_cache_clear = None
test_cache_overwrite = None
