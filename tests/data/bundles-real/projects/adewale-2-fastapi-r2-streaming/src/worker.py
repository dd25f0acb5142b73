# reduced from adewale/python-workers-issues@a5fd1e3577583e3408a73b20af49208c943c40b0:2-fastapi-r2-streaming/src/worker.py
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pyodide.ffi import to_js
from starlette.responses import Response
from workers import WorkerEntrypoint

class Default:

    async def fetch():
        import asgi
app = None
_to_py_bytes = None
root = None
seed_data = None
_stream_r2_body = None
stream_from_r2 = None
read_from_r2 = None
compare_approaches = None
Default = None
