"""Worker entry point."""
from workers import Response, WorkerEntrypoint

import utils
from src.utils import greet


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(greet() + utils.greet())
