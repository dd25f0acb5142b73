# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/servers/r2/src/app/urls.py
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import user_passes_test
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db.models.functions import TruncDay, TruncHour, TruncMonth, TruncQuarter, TruncWeek, TruncYear
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.urls import include, path
from .models import BankTransaction

def date_trunc_test_view():
    try:
        pass
    except Exception as e:
        import traceback

def test_decimal_transaction_view():
    try:
        if request.method == 'POST':
            from decimal import Decimal
    except Exception as e:
        import traceback
is_superuser = None
create_admin_view = None
run_migrations_view = None
r2_upload_view = None
r2_download_view = None
r2_exists_view = None
r2_delete_view = None
r2_listdir_view = None
r2_size_view = None
date_trunc_test_view = None
date_trunc_create_transaction_view = None
date_trunc_clear_transactions_view = None
test_decimal_transaction_view = None
urlpatterns = None
