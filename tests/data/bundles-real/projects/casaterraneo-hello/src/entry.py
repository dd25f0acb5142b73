# reduced from casaterraneo/hello-world-python-worker@8ef596f81f5f7096bc22484b2c430c87b4ce49bd:src/entry.py
import json
import base64
import struct
from urllib.parse import urlparse
from pyodide.ffi import to_js, jsnull
from workers import WorkerEntrypoint, Response
HARDCODED_SECRET = None
_json_resp = None
_error = None
_tris_weights = None
_tris_model_hash = None
_W_SHAPES = None
_W_NAMES = None
_parse_weights = None
WeightsNotAvailableError = None
_get_tris_weights = None
_linear_relu = None
_linear = None
_tris_forward = None
_SUITS = None
_POINTS = None
_BRISCOLA_W = None
_briscola_model_hash = None
_B_NAMES = None
_B_SHAPES = None
_get_briscola_weights = None
_encode_card = None
_briscola_encode = None
_briscola_forward = None
Default = None
