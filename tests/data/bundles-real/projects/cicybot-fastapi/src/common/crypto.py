# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/common/crypto.py
from Crypto.Cipher import AES
from Crypto.Protocol.KDF import PBKDF2
import base64
pad = None
unpad = None
aes_encrypt = None
aes_decrypt = None
