# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/d1/src/blog/admin.py
from django.contrib import admin
from .models import Post
