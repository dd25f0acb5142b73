# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_signals.py
import json
import pytest
from _client import get_json
test_signal_send_and_data_received = None
test_signal_robust = None
test_signal_multiple_calls = None
