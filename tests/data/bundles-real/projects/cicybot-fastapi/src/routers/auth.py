# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/auth.py
import logging
from datetime import timedelta
from typing import Optional
from fastapi import Depends, APIRouter, Request
from fastapi.security import HTTPBearer
from common import helpers
from service.Global import Global
logger = None
security = None
router = None
login = None
me = None
