# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/durable-objects/src/app/urls.py
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import user_passes_test
from django.core.management import call_command
from django.http import JsonResponse
from django.urls import include, path
is_superuser = None
create_admin_view = None
run_migrations_view = None
urlpatterns = None
