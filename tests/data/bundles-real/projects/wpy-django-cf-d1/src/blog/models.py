# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/d1/src/blog/models.py
from django.db import models
from django.utils import timezone
Post = None
