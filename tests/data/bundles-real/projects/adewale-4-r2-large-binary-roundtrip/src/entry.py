# reduced from adewale/python-workers-issues@a5fd1e3577583e3408a73b20af49208c943c40b0:4-r2-large-binary-roundtrip/src/entry.py
import json
import js
from fastapi import FastAPI, Request
from pyodide.ffi import to_js
from starlette.responses import JSONResponse, Response, StreamingResponse
from workers import WorkerEntrypoint

class Default:

    async def fetch():
        import asgi
app = None
_to_py_bytes = None
_read_all_chunks = None
root = None
seed_data = None
seed_small = None
asgi_full_body = None
streaming_read = None
compare_paths = None
probe_seed = None
probe_roundtrip = None
Default = None
