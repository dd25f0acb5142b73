# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/worker.py
import asyncio
import importlib.util
from pathlib import Path
import pytest
from pyodide.webloop import WebLoop
import asgi
from workers import Response, WorkerEntrypoint
import django.conf
import django
from django.core.handlers.asgi import ASGIHandler

class Default:

    async def fetch():
        from urllib.parse import urlparse
BASE_DIR = None
TEMPLATES_DIR = None
_noop = None
WebLoop = None
django_asgi_app = None
ResultCollector = None
EnvPlugin = None
DjangoAppPlugin = None
Default = None
