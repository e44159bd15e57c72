"""The commands that move an alias, timed as whole processes on a local store, against
`python -c "import mlflow"` measured in the same run (issue 11's target: each at most 3x as long).

    python bench/steering_bench.py [--runs 7]

Each round runs the baseline and then one full cycle — `promote --to prod` (v2 waits for approval),
`approve`, `rollback` (v1 is champion again), `models` — so every command makes a real move each time.
No Prefect API is configured, as on a laptop: the MLflow tags are the record. The ratio is taken round
by round (command / baseline of the same round), so a machine that slows down for a while does not
tilt it; the median is quoted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}


def prepare(root: Path) -> Path:
    """A demo workspace whose registry has v1 as prod's champion and v2 as staging's."""
    from service.cli.quiet import quiet_libraries
    from service.config_file import load_config
    from service.demo import prepare_workspace
    from service.promote import approve, promote
    from service.registry import CHAMPION, PREVIOUS, Registry

    quiet_libraries()  # MLflow's own messages while the registry is set up would bury the figures
    workspace = prepare_workspace(root, n_batches=1, rows=200, drift_at=2)
    registry = Registry(load_config(workspace.config_path))
    for _ in range(2):  # a bare run per version: moving aliases needs no trained model
        client, name = registry.client, registry.ensure_model("dev")
        run = client.create_run(registry.experiment_id("training"))
        created = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        current = registry.at_alias("dev", CHAMPION)
        if current is not None:
            registry.set_alias("dev", PREVIOUS, current.version)
        client.set_registered_model_alias(name, CHAMPION, str(created.version))
        promote(registry, "staging")
        if current is None:
            promote(registry, "prod")
            approve(registry, "prod")
    return workspace.config_path


def timed(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    driftloop = shutil.which("driftloop") or sys.exit("driftloop is not installed: pip install -e .")
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env.update(QUIET)
    with tempfile.TemporaryDirectory(prefix="steering-bench-") as tmp:
        config = str(prepare(Path(tmp) / "demo"))
        commands = {
            "promote": [driftloop, "promote", "weather", "--to", "prod", "--config", config],
            "approve": [driftloop, "approve", "weather", "--env", "prod", "--config", config],
            "rollback": [driftloop, "rollback", "weather", "--env", "prod", "--config", config],
            "models": [driftloop, "models", "--config", config],
        }
        baseline_command = [sys.executable, "-c", "import mlflow"]
        seconds: dict[str, list[float]] = {name: [] for name in ["import mlflow", *commands]}
        for round_ in range(args.runs + 1):  # the first round warms the caches and is not counted
            times = {"import mlflow": timed(baseline_command, env)}
            times |= {name: timed(command, env) for name, command in commands.items()}
            if round_:
                for name, value in times.items():
                    seconds[name].append(value)
    baseline = seconds["import mlflow"]
    print(f"alias moves on a local store, {args.runs} rounds (whole processes; median, min-max)")
    label = 'python -c "import mlflow"'
    print(f"  {label:<28} {statistics.median(baseline):6.2f} s  (baseline)")
    worst = 0.0
    for name in commands:
        ratios = [value / base for value, base in zip(seconds[name], baseline, strict=True)]
        ratio = statistics.median(ratios)
        worst = max(worst, ratio)
        print(
            f"  driftloop {name:<18} {statistics.median(seconds[name]):6.2f} s  "
            f"{ratio:4.2f}x the baseline ({min(ratios):.2f}-{max(ratios):.2f})"
        )
    print(f"target: each at most {TARGET:.0f}x `import mlflow`: {'met' if worst <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
