# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_do_backend.py
import pytest
from django.db import connections

class TestDODatabaseWrapperConfiguration:

    def test_vendor_name():
        from django_cf.db.backends.do.base import DatabaseWrapper
D1_BACKEND = None
DO_BACKEND = None
get_do_stub = None
TestDODatabaseWrapperProcessQuery = None
TestDODatabaseWrapperConfiguration = None
TestDOMissingDateTruncBug = None
TestDOStorageInitialization = None
TestDOQueryExecution = None
TestDOExceptionHandling = None
TestDOParamConversion = None
TestDOPragmaReturnTypeBug = None
