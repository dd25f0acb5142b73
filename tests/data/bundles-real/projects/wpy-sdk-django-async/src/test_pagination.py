# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_pagination.py
import pytest
from _client import get_json
test_paginator_basic_pages = None
test_paginator_invalid_page = None
test_paginator_out_of_range = None
