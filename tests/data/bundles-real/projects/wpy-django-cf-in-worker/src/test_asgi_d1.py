# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_asgi_d1.py
import pytest
from _asgi_client import get_json
from django.core.handlers.asgi import ASGIHandler
from django.db import connections, models
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path
D1_TABLE = None
AsgiD1Record = None
create_and_read_view = None
count_view = None
exists_view = None
update_view = None
iterate_view = None
urlpatterns = None
_fetch_d1_response = None
_d1_connection = None
_drop_d1_table = None
_create_d1_table = None
_run_d1_request = None
test_asgi_d1_orm_create_and_read = None
test_asgi_d1_orm_count_returns_row_total = None
test_asgi_d1_orm_exists_reports_matching_and_missing_filters = None
test_asgi_d1_orm_update_returns_affected_rows_and_persists_value = None
test_asgi_d1_orm_async_iteration_returns_all_rows_ascending = None
test_asgi_d1_orm_async_iteration_returns_all_rows_descending = None
