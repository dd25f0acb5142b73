# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/durable-objects/src/blog/views.py
from django.shortcuts import get_object_or_404, render
from .models import Post
post_list = None
post_detail = None
