# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_workflow.py
import asyncio
import time
import pytest
from js import Object
from pyodide.ffi import JsProxy, to_js
pytestmark = None
TERMINAL = None
_poll = None
_poll_until_settled = None
test_create_with_explicit_id = None
test_get_returns_instance = None
test_status_round_trips_payload = None
test_create_batch = None
test_send_event = None
test_step_implicit_dependencies = None
test_step_concurrent_dependencies = None
test_step_sleep = None
test_step_sleep_until = None
test_step_context = None
test_event_metadata = None
test_step_retry_config = None
test_non_retryable_error = None
test_error_handling_catch = None
_to_js = None
test_create_with_to_js_options = None
test_create_batch_with_to_js_options = None
test_status_round_trips_to_js_payload = None
test_send_event_with_to_js = None
