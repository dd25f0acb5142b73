# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/worker.py
import asyncio
import contextlib
import functools
import importlib.util
import io
import os
from pathlib import Path
from urllib.parse import urlparse
import django
import django.conf
import pytest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from pyodide.webloop import WebLoop
from worker_durable_object import TestDurableObject
from workers import Response, WorkerEntrypoint
from django_cf import DjangoCF

def _django_wsgi_app():
    from django.core.wsgi import get_wsgi_application
BASE_DIR = None
_noop = None
WebLoop = None
_django_wsgi_app = None
_django_binary_view = None
_django_streaming_view = None
_django_cookies_view = None
_django_meta_view = None
_django_body_view = None
_django_headers_view = None
urlpatterns = None
ResultCollector = None
EnvPlugin = None
Default = None
