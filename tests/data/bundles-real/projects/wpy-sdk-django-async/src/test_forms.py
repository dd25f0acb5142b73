# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_forms.py
import json
import pytest
from _client import fetch, post_form
test_form_validation = None
test_form_get_renders_html = None
