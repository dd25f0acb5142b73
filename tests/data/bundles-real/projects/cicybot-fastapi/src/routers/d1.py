# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/d1.py
import logging
from fastapi import Depends, APIRouter, Form
from fastapi.security import HTTPBearer
import json
from common import helpers
from service.CloudFlareClient import CloudFlareClient
logger = None
security = None
router = None
d1_query = None
d1_exec = None
admin = None
