# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:07-durable-objects/src/entry.py
from urllib.parse import urlparse
from pyodide.ffi import to_js
from workers import DurableObject, Response, WorkerEntrypoint
List = None
Default = None
