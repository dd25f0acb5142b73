# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:19-django-todo-d1/src/todos/views.py
import json
from django.http import HttpResponse, JsonResponse
from .models import Todo
json_error = None
serialize_todo = None
parse_json_body = None
validate_title = None
validate_todo_payload = None
get_todo = None
health_view = None
todo_list_view = None
todo_detail_view = None
