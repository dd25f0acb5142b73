# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/worker_durable_object.py
from django.db import connections
from workers import DurableObject
from django_cf import DjangoCFDurableObject
from django_cf.db.backends.do.storage import get_storage
TestDurableObject = None
