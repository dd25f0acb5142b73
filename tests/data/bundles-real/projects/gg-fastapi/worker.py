# reduced from garrettgu10/python-workers-demos@ccc9df8acf4f8a67853681a1bbeb849c63fb9a93:fastapi/worker.py
async def on_fetch():
    import asgi

def test():
    import fastapi
from fastapi import FastAPI, Request
from pydantic import BaseModel
on_fetch = None
test = None
app = None
root = None
read_item = None
Item = None
create_item = None
