# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/worker.py
import jinja2
from fastapi import FastAPI, Request

async def on_fetch():
    import asgi
environment = None
template = None
on_fetch = None
app = None
root = None
say_hi = None
env = None
