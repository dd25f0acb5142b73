# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/worker_durable_object.py
from contextlib import contextmanager
from workers import DurableObject

class TestDurableObject:

    async def fetch():
        from urllib.parse import urlparse
        if path == '/ping':
            from workers import Response
        from workers import Response

    async def test_alarm_set_get_delete():
        from datetime import datetime, timedelta
TestDurableObject = None
