# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_cloudflare_access.py
import base64
import importlib
import json
import time
from types import SimpleNamespace
from unittest.mock import MagicMock
import pytest

def make_middleware():
    from django.conf import settings
base64url_encode = None
create_jwt_parts = None
create_test_jwt = None
make_request = None
middleware_module = None
make_middleware = None
TestJWTExtraction = None
TestTeamNameExtraction = None
TestExemptPaths = None
TestMiddlewareInitialization = None
TestBase64UrlDecode = None
TestJWTDecodeAndVerify = None
TestRSAKeyProcessing = None
TestUserProvisioning = None
