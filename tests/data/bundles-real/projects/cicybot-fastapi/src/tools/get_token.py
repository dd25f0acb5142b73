# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/tools/get_token.py
from google_auth_oauthlib.flow import InstalledAppFlow
SCOPES = None
flow = None
creds = None
