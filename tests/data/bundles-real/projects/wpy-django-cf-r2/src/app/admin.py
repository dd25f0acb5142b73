# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/servers/r2/src/app/admin.py
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from .models import BankTransaction
BankTransactionAdmin = None
