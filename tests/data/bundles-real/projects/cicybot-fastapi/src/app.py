# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/app.py
import os
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator
from fastapi import FastAPI, Depends
from fastapi.responses import HTMLResponse
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPBasicCredentials
from fastapi.middleware.cors import CORSMiddleware
from common import helpers, constants
from service.Global import Global
from routers import auth, d1, utils, kv, dev, youtube
os = None
log_level = None
log_dir = None
log_handlers = None
log_file = None
logger = None
lifespan = None
app = None
root = None
swagger = None
