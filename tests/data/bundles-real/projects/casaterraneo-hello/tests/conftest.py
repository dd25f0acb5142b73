# reduced from casaterraneo/hello-world-python-worker@8ef596f81f5f7096bc22484b2c430c87b4ce49bd:tests/conftest.py
import os
import subprocess
import time
import socket
import sys
import pytest
from pathlib import Path
from contextlib import contextmanager
REPO_ROOT = None
find_free_port = None
pywrangler_dev_server = None
dev_server = None
