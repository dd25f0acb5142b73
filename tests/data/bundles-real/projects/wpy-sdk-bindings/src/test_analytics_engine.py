# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_analytics_engine.py
import pytest
from workers.rpc import _BindingWrapper
test_is_wrapped = None
test_write_data_point_blobs_and_doubles = None
test_write_data_point_empty = None
