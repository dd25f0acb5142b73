# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/test_file_uploads.py
import pytest
from _client import build_multipart, get_json
_normalize_files_payload = None
test_single_file_upload = None
test_multiple_file_upload = None
