import jinja2
from bs4 import BeautifulSoup
from workers import WorkerEntrypoint
