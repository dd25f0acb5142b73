# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/conftest.py
import pytest
from django.core.cache import cache
from workers import env as _env
clear_cache = None
env = None
