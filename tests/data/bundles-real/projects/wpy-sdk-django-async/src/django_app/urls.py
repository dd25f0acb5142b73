# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/urls.py
from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter
from django_app import views
router = None
urlpatterns = None
handler400 = None
handler403 = None
handler404 = None
handler500 = None
