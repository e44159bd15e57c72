"""Thin Prefect flows over ``service/``: orchestration only, no domain logic."""

import atexit
import gc

# A flow-run process (one per pass, a Job on the cluster) ends with the interpreter's exit, whose garbage
# collections walk every object the imports of Prefect, MLflow and pandas made: 0.4-0.8 CPU s per process,
# for memory the operating system takes back anyway. Frozen objects are not walked; exit handlers
# registered before this one (Prefect's, which send the last logs) run after it, and still run.
atexit.register(gc.freeze)

# Prefect's clients ask again soon after a SQLite server's 503, not after 2 s (see flows.quick_retries).
from flows.quick_retries import install  # noqa: E402

install()
