# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/servers/r2/src/app/models.py
from django.db import models
from django.utils.translation import gettext_lazy as _
BankTransaction = None
