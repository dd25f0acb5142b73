# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/entry.py
import os
from django_cf import DjangoCF
from workers import WorkerEntrypoint

class Default:

    def get_app():
        from todo_project.wsgi import application
Default = None
