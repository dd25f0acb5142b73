# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/kv.py
import logging
from fastapi import Depends, APIRouter, Form
from fastapi.security import HTTPBearer
import json
from common import helpers
from service.CloudFlareClient import CloudFlareClient
import traceback
logger = None
security = None
router = None
kv_get = None
kv_delete = None
kv_put = None
