"""Imports that fail only at request time, or never."""
from typing import TYPE_CHECKING

from workers import Response, WorkerEntrypoint

try:
    import ujson as json  # optional speed-up, not vendored
except ImportError:
    import json

if TYPE_CHECKING:
    from typing_extensions import Self


def render(data):
    from src.templates import page  # src. prefix, but only when called
    return page(data)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        import jinja2  # not vendored: fails on the first request
        return Response(json.dumps({"ok": True}))
