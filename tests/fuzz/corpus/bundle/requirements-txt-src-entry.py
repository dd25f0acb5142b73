"""Worker entry point."""
from workers import Response, WorkerEntrypoint

import httpx


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(httpx.__name__)
