# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/dev.py
import logging
from fastapi import APIRouter
import requests
from common import helpers
from service.Global import Global
pad = None
unpad = None
logger = None
router = None
dev = None
