# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_mtls.py
import pytest
from workers.rpc import _FetcherWrapper
test_is_fetcher_wrapper = None
test_has_fetch = None
