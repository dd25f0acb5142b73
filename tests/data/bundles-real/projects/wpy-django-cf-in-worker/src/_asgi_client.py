# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/_asgi_client.py
import json as _json
import asgi as _asgi
from workers import Request
BASE_URL = None
_with_content_length = None
fetch = None
read_json = None
get_json = None
