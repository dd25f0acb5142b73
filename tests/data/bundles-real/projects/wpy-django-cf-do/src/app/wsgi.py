# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/durable-objects/src/app/wsgi.py
import os
from django.core.wsgi import get_wsgi_application
application = None
