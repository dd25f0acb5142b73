# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/middleware.py
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
CustomAsyncMiddleware = None
