"""`driftloop run` on one 100k-row batch: its orchestration and registry time against its compute.

A monitor pass with no champion trains one on the reference, checks the (drifted) batch, and — with a
debounce of 1 — retrains, evaluates, registers and promotes. Its wall time is split where it is spent,
each call timed where it happens (a call inside another is counted once, in the inner one's share):
- **compute**: scikit-learn's fit and score (``Pipeline.fit`` / ``predict`` / ``predict_proba``, and
  ``service.evaluate.score``: predictions and the metric) and the drift statistics (``column_test``);
- **data work**: reading, validating and preparing the data any pipeline reads, orchestrated or not:
  the training window (``load_window``), the holdout split, the reference profile of a new model
  (``snapshot_of``), and the check's read, validation and hash of the batch (``column_check.check_batch``,
  less the drift statistics its threads run while the pass waits on them; the hash tells a batch
  already checked);
- **orchestration + registry**, the issue's figure: all the rest. Prefect (flows, tasks, slots, the
  API), MLflow (runs, artifacts, the model's save and loads, registration, aliases, tags), the content
  hashes of the lineage, driftloop's own logic between them.
The figure before this split (everything but compute) is printed beside it. Both are what is left of
the pass's wall time: work run beside the fit (a retrain loads the champion while the challenger fits)
counts only as long as the pass waits for it.

The pass draws the check's HTML report (Evidently) after its last decision, the retrain's promotions
included: that time is printed on a line of its own, and beside it the overhead with it counted in.
The passes run as ``driftloop run`` runs them: on Prefect's
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
import inspect
import logging
import os
import sys
import tempfile
import threading
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
COMPUTE, STATISTICS, DATA, REPORTS = (
    "sklearn fit + score",
    "drift statistics",
    "data work",
    "reports after the decisions",
)
STATISTICS_OFF_MAIN = "drift statistics in worker threads"
BUCKETS = (COMPUTE, STATISTICS, DATA, REPORTS, STATISTICS_OFF_MAIN)
_NESTING = threading.local()


def _timed_call(original: Callable[..., Any], bucket: str) -> Callable[..., Any]:
    """``original``, its time added to ``bucket`` less the time of timed calls inside it (same thread)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        inner = _NESTING.__dict__.setdefault("inner", [])
        inner.append(0.0)
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - began
            SPENT[bucket] += elapsed - inner.pop()
            if inner:
                inner[-1] += elapsed
            if bucket == STATISTICS and threading.current_thread() is not threading.main_thread():
                SPENT[STATISTICS_OFF_MAIN] += elapsed

    return wrapper


def _timed(owner: Any, name: str, bucket: str) -> None:
    """Time ``owner.name`` wherever driftloop calls it: every module that imported the function by name
    gets the timed one too."""
    original = getattr(owner, name)
    wrapper = _timed_call(original, bucket)
    setattr(owner, name, wrapper)
    if inspect.isclass(owner):
        return
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith(("service.", "flows.")):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attribute, wrapper)


@contextmanager
def instrumented() -> Iterator[None]:
    from sklearn.pipeline import Pipeline

    import service.column_check as column_check
    import service.drift.stats as stats
    import service.evaluate as evaluate
    import service.reports as reports
    import service.retrain as retrain
    import service.stored_reference as stored_reference

    for method in ("fit", "predict", "predict_proba"):
        _timed(Pipeline, method, COMPUTE)
    _timed(evaluate, "score", COMPUTE)
    _timed(stats, "column_test", STATISTICS)
    for owner, name in (
        (retrain, "load_window"),
        (evaluate, "split_holdout"),
        (stored_reference, "snapshot_of"),
        (column_check, "check_batch"),
    ):
        _timed(owner, name, DATA)
    _timed(reports, "draw_pending", REPORTS)
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
            passes.append({**dict.fromkeys(BUCKETS, 0.0), **SPENT, "total": total, "retries": counter.retries})
    report(args.rows, passes)


def compute(figures: dict[str, float]) -> float:
    return figures[COMPUTE] + figures[STATISTICS]


def data_work(figures: dict[str, float]) -> float:
    """The data calls' own time, less the drift statistics run by their threads while the pass waited."""
    return max(0.0, figures[DATA] - figures[STATISTICS_OFF_MAIN])


def not_compute(figures: dict[str, float]) -> float:
    """Everything up to the pass's last decision but compute: the reports drawn after them are on no
    decision's path."""
    return figures["total"] - compute(figures) - figures[REPORTS]


def overhead(figures: dict[str, float]) -> float:
    """Orchestration + registry: what is neither compute nor data work, up to the last decision."""
    return not_compute(figures) - data_work(figures)


def report(rows: int, passes: list[dict[str, float]]) -> None:
    median = sorted(passes, key=lambda figures: overhead(figures) / compute(figures))[len(passes) // 2]
    spent, work, drawing = overhead(median), compute(median), median[REPORTS]
    print(f"driftloop run, {rows:,}-row reference and batch (2 trainings, 1 drift check), median of {len(passes)}:")
    print(f"  total wall time            {median['total']:8.2f} s")
    print(f"  sklearn fit + score        {median[COMPUTE]:8.2f} s")
    print(f"  drift statistics           {median[STATISTICS]:8.2f} s")
    print(f"  data work                  {data_work(median):8.2f} s  (read, validate, hash, split, profile)")
    print(
        f"  orchestration + registry   {spent:8.2f} s  = {spent / work:.0%} of compute (fit + score + drift statistics)"
    )
    print(
        f"  all but compute            {not_compute(median):8.2f} s  = {not_compute(median) / work:.0%} of compute "
        "(data work and orchestration + registry: the figure before they were told apart)"
    )
    print(
        f"  drift report, drawn after  {drawing:8.2f} s  (Evidently; with it, orchestration + registry is "
        f"{(spent + drawing) / work:.0%} of compute)"
    )
    for number, figures in enumerate(passes, 1):
        print(
            f"  pass {number}: total {figures['total']:.2f} s, compute {compute(figures):.2f} s, "
            f"orchestration + registry {overhead(figures):.2f} s = {overhead(figures) / compute(figures):.0%}, "
            f"all but compute {not_compute(figures) / compute(figures):.0%}, report after {figures[REPORTS]:.2f} s, "
            f"Prefect API retries after a 503: {figures['retries']:.0f}"
        )


if __name__ == "__main__":
    main()
