# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:18-django/src/hello_django/settings.py
SECRET_KEY = None
DEBUG = None
ALLOWED_HOSTS = None
ROOT_URLCONF = None
MIDDLEWARE = None
INSTALLED_APPS = None
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = None
