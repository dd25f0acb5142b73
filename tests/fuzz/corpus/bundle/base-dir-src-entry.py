"""Worker entry point."""
from workers import Response, WorkerEntrypoint

from src.app.routes import route


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(route(request.url))
