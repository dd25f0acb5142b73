# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:14-websocket-stream-consumer/src/entry.py
import json
import time
from urllib.parse import urlparse
import js
from pyodide.ffi import create_proxy
from workers import DurableObject, Response, WorkerEntrypoint
BlueskyFirehoseConsumer = None
Default = None
