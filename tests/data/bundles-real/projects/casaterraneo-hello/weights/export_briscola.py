# reduced from casaterraneo/hello-world-python-worker@8ef596f81f5f7096bc22484b2c430c87b4ce49bd:weights/export_briscola.py
import hashlib
import os
import struct
import sys
import torch
MODEL_PATH = None
EXPECTED = None
HERE = None
BIN_PATH = None
HASH_PATH = None
main = None
