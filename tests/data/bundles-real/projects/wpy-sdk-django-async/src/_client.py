# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/_client.py
import json as _json
import asgi
from workers import Request
BASE_URL = None
_with_content_length = None
fetch = None
read_json = None
get_json = None
post_json = None
post_form = None
build_multipart = None
cookie_value = None
