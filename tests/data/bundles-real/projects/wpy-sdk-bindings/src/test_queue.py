# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_queue.py
import asyncio
import pytest

async def _send_all_messages():
    from worker import RECEIVED_MESSAGES
pytestmark = None
_cache = None
_find = None
_send_all_messages = None
test_send_string = None
test_send_dict = None
test_send_number = None
test_send_with_content_type = None
test_send_none = None
test_send_bool = None
test_send_list = None
test_send_empty_string = None
test_send_nested_dict = None
test_send_batch = None
test_send_batch_with_options = None
