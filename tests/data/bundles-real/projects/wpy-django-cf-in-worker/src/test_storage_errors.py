# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_storage_errors.py
from datetime import datetime
from io import BytesIO
from types import SimpleNamespace
from uuid import uuid4
import django.conf
import pytest
import workers

def make_r2_storage():
    from django_cf.storage.r2 import R2Storage

def make_live_r2_storage():
    try:
        from pyodide.ffi import run_sync as pyodide_run_sync
    except ImportError:
        pass

class TestR2FileClass:

    def test_r2file_read_mode():
        from django_cf.storage.r2 import R2File

    def test_r2file_write_raises_in_read_mode():
        from django_cf.storage.r2 import R2File

    def test_r2file_write_allowed_in_write_mode():
        from django_cf.storage.r2 import R2File

    def test_r2file_close():
        from django_cf.storage.r2 import R2File
unique_name = None
make_r2_storage = None
make_live_r2_storage = None
save_bytes = None
TestR2StorageInitialization = None
TestR2StorageFullPath = None
TestR2StorageUrlErrors = None
TestR2StorageReadErrors = None
TestR2StorageExistsErrors = None
TestR2StorageSizeErrors = None
TestR2StorageGetModifiedTimeErrors = None
TestR2StorageGetAvailableName = None
TestR2FileClass = None
TestR2StorageSaveEdgeCases = None
TestR2StorageListdirEdgeCases = None
TestR2StorageTimeMethodsFallback = None
