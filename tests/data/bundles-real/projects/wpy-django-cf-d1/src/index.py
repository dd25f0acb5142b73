# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/d1/src/index.py
from app.wsgi import application
from workers import WorkerEntrypoint
from django_cf import DjangoCF
Default = None
