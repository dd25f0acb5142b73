# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/personal.py
import logging
from fastapi import APIRouter, Form, Response
from common import crypto, utils, helpers
import os
import requests
import urllib.parse
from service.Global import Global
logger = None
router = None
info = None
encrypt = None
