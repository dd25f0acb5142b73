# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/worker.py
import asyncio
import enum
import importlib.util
from contextlib import asynccontextmanager
from pathlib import Path
import pytest
from fastapi import APIRouter, Cookie, Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from fastapi.responses import Response as FastAPIResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pyodide.webloop import WebLoop
from starlette.background import BackgroundTask
import asgi
from workers import Response, WorkerEntrypoint

class Default:

    async def fetch():
        from urllib.parse import urlparse
_noop = None
WebLoop = None
STATIC_DIR = None
PlatformResource = None
_platform_lifespan = None
app = None
_side_effects = None
api_hello = None
health = None
sync_hello = None
sync_echo = None
_get_greeting = None
sync_dep_route = None
_bg_task = None
sync_background_run = None
sync_background_check = None
_sync_chunks = None
sync_stream = None
upload_single = None
upload_multiple = None
AppError = None
app_error_handler = None
ItemModel = None
error_not_found = None
error_dict_detail = None
error_with_headers = None
error_validate_body = None
error_validate_query = None
error_validate_path = None
error_custom_exception = None
error_unhandled = None
response_json_201 = None
response_html = None
response_plain_text = None
response_redirect = None
_async_chunks = None
response_async_stream = None
response_set_cookie = None
response_read_cookie = None
response_read_header = None
response_request_url = None
response_custom_headers = None
response_no_content = None
Colour = None
routing_path_int = None
routing_path_float = None
routing_path_enum = None
routing_path_rest = None
routing_query = None
routing_query_required = None
routing_query_list = None
routing_query_validation = None
routing_put = None
routing_delete = None
routing_patch = None
v1_router = None
v1_info = None
platform_lifespan_state = None
native_file = None
frontend = None
ResultCollector = None
EnvPlugin = None
FastAPIAppPlugin = None
Default = None
