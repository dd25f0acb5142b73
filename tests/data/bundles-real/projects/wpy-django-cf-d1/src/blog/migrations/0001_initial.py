# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/d1/src/blog/migrations/0001_initial.py
import django.utils.timezone
from django.db import migrations, models
insert_dummy_blog_post = None
Migration = None
