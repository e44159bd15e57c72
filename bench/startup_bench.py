"""`driftloop --help` start-up time, against a bare `python -c pass` measured in the same run.

python bench/startup_bench.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timings(command: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - began)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    driftloop = shutil.which("driftloop") or sys.exit("driftloop is not installed: pip install -e .")
    baseline = timings([sys.executable, "-c", "pass"], args.runs)
    help_ = timings([driftloop, "--help"], args.runs)
    print(
        f"driftloop --help over {args.runs} runs: median {statistics.median(help_):.3f} s, "
        f"min {min(help_):.3f} s, max {max(help_):.3f} s"
    )
    print(
        f"  bare python start-up: median {statistics.median(baseline):.3f} s "
        f"-> driftloop adds {statistics.median(help_) - statistics.median(baseline):.3f} s "
        f"({statistics.median(help_) / statistics.median(baseline):.1f}x)"
    )


if __name__ == "__main__":
    main()
