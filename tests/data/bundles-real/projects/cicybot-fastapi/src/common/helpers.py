# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/common/helpers.py
from datetime import datetime, timedelta, timezone
from typing import Union
import logging
import jwt
from fastapi import Depends, HTTPException, status, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials, HTTPBearer, HTTPAuthorizationCredentials
from pwdlib import PasswordHash
from common.constants import auth_strip_path_prefixes
from service.Global import Global
from service.CloudFlareClient import CloudFlareClient
logger = None
http_basic_security = None
http_bearer_security = None
password_hash = None
verify_http_basic_credentials = None
create_access_token = None
verify_password = None
get_password_hash = None
get_current_user_uid = None
get_cf_client = None
get_otps = None
