from http import route
from workers import WorkerEntrypoint
