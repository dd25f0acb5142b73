# reduced from ryu22e/python-workers-examples@0345d802a4885e7f8c97193eaf6545a54d1018b2:js-sample/src/entry.py
from js import Headers, Response, fetch, console, URL
API_URL = None
on_fetch = None
