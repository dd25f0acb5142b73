# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_streaming.py
import pytest
from _client import fetch
test_streaming_generators = None
test_streaming_content_type = None
