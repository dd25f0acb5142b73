# reduced from casaterraneo/hello-world-python-worker@8ef596f81f5f7096bc22484b2c430c87b4ce49bd:entry_fastapi_backup.py
from fastapi import FastAPI, Request, Depends, HTTPException, status
from fastapi.responses import JSONResponse
from workers import WorkerEntrypoint, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
import numpy as np
import base64
import io

def _get_tris_weights():
    if _tris_weights is None:
        from tris_weights import WEIGHTS_B64

class Default:

    async def fetch():
        import asgi
HARDCODED_SECRET = None
app = None
root = None
api_key_header = None
verify_secret_async = None
test_depends_async = None
_tris_weights = None
_get_tris_weights = None
_tris_forward = None
TrisRequest = None
tris_move = None
Default = None
