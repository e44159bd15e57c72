#!/bin/sh
# Creates the work pool, or syncs the base job template of the one that exists (a pool must never keep
# a stale template), then registers the deployments of flows/prefect.yaml with their schedules and
# triggers, and with this install's fleet settings written into a copy of it. Idempotent: run it on
# every install and upgrade.
#
# What operators did in the Prefect UI or CLI outlives the upgrade: a paused deployment or a paused
# schedule is registered paused again (`prefect deploy` alone would resume them). Every deployment it
# registers carries the tag driftloop-chart; one with that tag on the pool that flows/prefect.yaml no
# longer declares is deleted with its triggers. Deployments without the tag are never touched.
#
# Environment: PREFECT_API_URL, WORK_POOL, BASE_JOB_TEMPLATE (path of the JSON template),
# DRIFTLOOP_HOME (the code, where flows/prefect.yaml's entrypoints are relative to),
# PREFECT_FILE (relative to DRIFTLOOP_HOME), WAIT_SECONDS (how long to wait for the Prefect API).
# The fleet, each left as flows/prefect.yaml has it when unset: MODELS_DIR (the folder of model files
# the `sweep` deployment reads), SWEEP_INTERVAL_SECONDS (its schedule), MONITOR_CONCURRENCY and
# RETRAIN_CONCURRENCY (the concurrency limits of the `monitor` and `retrain` deployments).
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

# The image's code folder is read-only: the adjusted copy goes to a folder of its own under /tmp.
FLEET_DIR=$(mktemp -d)
trap 'rm -rf "$FLEET_DIR"' EXIT
python - "$DRIFTLOOP_HOME/$PREFECT_FILE" "$FLEET_DIR/prefect.yaml" <<'PY'
import os
import sys

import yaml

source, target = sys.argv[1:3]


def setting(name):
    raw = os.environ.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"register: {name}={raw!r}: expected a whole number of 1 or more")
    return int(raw)


def deployment(name):
    for declared in document.get("deployments") or []:
        if declared.get("name") == name:
            return declared
    sys.exit(f"register: {source} has no deployment named {name!r}: expected sweep, monitor and retrain")


def set_concurrency(declared, limit):
    if isinstance(declared.get("concurrency_limit"), dict):
        declared["concurrency_limit"]["limit"] = limit
    else:
        declared["concurrency_limit"] = limit


with open(source) as file:
    document = yaml.safe_load(file)
sweep = deployment("sweep")
models_dir = os.environ.get("MODELS_DIR")
if models_dir:
    sweep.setdefault("parameters", {})["models_dir"] = models_dir
interval = setting("SWEEP_INTERVAL_SECONDS")
if interval is not None:
    intervals = [schedule for schedule in sweep.get("schedules") or [] if "interval" in schedule]
    if not intervals:
        sys.exit(f"register: {source}: deployment 'sweep' has no interval schedule to set to {interval} s")
    for schedule in intervals:
        schedule["interval"] = interval
for name, variable in (("monitor", "MONITOR_CONCURRENCY"), ("retrain", "RETRAIN_CONCURRENCY")):
    limit = setting(variable)
    if limit is not None:
        set_concurrency(deployment(name), limit)
with open(target, "w") as file:
    yaml.safe_dump(document, file, sort_keys=False)


def limit_of(name):
    limit = deployment(name).get("concurrency_limit")
    return limit.get("limit") if isinstance(limit, dict) else limit


every = ", ".join(f"{schedule['interval']} s" for schedule in sweep.get("schedules") or [] if "interval" in schedule)
print(
    f"register: sweep of {sweep.get('parameters', {}).get('models_dir')} every {every or '(no interval)'};"
    f" monitor runs side by side: {limit_of('monitor')}; retrains side by side: {limit_of('retrain')}",
    flush=True,
)
PY

cd "$DRIFTLOOP_HOME"
# Entrypoints are relative to the code folder: the flows' names (half of a deployment's identity) are
# read from there, without running the flows' modules.
python - "$FLEET_DIR/prefect.yaml" "$FLEET_DIR/declared.json" <<'PY'
import json
import sys

import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.flows import load_flow_arguments_from_entrypoint

MARKER = "driftloop-chart"
copy, declared_file = sys.argv[1:3]
with open(copy) as file:
    document = yaml.safe_load(file)


def flow_name(entrypoint):
    name = load_flow_arguments_from_entrypoint(entrypoint).get("name")
    return name or entrypoint.rsplit(":", 1)[1].replace("_", "-")


declared = []
with get_client(sync_client=True) as client:
    for deployment in document.get("deployments") or []:
        full_name = f"{flow_name(deployment['entrypoint'])}/{deployment['name']}"
        declared.append(full_name)
        deployment["tags"] = [*(tag for tag in deployment.get("tags") or [] if tag != MARKER), MARKER]
        schedules = deployment.get("schedules") or []
        # A slug names each schedule across upgrades, so that its pause can be found again after
        # `prefect deploy` replaces the deployment's schedules.
        for index, schedule in enumerate(schedules):
            schedule.setdefault("slug", f"{deployment['name']}-{index}")
        try:
            existing = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            continue  # new: registered as declared (any other error stops the hook: nothing is changed)
        if existing.paused:
            deployment["paused"] = True
            print(f"register: {full_name} stays paused", flush=True)
        by_slug = {schedule.slug: schedule for schedule in existing.schedules if schedule.slug}
        # Schedules registered before slugs were given (older charts) are matched by their position.
        unnamed = [schedule for schedule in existing.schedules if not schedule.slug]
        for index, schedule in enumerate(schedules):
            before = by_slug.get(schedule["slug"]) or (unnamed[index] if index < len(unnamed) else None)
            if before is not None and not before.active:
                schedule["active"] = False
                print(f"register: schedule {schedule['slug']} of {full_name} stays paused", flush=True)
with open(copy, "w") as file:
    yaml.safe_dump(document, file, sort_keys=False)
with open(declared_file, "w") as file:
    json.dump(declared, file)
PY

prefect --no-prompt deploy --all --prefect-file "$FLEET_DIR/prefect.yaml"

# Only after every declared deployment is registered: a failed deploy removes nothing.
python - "$FLEET_DIR/declared.json" <<'PY'
import json
import os
import sys

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, WorkPoolFilter, WorkPoolFilterName

MARKER = "driftloop-chart"
with open(sys.argv[1]) as file:
    declared = set(json.load(file))
with get_client(sync_client=True) as client:
    ours = []
    while batch := client.read_deployments(
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[MARKER])),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[os.environ["WORK_POOL"]])),
        offset=len(ours),
        limit=200,
    ):
        ours.extend(batch)
    flows = {}
    for deployment in ours:
        if deployment.flow_id not in flows:
            flows[deployment.flow_id] = client.read_flow(deployment.flow_id).name
        full_name = f"{flows[deployment.flow_id]}/{deployment.name}"
        if full_name in declared:
            continue
        # Its triggers are automations owned by it: they would outlive it and fire at nothing.
        client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
        client.delete_deployment(deployment.id)
        print(f"register: deleted {full_name}: no longer in the deployments file", flush=True)
PY
echo "register: work pool $WORK_POOL and the deployments of $PREFECT_FILE are up to date"
