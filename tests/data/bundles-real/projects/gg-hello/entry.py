# reduced from garrettgu10/python-workers-demos@ccc9df8acf4f8a67853681a1bbeb849c63fb9a93:hello/entry.py
from js import Response
on_fetch = None
