# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/todos/models.py
from django.db import models
Todo = None
