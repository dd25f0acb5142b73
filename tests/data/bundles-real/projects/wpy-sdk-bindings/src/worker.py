# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/worker.py
import asyncio
import importlib.util
import sys
from asyncio import InvalidStateError
import pytest
from pyodide.webloop import WebLoop
from worker_durable_object import TestDurableObject
from worker_workflow import TestWorkflow
from workers import Response, WorkerEntrypoint

class Default:

    async def fetch():
        from urllib.parse import urlparse
_noop = None
WebLoop = None
_cancel_all_tasks = None
asyncio = None
ResultCollector = None
EnvPlugin = None
RECEIVED_MESSAGES = None
Default = None
