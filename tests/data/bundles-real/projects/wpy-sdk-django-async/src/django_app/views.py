# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/views.py
import json
from asgiref.sync import sync_to_async
from django.contrib.auth import aauthenticate, alogin, alogout
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.paginator import Paginator
from django.dispatch import Signal
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie
from django_app.forms import ContactForm
custom_signal = None
signal_events = None
signal_receiver = None
_json_body = None
hello = None
status_code = None
echo_method = None
echo_headers = None
echo_query = None
echo_body = None
echo_form = None
item_detail = None
user_detail = None
post_detail = None
uuid_detail = None
archive_year = None
reverse_test = None
template_hello = None
template_context = None
template_inheritance = None
form_validate = None
form_process = None
trigger_404 = None
trigger_403 = None
trigger_400 = None
trigger_500 = None
custom_handler400 = None
custom_handler403 = None
custom_handler404 = None
custom_handler500 = None
session_set = None
session_get = None
session_flush = None
_async_stream = None
_sync_stream = None
stream_async_gen = None
stream_sync_gen = None
csrf_form = None
csrf_exempt_view = None
cache_set = None
cache_get = None
cache_delete = None
cache_clear = None
signal_send = None
signal_robust = None
auth_login = None
auth_logout = None
auth_user = None
auth_protected = None
auth_permission = None
_sync_utility = None
sync_to_async_view = None
_async_numbers = None
async_iter_view = None
upload_single = None
upload_multiple = None
paginate_view = None
AsyncCBV = None
