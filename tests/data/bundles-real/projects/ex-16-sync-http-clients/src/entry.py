# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:16-sync-http-clients/src/entry.py
import httpx
import requests
import urllib3
from workers import Response, WorkerEntrypoint
TARGET_URL = None
EXPECTED_TEXT = None
summarize_result = None
Default = None
