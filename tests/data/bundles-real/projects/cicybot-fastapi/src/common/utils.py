# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/common/utils.py
import os
file_get_content = None
file_put_content = None
file_exists = None
