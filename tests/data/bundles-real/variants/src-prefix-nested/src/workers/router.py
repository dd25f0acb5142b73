from workers import WorkerEntrypoint
from src.workers.health import check
import src.workers.jobs as jobs
