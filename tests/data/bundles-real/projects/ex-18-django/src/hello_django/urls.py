# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:18-django/src/hello_django/urls.py
from django.http import JsonResponse
from django.urls import path
root = None
urlpatterns = None
