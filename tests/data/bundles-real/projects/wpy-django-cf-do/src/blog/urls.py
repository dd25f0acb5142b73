# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/durable-objects/src/blog/urls.py
from django.urls import path
from django.views.generic import TemplateView
from . import views
app_name = None
urlpatterns = None
