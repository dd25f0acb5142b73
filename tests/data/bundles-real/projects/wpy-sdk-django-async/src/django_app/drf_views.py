# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/django-async/src/django_app/drf_views.py
from django.urls import path
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response as DRFResponse
from rest_framework.versioning import QueryParameterVersioning
from rest_framework.views import APIView
from django_app.drf_auth import TokenAuthentication
from django_app.drf_throttling import TestAnonThrottle

class SerializerTestView:

    def post():
        from django_app.drf_serializers import ItemSerializer

    def get():
        from django_app.drf_serializers import ItemSerializer

class NestedSerializerView:

    def post():
        from django_app.drf_serializers import OrderSerializer
EchoAPIView = None
function_api_view = None
SerializerTestView = None
NestedSerializerView = None
AuthenticatedView = None
AllowAnyView = None
AdminOnlyView = None
CustomAuthView = None
ThrottledView = None
VersionedView = None
ContentNegotiationView = None
urlpatterns = None
