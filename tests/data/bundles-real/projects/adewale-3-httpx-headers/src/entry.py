# reduced from adewale/python-workers-issues@a5fd1e3577583e3408a73b20af49208c943c40b0:3-httpx-headers/src/entry.py
import json
from js import Object, fetch
from pyodide.ffi import to_js
from workers import Response, WorkerEntrypoint

class Default:

    async def _test():
        import httpx
ECHO_URL = None
HEADERS = None
Default = None
