"""`driftloop run` on one 100k-row batch against the bare scikit-learn fit and score inside it.

A monitor pass with no champion trains one on the reference, checks the (drifted) batch, and — with a
debounce of 1 — retrains, evaluates, registers and promotes. The scikit-learn calls inside it are timed
where they happen (``Pipeline.fit`` / ``predict`` wrapped), and so are the drift statistics; what is
left is driftloop's orchestration and registry overhead: Prefect, MLflow logging and registration,
reading and hashing files, the HTML report. Prefect's API runs in a test server started beforehand, as
a service's would be; a warm-up pass keeps first-import costs out of the figure.

    python bench/run_overhead.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import cProfile
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

    _timed(Pipeline, "fit", "sklearn fit + score")
    _timed(Pipeline, "predict", "sklearn fit + score")
    _timed(Pipeline, "predict_proba", "sklearn fit + score")
    _timed(stats, "column_test", "drift statistics")
    yield


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
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured pass here")
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    from flows.monitor import monitor

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120), instrumented():
        # The warm-up shares the measured pass's MLflow store (another model in it), so the store's
        # one-time set-up is paid before the clock starts, as in a long-lived worker or server.
        timed_run(monitor, write_world(Path(tmp), 2000, "warmup"))
        world = write_world(Path(tmp), args.rows, "bench")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        total = timed_run(monitor, world)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
    fit = SPENT["sklearn fit + score"]
    stats = SPENT["drift statistics"]
    overhead = total - fit - stats
    print(f"driftloop run, {args.rows:,}-row reference and batch (2 trainings, 1 drift check):")
    print(f"  total wall time            {total:8.2f} s")
    print(f"  sklearn fit + score        {fit:8.2f} s")
    print(f"  drift statistics           {stats:8.2f} s")
    print(
        f"  orchestration + registry   {overhead:8.2f} s  = {overhead / (fit + stats):.0%} of compute "
        f"(fit + score + drift statistics); {overhead / fit:.0%} of fit + score alone"
    )


if __name__ == "__main__":
    main()
