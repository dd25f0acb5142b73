# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/utils.py
import urllib.parse
import logging
import pyotp
from fastapi import APIRouter, Form
from common import helpers
logger = None
router = None
generate_otp = None
gen_password = None
