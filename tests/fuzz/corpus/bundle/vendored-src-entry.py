"""Worker entry point."""
from workers import Response, WorkerEntrypoint

import tinyjson
import vendmod
from pyodide.ffi import to_js
from tinyjson.codec import encode


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(encode({"v": vendmod.VERSION, "t": tinyjson.NAME}))
