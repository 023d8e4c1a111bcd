"""Config module for `rq worker -c worker_settings`: RQ imports it in the worker
process at start-up, before the work loop, which is how the model gets PRELOADED
in the worker (importing jobs loads it at module level)."""
import os

import jobs  # noqa: F401  (the preload)

REDIS_URL = os.environ.get("PYSTACK_REDIS", "redis://127.0.0.1:6379/0")
QUEUES = ["default"]
