# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_drf_content_negotiation.py
import json
import pytest
from _client import post_form, post_json
test_content_negotiation_cases = None
