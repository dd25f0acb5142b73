# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/routers/youtube.py
import logging
import os
from fastapi import APIRouter, HTTPException
import requests
from google_auth_oauthlib.flow import InstalledAppFlow
logger = None
router = None
snippets = None
caption = None
