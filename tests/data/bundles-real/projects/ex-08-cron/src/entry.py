# reduced from cloudflare/python-workers-examples@affcbffc80cf2fdc9417ea42c4489ae8bf0d6a70:08-cron/src/entry.py
from workers import Response, WorkerEntrypoint
Default = None
