# reduced from danlapid/python-workers-mcp@57e8d360934eee6c0502cc55806194a88cf4099b:src/worker.py
import sys

def setup_server():
    from mcp.server.fastmcp import FastMCP
    from starlette.middleware.cors import CORSMiddleware
    from exceptions import HTTPException, http_exception

async def on_fetch():
    import asgi
setup_server = None
on_fetch = None
