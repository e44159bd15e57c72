"""A fleet on the local stack, as on a cluster: the `sweep` deployment over N synthetic models, each
model's pass its own flow-run process started by a real Prefect worker, against real Prefect and MLflow
servers on PostgreSQL (`service.stack.Stack`, the same code as `driftloop stack up`).

Sweeps, each timed from its start to the end of the last monitor run it started:
  1. first: every model trains its first champion and checks its first batch;
  2. no new batch: the sweep reads each model's listing and registry records and starts nothing;
  3. one new batch per model: one monitor run per model checks one batch, and the sweep draws the
     drift reports; its run time split per model: checks, registry, reports, orchestration.
The worker's and the servers' resident memory (their process trees) is read after sweep 3 at N models
and compared with the same figure at the smaller fleet run first in the same process. The baseline,
in the same run, is one flow-run process of the stack doing nothing: `python -c "import prefect, mlflow"`.

    python bench/fleet_stack_bench.py [--small 5] [--models 50] [--rows 10000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_bench import batch, make_fleet

os.environ.update(
    {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (from /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending += [int(child) for child in children.read().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, the ended children it waited for
    included (/proc/PID/stat's cutime and cstime): a load-independent account of where the work went."""
    ticks, total, pending = os.sysconf("SC_CLK_TCK"), 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending += [int(child) for child in children.read().split()]
        except (OSError, IndexError):
            continue
    return total / ticks


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of the process itself, without its children."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def stack_cpu(stack: object) -> dict[str, float]:
    """CPU seconds so far of each part of the stack: the flow-run processes, the worker itself, each server."""
    worker = stack.worker.process.pid  # type: ignore[attr-defined]
    parts = {
        "flow-run processes": worker,
        "Prefect server": stack.prefect_server.process.pid,  # type: ignore[attr-defined]
        "MLflow server": stack.mlflow_server.process.pid,  # type: ignore[attr-defined]
    }
    postgres = getattr(stack, "postgres", None)
    if postgres is not None:
        parts["PostgreSQL"] = int((postgres.data / "postmaster.pid").read_text().split()[0])
    seconds = {name: tree_cpu_seconds(pid) for name, pid in parts.items()}
    # The worker's ended children are its flow-run processes: the tree's CPU less the worker's own.
    seconds["worker itself"] = own_cpu_seconds(worker)
    seconds["flow-run processes"] -= seconds["worker itself"]
    return seconds


# Where a sweep's time goes, by task name: the rest of a run's wall time is orchestration (process
# start, imports, Prefect's bookkeeping).
SPLIT = {
    "checks": ("examine", "known_verdicts", "list_batches"),
    "registry": ("record_check", "read_records", "current_reference", "pending_retrain", "models_with_work"),
    "reports": ("draw_reports",),
}
# A sweep with nothing new is the sweep's own run: reading the directory, asking each model.
IDLE_SPLIT = {"read the models directory": ("load_fleet",), "ask each model": ("models_with_work",)}


def idle_split(runs: list[object], wall: float) -> dict[str, float]:
    """The sweep run's tasks, its running time outside them, and the rest of the wall time: scheduling
    and the start of its flow-run process."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run = runs[-1]  # sweep() puts the sweep's own run last
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), limit=200)  # type: ignore[attr-defined]
    parts = {
        name: sum(t.total_run_time.total_seconds() for t in tasks if t.name.rsplit("-", 1)[0] in names)
        for name, names in IDLE_SPLIT.items()
    }
    running = run.total_run_time.total_seconds()  # type: ignore[attr-defined]
    parts["sweep run, outside its tasks"] = max(running - sum(parts.values()), 0.0)
    parts["scheduling and process start"] = max(wall - running, 0.0)
    return parts


def split(runs: list[object]) -> dict[str, float]:
    """Seconds per SPLIT category, summed over the runs' task runs, and orchestration: the monitor runs'
    running time outside their tasks (the sweep's own run mostly waits for them). A flow-run process's
    start, before its run is RUNNING, is in none of them: it is the rest of the per-model total."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    monitors = {run.id for run in runs if run.name.startswith("monitor-")}  # type: ignore[attr-defined]
    totals, inside_monitors = dict.fromkeys([*SPLIT, "orchestration"], 0.0), 0.0
    with get_client(sync_client=True) as client:
        for start in range(0, len(runs), 200):
            chunk = [run.id for run in runs[start : start + 200]]  # type: ignore[attr-defined]
            offset = 0
            while True:
                tasks = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200, offset=offset
                )
                for task in tasks:
                    seconds = task.total_run_time.total_seconds()
                    inside_monitors += seconds if task.flow_run_id in monitors else 0.0
                    kind = next((k for k, names in SPLIT.items() if task.name.rsplit("-", 1)[0] in names), None)
                    if kind:
                        totals[kind] += seconds
                if len(tasks) < 200:
                    break
                offset += 200
    wall = sum(run.total_run_time.total_seconds() for run in runs if run.id in monitors)  # type: ignore[attr-defined]
    totals["orchestration"] = max(wall - inside_monitors, 0.0)
    return totals


