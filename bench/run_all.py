"""Every benchmark, one after the other: `python bench/run_all.py` (add --quick for 100k rows only).

Each prints ratios against a baseline measured in the same run, since these machines are noisy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    steps = [
        ["drift_bench.py", "--rows", "100000" if quick else "100000,1000000"],
        ["run_overhead.py", "--rows", "100000"],
        ["startup_bench.py"],
        ["steering_bench.py"],
        ["api_bench.py"],
    ]
    for script, *args in steps:
        print(f"\n== {script} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)


if __name__ == "__main__":
    main()
