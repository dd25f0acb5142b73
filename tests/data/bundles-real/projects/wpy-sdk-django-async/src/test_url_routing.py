# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_url_routing.py
import json
import pytest
from _client import fetch, get_json
test_path_int_converter = None
test_re_path = None
test_include_namespace = None
test_reverse_url = None
test_unmatched_url_404 = None
test_query_string_preserved = None
test_path_basic = None
