# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:15-chatroom/src/entry.py
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse
from js import WebSocketPair
from workers import DurableObject, Response, WorkerEntrypoint
Chatroom = None
Default = None
