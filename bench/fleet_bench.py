"""A fleet pass as a user runs it: `driftloop run --models DIR`, whole processes, imports included.

N synthetic models (four features each, 10k-row batches) share one folder and one MLflow store. Three
passes, each a fresh `driftloop run` process:
  1. first pass: every model trains its first champion and checks its first batch;
  2. no new batch: every batch is known by its size and date, nothing is read or hashed;
  3. one new batch per model: each model reads, checks and records one batch.
The baseline, in the same run, is `python -c "import mlflow, prefect"`: the floor of any process that
talks to both. Figures are seconds of wall time; per-model figures are amortised over the fleet.

    python bench/fleet_bench.py [--models 10] [--rows 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ENV = {
    **os.environ,
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}


def batch(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, (rows, 3))
    colour = rng.choice(["red", "green", "blue"], rows)
    y = (x[:, 0] + x[:, 1] - 0.5 * x[:, 2] + (colour == "red") > 0).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "colour": colour, "y": y})


def make_fleet(root: Path, models: int, rows: int, prefix: str = "m") -> Path:
    """``models`` model files named ``<prefix>000``...: fleets sharing one registry need their own prefix,
    or the second would find the first one's champions and records."""
    folder = root / "models"
    folder.mkdir()
    for index in range(models):
        data = root / f"m{index:03d}"
        (data / "stream").mkdir(parents=True)
        batch(rows, index).to_parquet(data / "reference.parquet")
        batch(rows, 1000 + index).to_parquet(data / "stream" / "b001.parquet")
        config = {
            "model": {"name": f"{prefix}{index:03d}", "task": "classification", "target": "y"},
            "data": {"reference": str(data / "reference.parquet"), "current": str(data / "stream" / "*.parquet")},
            "registry": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
            "environments": ["dev"],
            "promotion": {},
        }
        (folder / f"m{index:03d}.yaml").write_text(yaml.safe_dump(config))
    return folder


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=ENV, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    driftloop = shutil.which("driftloop") or sys.exit("driftloop is not installed")
    with tempfile.TemporaryDirectory(prefix="driftloop-fleet-bench-") as tmp:
        root = Path(tmp)
        folder = make_fleet(root, args.models, args.rows)
        run = [driftloop, "run", "--models", str(folder), "--json"]
        baseline = timed([sys.executable, "-c", "import mlflow, prefect"], root)
        first = timed(run, root)
        idle = timed(run, root)
        for index in range(args.models):
            batch(args.rows, 2000 + index).to_parquet(root / f"m{index:03d}" / "stream" / "b002.parquet")
        one_new = timed(run, root)
    n = args.models
    print(f"fleet of {n} models, {args.rows} rows per batch; baseline `import mlflow, prefect`: {baseline:.1f} s")
    print(f"{'pass':<28} {'total s':>8} {'per model s':>12} {'x baseline':>11}")
    for name, seconds in (("first (train + 1 check)", first), ("no new batch", idle), ("one new batch each", one_new)):
        print(f"{name:<28} {seconds:>8.1f} {seconds / n:>12.2f} {seconds / baseline:>11.1f}")


if __name__ == "__main__":
    main()
