# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/forms.py
from django.core.exceptions import ValidationError
from django.forms import BooleanField, CharField, ChoiceField, EmailField, Form, IntegerField, Textarea
ContactForm = None
