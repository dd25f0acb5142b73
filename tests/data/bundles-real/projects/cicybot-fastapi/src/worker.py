# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/worker.py
from workers import WorkerEntrypoint
from app import app
from service.Global import Global

class Default:

    async def fetch():
        import asgi
Default = None
