# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:18-django/src/entry.py
import os
from workers import WorkerEntrypoint, wsgi
from hello_django.wsgi import application
Default = None
