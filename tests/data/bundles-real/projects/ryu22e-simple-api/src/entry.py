# reduced from ryu22e/python-workers-examples@0345d802a4885e7f8c97193eaf6545a54d1018b2:simple-api/src/entry.py
from js import Headers, Response
from pyodide.ffi import JsException
on_fetch = None
