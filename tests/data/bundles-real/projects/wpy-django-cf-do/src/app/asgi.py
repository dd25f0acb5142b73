# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/durable-objects/src/app/asgi.py
import os
from django.core.asgi import get_asgi_application
application = None
