# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_sync_handlers.py
import pytest
from _client import build_multipart, fetch, get_json, read_json
test_sync_handler_returns_json = None
test_sync_post_handler = None
test_sync_dependency = None
test_sync_background_task = None
test_sync_streaming_response = None
test_sync_streaming_content_type = None
test_single_file_upload = None
test_multiple_file_upload = None
