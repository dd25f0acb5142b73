import jinja2
from workers import WorkerEntrypoint
