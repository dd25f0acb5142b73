"""Worker entry point."""
from workers import Response, WorkerEntrypoint



class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
