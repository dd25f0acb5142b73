# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:06-assets/src/worker.py
from workers import WorkerEntrypoint
Default = None
