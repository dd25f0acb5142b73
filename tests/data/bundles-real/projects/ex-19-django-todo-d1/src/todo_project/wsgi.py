# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/todo_project/wsgi.py
import os
from django.core.wsgi import get_wsgi_application
application = None
