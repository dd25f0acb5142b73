# reduced from casaterraneo/hello-world-python-worker@8ef596f81f5f7096bc22484b2c430c87b4ce49bd:tests/test_examples.py
import requests
import pytest
import subprocess
from conftest import REPO_ROOT
test_hello = None
