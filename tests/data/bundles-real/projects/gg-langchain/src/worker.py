# reduced from garrettgu10/python-workers-demos@ccc9df8acf4f8a67853681a1bbeb849c63fb9a93:langchain/src/worker.py
from js import Response
from langchain_core.prompts import PromptTemplate
from langchain_openai import OpenAI
on_fetch = None
