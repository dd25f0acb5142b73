# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/todo_project/settings.py
SECRET_KEY = None
DEBUG = None
ALLOWED_HOSTS = None
ROOT_URLCONF = None
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = None
INSTALLED_APPS = None
MIDDLEWARE = None
DATABASES = None
TIME_ZONE = None
