"""A champion's reference for drift checks: stored profile against the training window it replaces.

For each size (1M rows by default) x 20 columns (``drift_bench.make_frame``: 14 numeric, 6 string
categoricals), written as parquet the way a batch arrives, it prints

- the bytes a monitor process fetches: the window's parquet (baseline) against the stored profile and
  report sample (``service.stored_reference``), and their ratio;
- the time and peak memory to get the reference side of every test in a fresh process: reading,
  validating and profiling the window (``service.reference._prepared_reference``, what a process without a
  stored profile does) against reading the profile file, each in a child forked before the work.

    python bench/reference_profile_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drift_bench import make_frame

from service.contracts import contract_for_columns
from service.drift.profile_file import read_profile, write_profile
from service.stored_reference import snapshot_of


def _peak_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


def _child(work: Callable[[], object], out: Any) -> None:
    before, start = _peak_kb(), time.perf_counter()
    work()
    out.send((time.perf_counter() - start, (_peak_kb() - before) / 1024))


def measure(work: Callable[[], object]) -> tuple[float, float]:
    """Seconds and peak MB above the start of a forked child doing ``work``."""
    receive, send = mp.Pipe(duplex=False)
    child = mp.get_context("fork").Process(target=_child, args=(work, send))
    child.start()
    result = receive.recv()
    child.join()
    return result


def one_size(rows: int, folder: Path) -> str:
    window, profile_path, sample_path = folder / "window.parquet", folder / "profile.parquet", folder / "sample.parquet"
    frame = make_frame(rows, seed=1, drifted=False)
    frame.to_parquet(window, index=False)
    contract = contract_for_columns(frame, [], str(window))
    snapshot = snapshot_of(frame, contract, 5000)
    write_profile(snapshot.profile, snapshot.rows, profile_path)
    snapshot.sample.to_parquet(sample_path, index=False, compression="zstd")
    del frame, snapshot
    from service.reference import _prepared_reference

    window_s, window_mb = measure(lambda: _prepared_reference((str(window),), contract))
    profile_s, profile_mb = measure(lambda: read_profile(profile_path))
    window_size, profile_size, sample_size = (path.stat().st_size / 1e6 for path in (window, profile_path, sample_path))
    ratio = (profile_size + sample_size) / window_size
    return (
        f"{rows:>10,} {window_size:>10.1f} {profile_size:>11.1f} {sample_size:>10.2f} {ratio:>10.2f} "
        f"{window_s:>9.2f} {profile_s:>10.2f} {profile_s / window_s:>10.2f} {window_mb:>15.0f} {profile_mb:>16.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000000", help="comma-separated sizes")
    sizes = [int(size) for size in parser.parse_args().rows.split(",")]
    print(
        f"{'rows':>10} {'window MB':>10} {'profile MB':>11} {'sample MB':>10} {'size ratio':>10} "
        f"{'window s':>9} {'profile s':>10} {'time ratio':>10} {'window peak MB':>15} {'profile peak MB':>16}"
    )
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="driftloop-bench-") as folder:
            print(one_size(rows, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
