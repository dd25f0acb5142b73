# reduced from danlapid/python-workers-mcp@57e8d360934eee6c0502cc55806194a88cf4099b:src/logger.py
import logging
import sys
import structlog
stdout_handler = None
stderr_handler = None
root_logger = None
logger = None
