# reduced from danlapid/python-workers-mcp@57e8d360934eee6c0502cc55806194a88cf4099b:src/exceptions.py
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from logger import logger
http_exception = None
