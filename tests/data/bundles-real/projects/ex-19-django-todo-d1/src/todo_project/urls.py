# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/todo_project/urls.py
from django.urls import path
from todos.views import health_view, todo_detail_view, todo_list_view
urlpatterns = None
