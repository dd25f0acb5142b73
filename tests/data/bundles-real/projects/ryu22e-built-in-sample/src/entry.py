# reduced from ryu22e/python-workers-examples@0345d802a4885e7f8c97193eaf6545a54d1018b2:built-in-sample/src/entry.py
from enum import Enum
import micropip
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from langchain_core.prompts import PromptTemplate
from langchain_openai import OpenAI

async def on_fetch():
    import asgi

async def pycamp_events():
    from bs4 import BeautifulSoup

async def micropip_install_error():
    import pandas as pd
PYCAMP_URL = None
on_fetch = None
app = None
Season = None
root = None
pycamp_events = None
micropip_install_error = None
