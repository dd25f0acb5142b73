# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:10-workflows/src/entry.py
import asyncio
import random
from urllib.parse import urlparse
from workers import Response, WorkerEntrypoint, WorkflowEntrypoint
DAGWorkflow = None
Default = None
