from workers import WorkerEntrypoint
