# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_r2.py
import json
import pytest

async def test_body_direct_to_response():
    from workers import Response
_cleanup_r2 = None
test_put_and_get_text = None
test_put_and_get_json = None
test_put_with_http_metadata = None
test_put_with_custom_metadata = None
test_head_object = None
test_get_nonexistent = None
test_head_nonexistent = None
test_delete_single = None
test_delete_multiple = None
test_list_basic = None
test_list_with_prefix = None
test_list_with_limit_and_cursor = None
test_list_with_delimiter = None
test_overwrite_object = None
test_put_empty_body = None
test_get_range_offset_length = None
test_get_range_suffix = None
test_r2object_properties = None
test_multipart_upload = None
test_multipart_abort = None
test_put_dict_custom_metadata = None
test_list_dict_prefix = None
test_none_options_put = None
test_none_options_list = None
test_body_direct_to_response = None
