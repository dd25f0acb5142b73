# reduced from ryu22e/python-workers-examples@0345d802a4885e7f8c97193eaf6545a54d1018b2:environment-variables/src/entry.py
from js import Response
on_fetch = None
