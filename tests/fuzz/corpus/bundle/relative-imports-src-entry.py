"""Worker entry point."""
from workers import Response, WorkerEntrypoint

from app.api.handlers import handle
from .settings import DEBUG


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(handle(request, DEBUG))
