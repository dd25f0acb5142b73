# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/django-cf/templates/d1/src/app/settings.py
import os
from pathlib import Path
BASE_DIR = None
SECRET_KEY = None
DEBUG = None
ALLOWED_HOSTS = None
INSTALLED_APPS = None
MIDDLEWARE = None
ROOT_URLCONF = None
TEMPLATES = None
WSGI_APPLICATION = None
DATABASES = None
AUTH_PASSWORD_VALIDATORS = None
LANGUAGE_CODE = None
TIME_ZONE = None
USE_I18N = None
USE_TZ = None
STATIC_URL = None
STATIC_ROOT = None
DEFAULT_AUTO_FIELD = None
