# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_images.py
import base64
import js
import pytest
from pyodide.ffi import create_proxy, to_js
from workers.rpc import _BindingWrapper
PNG_1X1 = None
_make_stream = None
test_is_wrapped = None
test_output_as_png = None
test_transform_and_output = None
