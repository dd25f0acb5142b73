# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:12-image-gen/src/entry.py
import random
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from PIL import Image, ImageDraw, ImageFont
from pyodide.ffi import to_js
from workers import Request, Response, WorkerEntrypoint
Default = None
