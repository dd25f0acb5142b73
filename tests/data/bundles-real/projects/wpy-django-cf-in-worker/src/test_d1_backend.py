# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_d1_backend.py
import pytest
from django.db import connections

class TestD1DatabaseWrapperConfiguration:

    def test_vendor_name():
        from django_cf.db.backends.d1.base import DatabaseWrapper

    def test_display_name():
        from django_cf.db.backends.d1.base import DatabaseWrapper

class TestD1GetConnectionParams:

    def test_missing_binding_raises_error():
        from django.core.exceptions import ImproperlyConfigured
        from django_cf.db.backends.d1.base import DatabaseWrapper
D1_BACKEND = None
TestD1DatabaseWrapperProcessQuery = None
TestD1DatabaseWrapperConfiguration = None
TestD1GetConnectionParams = None
TestD1ExceptionHandling = None
TestD1RunQuery = None
TestD1ParameterHandling = None
