# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/common/constants.py
SWAGGER_HTML = None
auth_strip_path_prefixes = None
CORS_OPTIONS = None
