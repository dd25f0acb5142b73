# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/auth_backend.py
import hashlib
from django.contrib.auth.backends import BaseBackend
USERS = None
_USERNAME_BY_PK = None
_PkField = None
_Meta = None
InMemoryUser = None
InMemoryBackend = None
