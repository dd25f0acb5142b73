# reduced from danlapid/python-workers-mcp@57e8d360934eee6c0502cc55806194a88cf4099b:src/uvicorn.py
