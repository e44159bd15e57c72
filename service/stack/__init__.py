"""The local stack: PostgreSQL, the Prefect and MLflow servers and a worker as processes, and
``driftloop stack up|down|status``. Only subprocesses: nothing here imports Prefect."""
