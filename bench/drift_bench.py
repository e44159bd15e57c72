"""Drift check: driftloop against a plain Evidently full report, on the same data, in two tables.

For each size (100k and 1M rows by default) x 20 mixed columns (14 numeric, 6 string categoricals),
with and without injected drift, both tables print wall time and peak memory of both sides, their
ratios, and whether their verdicts agree (dataset, and the share of columns with the same verdict).

1. Whole processes, as a user runs them: `driftloop drift --reference R --current C --json` against a
   plain Evidently script (pandas reads both files, then `Report([DataDriftPreset()])`), on the same
   parquet files. Imports and file reading count. Each measurement is a fresh child process of a small
   launcher: its wall time from start to exit, CPU time, and peak resident set (``ru_maxrss``).
2. In process: the statistics alone, on frames already in memory. Each measurement runs in a child
   forked after the data is built; peak memory is its high-water resident set above what it inherited.

    python bench/drift_bench.py [--rows 100000,1000000] [--tables process,inprocess]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.drift.check import check_drift
from service.drift.result import DriftResult
from service.settings import DriftSection

N_NUMERICAL, N_CATEGORICAL, N_DRIFTED = 14, 6, 12
TIME_TARGET, MEMORY_TARGET = 25, 5  # issue 11: the whole process against the plain Evidently script


def make_frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """20 columns: 14 numeric of varied shapes, 6 categorical; drift shifts 12 of them."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(N_NUMERICAL):
        shift = 0.5 if drifted and i < 8 else 0.0
        if i % 3 == 0:
            data[f"num_{i}"] = rng.normal(shift, 1.0, rows)
        elif i % 3 == 1:
            data[f"num_{i}"] = rng.lognormal(shift, 0.6, rows)
        else:
            data[f"num_{i}"] = rng.integers(0, 100, rows) + 20 * shift
    for i in range(N_CATEGORICAL):
        levels = np.array([f"v{k}" for k in range(4 + 3 * i)])
        weights = np.linspace(1.0, 3.0 if drifted and i < N_DRIFTED - 8 else 1.0, len(levels))
        data[f"cat_{i}"] = rng.choice(levels, rows, p=weights / weights.sum()).astype(object)
    return pd.DataFrame(data)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(work: Callable[[], DriftResult], out: Any) -> None:
    start_rss = _status_kb("VmRSS:")
    began = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - began
    out.send(
        (
            seconds,
            (_status_kb("VmHWM:") - start_rss) / 1024,
            result.dataset_drift,
            [c.drifted for c in result.columns],
            len(result.html),
        )
    )


def measure(work: Callable[[], DriftResult]) -> tuple[float, float, bool, list[bool], int]:
    receive, send = mp.Pipe(duplex=False)
    child = mp.get_context("fork").Process(target=_child, args=(work, send))
    child.start()
    outcome = receive.recv()
    child.join()
    return outcome


# The plain Evidently script a user would write: pandas reads both files, one DataDriftPreset report with
# its tests. It prints the verdicts (FAIL = drifted) as JSON to compare with driftloop's.
PLAIN_EVIDENTLY = """
import json, sys
import pandas as pd
from evidently import Report
from evidently.metrics import DriftedColumnsCount, ValueDrift
from evidently.presets import DataDriftPreset

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()], include_tests=True).run(current_data=current, reference_data=reference)
verdicts = {"columns": {}}
for test in snapshot.tests_results:
    metric = snapshot.context.get_metric(test.metric_config.metric_id).to_metric()
    if isinstance(metric, ValueDrift):
        verdicts["columns"][metric.column] = test.status.value == "FAIL"
    elif isinstance(metric, DriftedColumnsCount):
        verdicts["dataset_drift"] = test.status.value == "FAIL"
print(json.dumps(verdicts))
"""


def driftloop_command() -> list[str]:
    """The installed console script next to this interpreter (not a pyenv shim, whose bash start-up
    would count against driftloop)."""
    script = Path(sys.executable).parent / "driftloop"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


# Measures one command from a small launcher process. A child's peak RSS (ru_maxrss) starts at its parent's
# resident set at the fork (the kernel carries it over the exec), so a child of this bench, which holds
# pandas and the generated frames, would be charged for them: the launcher holds only the stdlib.
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    began = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)
    _, err = child.communicate()
    seconds = time.perf_counter() - began
usage = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN)
json.dump({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "mb": usage.ru_maxrss / 1024,
           "code": child.returncode, "stderr": err.decode()[-2000:]}, sys.stdout)
"""


def run_process(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system: less sensitive to a busy machine than wall time), peak
    resident MB and stdout of one fresh child process."""
    with tempfile.NamedTemporaryFile() as out:
        launched = subprocess.run(
            [sys.executable, "-c", LAUNCHER, out.name, *argv], capture_output=True, text=True, check=True
        )
        measured = json.loads(launched.stdout)
        if measured["code"] not in (0, 1):
            raise RuntimeError(f"{argv[:2]} exited {measured['code']}: {measured['stderr']}")
        return measured["seconds"], measured["cpu"], measured["mb"], Path(out.name).read_text()


