# reduced from danlapid/python-workers-mcp@57e8d360934eee6c0502cc55806194a88cf4099b:tests/test_worker.py
import os
import signal
import socket
import subprocess
import time
import pytest
import requests
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.types import CallToolResult, ListPromptsResult, ListResourcesResult, ListToolsResult, Prompt, PromptArgument, TextContent, Tool
get_free_port = None
WorkerFixture = None
web_server = None
test_nonexistent_page = None
test_sse_connection = None
