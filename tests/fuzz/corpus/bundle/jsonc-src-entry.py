"""Worker entry point."""
from workers import Response, WorkerEntrypoint

import utils


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(utils.greet())
