# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/in_worker/worker/src/test_wsgi_handler.py
import pytest

class TestDjangoCFErrorMessages:

    def test_djangocf_get_app_error_message():
        from django_cf import DjangoCF

    def test_djangocf_durable_object_get_app_error_message():
        from django_cf import DjangoCFDurableObject
TestDjangoCFErrorMessages = None
