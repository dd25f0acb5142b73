# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:11-opengraph/src/entry.py
from html import escape
from urllib.parse import urlparse
from js import HTMLRewriter
from pyodide.ffi import create_proxy
from workers import Request, WorkerEntrypoint, fetch
MetaTagInjector = None
ExistingMetaRemover = None
Default = None
