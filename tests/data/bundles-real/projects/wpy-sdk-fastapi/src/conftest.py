# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/conftest.py
import pytest
from workers import env as _env
env = None
