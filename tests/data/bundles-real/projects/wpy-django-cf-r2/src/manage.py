# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/tests/servers/r2/src/manage.py
import os
import sys

def main():
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        pass
main = None
