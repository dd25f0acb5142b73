"""Worker entry point."""
from workers import Response, WorkerEntrypoint

import leftpad


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(leftpad.pad("x"))
