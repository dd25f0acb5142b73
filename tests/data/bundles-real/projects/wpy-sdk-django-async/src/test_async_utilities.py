# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_async_utilities.py
import pytest
from _client import get_json
test_sync_to_async = None
test_async_iterator = None
