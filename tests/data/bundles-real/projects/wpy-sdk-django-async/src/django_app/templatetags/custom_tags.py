# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/templatetags/custom_tags.py
from django import template
register = None
greet = None
multiply = None
