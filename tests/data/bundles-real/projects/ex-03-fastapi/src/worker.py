# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:03-fastapi/src/worker.py
import jinja2
from fastapi import FastAPI, Request
from workers import WorkerEntrypoint

class Default:

    async def fetch():
        import asgi
environment = None
template = None
app = None
root = None
say_hi = None
env = None
Default = None
