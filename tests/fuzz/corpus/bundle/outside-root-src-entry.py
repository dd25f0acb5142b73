"""Worker entry point."""
from workers import Response, WorkerEntrypoint

from shared.text import shout


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(shout("ok"))
