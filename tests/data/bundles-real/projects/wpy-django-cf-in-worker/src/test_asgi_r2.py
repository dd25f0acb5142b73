# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_asgi_r2.py
from uuid import uuid4
import pytest
from _asgi_client import fetch
from django.core.files.base import ContentFile
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path
from django_cf.storage import R2Storage
r2_view = None
urlpatterns = None
_fetch_r2_response = None
test_asgi_r2_save_and_read = None
