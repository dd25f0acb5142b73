# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:17-dynamic-py-py/src/entry.py
from js import Object
from pyodide.ffi import create_proxy, to_js
from workers import WorkerEntrypoint
DYNAMIC_WORKER_SOURCE = None
_worker_code = None
Default = None
