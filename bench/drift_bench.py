"""Drift check: driftloop's fast engine against a plain Evidently full report, on the same data.

For each size (100k and 1M rows by default) x 20 mixed columns, with and without injected drift, it
prints wall time and peak memory of both, their ratios, and the agreement of their verdicts (dataset
and per column). Each measurement runs in a child forked from this process after the data is built, so
both sides see identical data and neither pays for the other's garbage; peak memory is the child's
high-water resident set above what it inherited.

    python bench/drift_bench.py [--rows 100000,1000000] [--report-rows 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from service.drift.check import check_drift
from service.drift.result import DriftResult
from service.settings import DriftSection

N_NUMERICAL, N_CATEGORICAL, N_DRIFTED = 14, 6, 12


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--report-rows", type=int, default=DriftSection().report_rows)
    args = parser.parse_args()
    numerical = [f"num_{i}" for i in range(N_NUMERICAL)]
    categorical = [f"cat_{i}" for i in range(N_CATEGORICAL)]
    import evidently  # noqa: F401  - imported once up front: neither side pays the 4 s import

    print(
        f"{'rows':>9} {'drift':>5} | {'driftloop s':>11} {'evidently s':>11} {'speed-up':>8} | "
        f"{'driftloop MB':>12} {'evidently MB':>12} {'mem ratio':>9} | {'dataset':>7} {'columns':>7}"
    )
    for rows in (int(size) for size in args.rows.split(",")):
        reference = make_frame(rows, seed=1, drifted=False)
        for drifted in (False, True):
            current = make_frame(rows, seed=2, drifted=drifted)
            fast_settings = DriftSection(report_rows=args.report_rows)
            full_settings = DriftSection(engine="evidently")

            def run(settings: DriftSection, ref: pd.DataFrame = reference, cur: pd.DataFrame = current) -> DriftResult:
                return check_drift(ref, cur, numerical=numerical, categorical=categorical, settings=settings)

            fast = measure(lambda settings=fast_settings: run(settings))
            full = measure(lambda settings=full_settings: run(settings))
            agree = sum(a == b for a, b in zip(fast[3], full[3], strict=True)) / len(fast[3])
            print(
                f"{rows:>9} {'yes' if drifted else 'no':>5} | {fast[0]:>11.2f} {full[0]:>11.2f} "
                f"{full[0] / fast[0]:>7.1f}x | {fast[1]:>12.0f} {full[1]:>12.0f} {fast[1] / full[1]:>9.2f} | "
                f"{'same' if fast[2] == full[2] else 'DIFFER':>7} {agree:>7.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
