# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_kv.py
import json
import pytest
_cleanup_kv = None
test_put_and_get_text = None
test_get_nonexistent = None
test_put_and_get_json = None
test_put_overwrite = None
test_put_empty_value = None
test_delete = None
test_delete_nonexistent = None
test_put_with_metadata = None
test_get_with_metadata_nonexistent = None
test_put_with_expiration_ttl = None
test_list_basic = None
test_list_with_prefix = None
test_list_with_limit_and_cursor = None
test_list_empty_prefix = None
test_list_with_metadata = None
test_get_with_metadata_has_metadata = None
test_get_type_as_options_dict = None
test_get_arraybuffer = None
test_get_multiple_keys = None
test_get_multiple_keys_json = None
test_put_dict_expiration_ttl = None
test_put_dict_metadata = None
test_none_options_put = None
test_none_options_list = None
test_binding_not_iterable = None
test_binding_no_len = None
test_binding_is_truthy = None
