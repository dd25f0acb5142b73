# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/web-frameworks-test/fastapi-tests/src/test_assets.py
import pytest
from _client import fetch, get_json
test_serves_index_html = None
test_serves_css = None
test_serves_json = None
test_serves_json_content_type = None
test_missing_asset_returns_404 = None
test_api_route_still_works = None
test_health_endpoint = None
