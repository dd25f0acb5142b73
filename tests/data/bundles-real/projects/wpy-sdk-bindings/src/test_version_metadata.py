# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_version_metadata.py
import pytest
test_has_id = None
test_has_tag = None
test_has_timestamp = None
