"""`driftloop run` on one 100k-row batch against the bare scikit-learn fit and score inside it.

A monitor pass with no champion trains one on the reference, checks the (drifted) batch, and — with a
debounce of 1 — retrains, evaluates, registers and promotes. The scikit-learn calls inside it are timed
where they happen (``Pipeline.fit`` / ``predict`` wrapped), and so are the drift statistics; what is
left is driftloop's orchestration and registry overhead: Prefect, MLflow logging and registration,
reading and hashing files. The pass draws the check's HTML report (Evidently) after its last decision,
the retrain's promotions included: that time is printed on a line of its own, and beside it the overhead
with it counted in. The passes run as ``driftloop run`` runs them: on Prefect's
embedded server (with PREFECT_API_URL unset; its state in a temporary PREFECT_HOME), started before the
clock as the command does; a warm-up pass keeps first-import costs out of the figure. The measured pass
runs ``--repeat`` times (a model of its own each time): the median is the figure, each pass's is beside it.

The embedded server keeps its state in SQLite. When a request's transaction loses a race with the
server's own writes (recording task runs from events), the API answers 503 "database is locked" and
Prefect's client asks again: those retries are counted. Prefect's client waits 2 s before the first; in a
process that imports driftloop's flows it waits 10 ms (``flows.quick_retries``). A Prefect server on
PostgreSQL, as on the cluster, has no such race.

    python bench/run_overhead.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

os.environ.update(
    {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        # As the CLI does: a fresh PREFECT_HOME's migrations can outlast Prefect's default 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
)

SPENT: dict[str, float] = defaultdict(float)


def _timed(owner: Any, name: str, bucket: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[bucket] += time.perf_counter() - began

    setattr(owner, name, wrapper)


@contextmanager
def instrumented() -> Iterator[None]:
    from sklearn.pipeline import Pipeline

    import service.drift.stats as stats
    import service.reports as reports

    _timed(Pipeline, "fit", "sklearn fit + score")
    _timed(Pipeline, "predict", "sklearn fit + score")
    _timed(Pipeline, "predict_proba", "sklearn fit + score")
    _timed(stats, "column_test", "drift statistics")
    _timed(reports, "draw_pending", "reports after the decisions")
    yield


class RetryCounter(logging.Handler):
    """Counts the Prefect client's retries of a request the API answered with a retryable status."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.retries += "retryable status code" in record.getMessage()


def write_world(folder: Path, rows: int, model: str) -> Path:
    from service.demo_data import make_stream, write_stream

    stream = make_stream(n_batches=1, rows=rows, reference_rows=rows, drift_at=1)
    write_stream(stream, folder / model)
    config = {
        "model": {"name": model, "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {"reference": f"{model}/reference.csv", "current": f"{model}/stream/*.csv"},
        "drift": {"debounce": {"window": 1, "min_drifted": 1}},
        "training": {"window": 1},
    }
    path = folder / f"{model}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed_run(monitor: Callable[[str], Any], config: Path) -> float:
    SPENT.clear()
    began = time.perf_counter()
    summary = monitor(str(config))
    total = time.perf_counter() - began
    assert summary.bootstrap is not None and len(summary.retrains) == 1, f"the pass must train twice: {summary}"
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="measured passes; the median is the figure")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the first measured pass here")
    args = parser.parse_args()
    from prefect.settings import PREFECT_HOME, temporary_settings

    from flows.monitor import monitor
    from service.cli.progress import embedded_prefect

    client_log = logging.getLogger("prefect.client")
    counter = RetryCounter()
    client_log.addHandler(counter)
    client_log.setLevel(logging.DEBUG)
    passes: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_settings({PREFECT_HOME: Path(tmp) / "prefect-home"}),
        embedded_prefect(),
        instrumented(),
    ):
        # The warm-up shares the measured passes' MLflow store (another model in it), so the store's
        # one-time set-up is paid before the clock starts, as in a long-lived worker or server.
        timed_run(monitor, write_world(Path(tmp), 2000, "warmup"))
        for number in range(args.repeat):
            world = write_world(Path(tmp), args.rows, f"bench{number}")
            profiler = cProfile.Profile() if args.profile and number == 0 else None
            if profiler:
                profiler.enable()
            counter.retries = 0
            total = timed_run(monitor, world)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            passes.append({"total": total, **SPENT, "retries": counter.retries})
    report(args.rows, passes)


def report(rows: int, passes: list[dict[str, float]]) -> None:
    def compute(figures: dict[str, float]) -> float:
        return figures["sklearn fit + score"] + figures["drift statistics"]

    def overhead(figures: dict[str, float]) -> float:
        """Up to the pass's last decision: the reports it draws after them are on no decision's path."""
        return figures["total"] - compute(figures) - figures["reports after the decisions"]

    median = sorted(passes, key=overhead)[len(passes) // 2]
    fit, stats, spent = median["sklearn fit + score"], median["drift statistics"], overhead(median)
    drawing = median["reports after the decisions"]
    print(f"driftloop run, {rows:,}-row reference and batch (2 trainings, 1 drift check), median of {len(passes)}:")
    print(f"  total wall time            {median['total']:8.2f} s")
    print(f"  sklearn fit + score        {fit:8.2f} s")
    print(f"  drift statistics           {stats:8.2f} s")
    print(
        f"  orchestration + registry   {spent:8.2f} s  = {spent / (fit + stats):.0%} of compute "
        f"(fit + score + drift statistics); {spent / fit:.0%} of fit + score alone"
    )
    print(
        f"  drift report, drawn after  {drawing:8.2f} s  (Evidently; with it, the overhead is "
        f"{(spent + drawing) / (fit + stats):.0%} of compute)"
    )
    for number, figures in enumerate(passes, 1):
        print(
            f"  pass {number}: total {figures['total']:.2f} s, overhead {overhead(figures):.2f} s = "
            f"{overhead(figures) / compute(figures):.0%}, report after {figures['reports after the decisions']:.2f} s, "
            f"Prefect API retries after a 503: {figures['retries']:.0f}"
        )


if __name__ == "__main__":
    main()
