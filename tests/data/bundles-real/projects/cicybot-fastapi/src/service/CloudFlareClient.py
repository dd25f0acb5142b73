# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/service/CloudFlareClient.py
import httpx
import logging
from typing import List, Any, Optional
from service.Global import Global

class CloudFlareClient:

    async def _fetch():
        if Global.is_local():
            import pprint
logger = None
CloudFlareClient = None