def sweep(models_dir: Path, runs_out: list[object] | None = None) -> float:
    """Run the sweep deployment; return seconds until it and every monitor run it started have ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    start = time.perf_counter()
    since = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("sweep/sweep")
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"models_dir": str(models_dir)})
        # Only the sweep's own run is polled while it goes: reading every run of a 50-model sweep twice a
        # second cost the Prefect server more CPU than the runs themselves. The sweep waits for the passes
        # it started, so once it has ended the fleet's runs are read (once, as a rule) until all have ended.
        while not client.read_flow_run(run.id).state.is_final():
            time.sleep(0.5)
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)), limit=200
            )
            sweep_run = client.read_flow_run(run.id)
            runs = [r for r in runs if r.id != run.id] + [sweep_run]  # the sweep's own run last
            states = [r.state.type.value for r in runs if r.state]
            if all(s in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for s in states):
                break
            time.sleep(0.5)
    elapsed = time.perf_counter() - start
    failed = [f"{r.name}: {r.state.message}" for r in runs if r.state and r.state.type.value != "COMPLETED"]
    if failed:
        sys.exit("runs did not complete:\n" + "\n".join(failed))
    if runs_out is not None:
        runs_out += runs
    return elapsed


def fleet_round(stack: object, root: Path, models: int, rows: int) -> dict[str, float]:
    root.mkdir(parents=True)
    folder = make_fleet(root, models, rows, prefix=root.name[0])  # the rounds share the stack's registry
    for path in folder.glob("*.yaml"):  # the stack's MLflow server, not a sqlite file
        path.write_text(path.read_text().replace(f"sqlite:///{root / 'mlflow.db'}", stack.mlflow_url))  # type: ignore[attr-defined]
    first = sweep(folder)
    idle_runs: list[object] = []
    idle = sweep(folder, idle_runs)
    idle_parts = idle_split(idle_runs, idle)
    for index in range(models):
        batch(rows, 3000 + index).to_parquet(root / f"m{index:03d}" / "stream" / "b002.parquet")
    one_new_runs: list[object] = []
    cpu_before = stack_cpu(stack)
    one_new = sweep(folder, one_new_runs)
    cpu = {f"cpu {name}": seconds - cpu_before[name] for name, seconds in stack_cpu(stack).items()}
    parts = split(one_new_runs)
    worker = tree_rss_mb(stack.worker.process.pid)  # type: ignore[attr-defined]
    servers = tree_rss_mb(stack.prefect_server.process.pid) + tree_rss_mb(stack.mlflow_server.process.pid)  # type: ignore[attr-defined]
    timings = {"first": first, "idle": idle, "one_new": one_new}
    return {**timings, "worker_mb": worker, "servers_mb": servers, **parts, **idle_parts, **cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=5)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    from service.stack.servers import Stack

    # A bench stopped with SIGTERM still stops its stack (the `finally` below), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    with tempfile.TemporaryDirectory(prefix="driftloop-stack-bench-") as tmp:
        stack = Stack(Path(tmp) / "stack", backend="auto")
        stack.up()
        os.environ["PREFECT_API_URL"] = stack.prefect_url
        try:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import prefect, mlflow"], check=True)
            baseline = time.perf_counter() - start
            small = fleet_round(stack, Path(tmp) / "small", args.small, args.rows)
            large = fleet_round(stack, Path(tmp) / "large", args.models, args.rows)
        finally:
            stack.down()
    print(f"local stack, {args.rows} rows per batch; baseline process `import prefect, mlflow`: {baseline:.1f} s")
    print(
        f"{'sweep':<26} {'N=' + str(args.small):>10} {'N=' + str(args.models):>10} {'per model':>10} {'x baseline':>11}"
    )
    for key, name in (("first", "first (train + check)"), ("idle", "no new batch"), ("one_new", "one new batch each")):
        per_model = large[key] / args.models
        print(f"{name:<26} {small[key]:>9.1f}s {large[key]:>9.1f}s {per_model:>9.2f}s {large[key] / baseline:>11.1f}")
    print(f"no new batch, N={args.models}:")
    for key in (*IDLE_SPLIT, "sweep run, outside its tasks", "scheduling and process start"):
        print(f"  {key:<30} {large[key]:>8.2f}s   (N={args.small}: {small[key]:.2f}s)")
    print(f"one new batch each, run time per model (summed over the runs; they overlap), N={args.models}:")
    for key in (*SPLIT, "orchestration"):
        print(f"  {key:<24} {large[key] / args.models:>9.2f}s")
    print(f"one new batch each, CPU seconds per model by process (load-independent), N={args.models}:")
    for key in (key for key in large if key.startswith("cpu ")):
        print(f"  {key[4:]:<24} {large[key] / args.models:>9.2f}s   (N={args.small}: {small[key] / args.small:.2f}s)")
    for key, name in (("worker_mb", "worker RSS"), ("servers_mb", "servers RSS")):
        print(f"{name:<26} {small[key]:>8.0f}MB {large[key]:>8.0f}MB {large[key] / small[key]:>10.2f}x")


if __name__ == "__main__":
    main()
