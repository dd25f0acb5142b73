# reduced from danlapid/python-worker-simple@e8fed449279ef7106cfd1efc1ac7358c221f1c3c:src/worker.py
from workers import DurableObject, import_from_javascript

class DurableObjectClass:

    async def on_fetch():
        from js import Response
workers_module = None
global_env = None
DurableObjectClass = None
on_fetch = None
