# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/worker_workflow.py
import datetime
from workers import WorkflowEntrypoint
from workers.workflows import NonRetryableError
TestWorkflow = None
