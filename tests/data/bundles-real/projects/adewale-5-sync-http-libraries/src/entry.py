# reduced from adewale/python-workers-issues@a5fd1e3577583e3408a73b20af49208c943c40b0:5-sync-http-libraries/src/entry.py
from workers import Response, WorkerEntrypoint

class Default:

    def _test():
        import requests
        import urllib3
ECHO_URL = None
HEADERS = None
_pick_sent_headers = None
Default = None