def driftloop_verdicts(stdout: str) -> tuple[bool, dict[str, bool]]:
    result = json.loads(stdout)
    return result["dataset_drift"], {c["column"]: c["drifted"] for c in result["columns"]}


def plain_verdicts(stdout: str) -> tuple[bool, dict[str, bool]]:
    result = json.loads(stdout)
    return result["dataset_drift"], result["columns"]


def process_table(sizes: list[int], folder: Path) -> None:
    """Whole processes on parquet files: driftloop drift against the plain Evidently script."""
    script = folder / "plain_evidently.py"
    script.write_text(PLAIN_EVIDENTLY)
    print("whole process (imports and file reading included), each a fresh child process")
    print(f"targets: >= {TIME_TARGET}x faster (wall), <= 1/{MEMORY_TARGET} of the peak memory, same verdicts")
    print(
        f"{'rows':>9} {'drift':>5} | {'driftloop s':>11} {'evidently s':>11} {'speed-up':>8} | "
        f"{'cpu s':>7} {'cpu s':>7} {'cpu x':>6} | "
        f"{'driftloop MB':>12} {'evidently MB':>12} {'less mem':>9} | {'dataset':>7} {'columns':>7} | "
        f"{'targets':>13} | load"
    )
    for rows in sizes:
        reference = folder / f"reference_{rows}.parquet"
        make_frame(rows, seed=1, drifted=False).to_parquet(reference, index=False)
        for drifted in (False, True):
            current = folder / f"current_{rows}_{drifted}.parquet"
            make_frame(rows, seed=2, drifted=drifted).to_parquet(current, index=False)
            ours = run_process(
                [*driftloop_command(), "drift", "--reference", str(reference), "--current", str(current), "--json"]
            )
            plain = run_process([sys.executable, str(script), str(reference), str(current)])
            ours_dataset, ours_columns = driftloop_verdicts(ours[3])
            plain_dataset, plain_columns = plain_verdicts(plain[3])
            agree = sum(plain_columns.get(name) == verdict for name, verdict in ours_columns.items())
            agree /= max(len(ours_columns), len(plain_columns))
            speed_up, less_memory = plain[0] / ours[0], plain[2] / ours[2]
            met = [
                "time" if speed_up >= TIME_TARGET else "",
                "mem" if less_memory >= MEMORY_TARGET else "",
                "same" if ours_dataset == plain_dataset and agree == 1 else "",
            ]
            print(
                f"{rows:>9} {'yes' if drifted else 'no':>5} | {ours[0]:>11.2f} {plain[0]:>11.2f} {speed_up:>7.1f}x | "
                f"{ours[1]:>7.1f} {plain[1]:>7.1f} {plain[1] / ours[1]:>5.1f}x | "
                f"{ours[2]:>12.0f} {plain[2]:>12.0f} {less_memory:>8.1f}x | "
                f"{'same' if ours_dataset == plain_dataset else 'DIFFER':>7} {agree:>7.1%} | "
                f"{'+'.join(name for name in met if name) or 'none':>13} | {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            current.unlink()
        reference.unlink()


def in_process_table(sizes: list[int]) -> None:
    """The statistics alone, on frames in memory: the fast engine against Evidently's full report."""
    numerical = [f"num_{i}" for i in range(N_NUMERICAL)]
    categorical = [f"cat_{i}" for i in range(N_CATEGORICAL)]
    import evidently  # noqa: F401  - imported once up front: neither side pays the 4 s import

    print("in process (frames already in memory; driftloop's verdicts without the report), each a forked child")
    print(
        f"{'rows':>9} {'drift':>5} | {'driftloop s':>11} {'evidently s':>11} {'speed-up':>8} | "
        f"{'driftloop MB':>12} {'evidently MB':>12} {'less mem':>9} | {'dataset':>7} {'columns':>7}"
    )
    for rows in sizes:
        reference = make_frame(rows, seed=1, drifted=False)
        for drifted in (False, True):
            current = make_frame(rows, seed=2, drifted=drifted)

            def run(settings: DriftSection, ref: pd.DataFrame = reference, cur: pd.DataFrame = current) -> DriftResult:
                return check_drift(ref, cur, numerical=numerical, categorical=categorical, settings=settings)

            fast = measure(lambda: run(DriftSection()))
            full = measure(lambda: run(DriftSection(engine="evidently")))
            agree = sum(a == b for a, b in zip(fast[3], full[3], strict=True)) / len(fast[3])
            print(
                f"{rows:>9} {'yes' if drifted else 'no':>5} | {fast[0]:>11.2f} {full[0]:>11.2f} "
                f"{full[0] / fast[0]:>7.1f}x | {fast[1]:>12.0f} {full[1]:>12.0f} {full[1] / fast[1]:>8.1f}x | "
                f"{'same' if fast[2] == full[2] else 'DIFFER':>7} {agree:>7.1%}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--tables", default="process,inprocess", help="which tables: process, inprocess or both")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    tables = args.tables.split(",")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
    if "process" in tables:
        with tempfile.TemporaryDirectory() as folder:
            process_table(sizes, Path(folder))
    if "inprocess" in tables:
        in_process_table(sizes)


if __name__ == "__main__":
    main()
