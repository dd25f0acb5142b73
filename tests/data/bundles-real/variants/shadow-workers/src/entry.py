from workers import Response, WorkerEntrypoint
