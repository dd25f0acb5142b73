"""Worker entry point: the layout of the original failure."""
import json
import logging

from workers import Response, WorkerEntrypoint

# The settings live in src/core/config/settings.py; the import below names the
# module through "src." -- fine on a laptop (run from the project root), but
# wrangler uploads src/ as the module root, so "src" does not exist at deploy.
from core.config.settings import Settings

log = logging.getLogger(__name__)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        settings = Settings()
        return Response(json.dumps({"env": settings.environment}))
