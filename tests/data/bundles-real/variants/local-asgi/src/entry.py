from asgi import application
from workers import WorkerEntrypoint
