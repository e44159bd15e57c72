#!/bin/sh
# Creates the work pool, or syncs the base job template of the one that exists (a pool must never keep
# a stale template), then registers the deployments of flows/prefect.yaml with their schedules and
# triggers. Idempotent: run it on every install and upgrade.
#
# Environment: PREFECT_API_URL, WORK_POOL, BASE_JOB_TEMPLATE (path of the JSON template),
# DRIFTLOOP_HOME (the code, where flows/prefect.yaml's entrypoints are relative to),
# PREFECT_FILE (relative to DRIFTLOOP_HOME), WAIT_SECONDS (how long to wait for the Prefect API).
set -eu

python - <<'PY'
import os
import sys
import time
import urllib.request

url = os.environ["PREFECT_API_URL"].rstrip("/") + "/health"
deadline = time.monotonic() + float(os.environ.get("WAIT_SECONDS", "600"))
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                break
            error = f"HTTP {response.status}"
    except OSError as exc:
        error = str(exc)
    if time.monotonic() > deadline:
        sys.exit(f"register: the Prefect API at {url} did not answer: {error}")
    print(f"register: waiting for the Prefect API at {url} ({error})", flush=True)
    time.sleep(5)
PY

if prefect work-pool inspect "$WORK_POOL" >/dev/null 2>&1; then
    echo "register: work pool $WORK_POOL exists: syncing its base job template"
    prefect work-pool update "$WORK_POOL" --base-job-template "$BASE_JOB_TEMPLATE"
else
    echo "register: creating work pool $WORK_POOL"
    prefect work-pool create "$WORK_POOL" --type kubernetes --base-job-template "$BASE_JOB_TEMPLATE"
fi

cd "$DRIFTLOOP_HOME"
prefect --no-prompt deploy --all --prefect-file "$PREFECT_FILE"
echo "register: work pool $WORK_POOL and the deployments of $PREFECT_FILE are up to date"
