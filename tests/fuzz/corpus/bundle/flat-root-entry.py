from workers import Response, WorkerEntrypoint

import greeting
from helpers import fmt


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(fmt(greeting.hello()))
