"""Large batches: `driftloop drift` on 20-column files of 1M, 10M and 50M rows per side, as a whole process.

Each size gets a reference and a drifted batch as parquet (14 numeric, 6 string categorical columns:
drift_bench's generator, written a million rows at a time so the bench itself stays small; one row group
per million). `driftloop drift --reference R --current C --json` runs in a fresh child of a small launcher
(drift_bench's): wall time, CPU time and peak resident set (ru_maxrss). Printed per size: the peak memory
against the targets (issue 15: 10M rows <= 1.5 GB; 50M rows within the chart's 4 GiB flow-run limit), the
time per million rows, and the ratio of the largest size's time per million rows to 1M's (1.0 = linear),
in wall and CPU time (on a busy machine wall time measures the neighbours too). A csv pair (--csv-rows,
1M by default) shows csv is bounded too. The baseline, measured in the same run, is a whole process that
imports pandas and pyarrow: times per million rows are also given in units of it.

    python bench/large_batch_bench.py [--rows 1000000,10000000,50000000] [--csv-rows 1000000] [--dir /work/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drift_bench import driftloop_command, make_frame, run_process

CHUNK = 1_000_000
MiB = 1024 * 1024
TARGETS_MIB = {10_000_000: 1.5e9 / MiB, 50_000_000: 4096}  # 1.5 GB; 4 GiB
BASELINE = [sys.executable, "-c", "import pandas, pyarrow"]


def write_parquet(path: Path, rows: int, seed: int, drifted: bool) -> None:
    """``rows`` rows of drift_bench's frame, generated and written a million rows (a row group) at a time."""
    writer = None
    try:
        for index, start in enumerate(range(0, rows, CHUNK)):
            frame = make_frame(min(CHUNK, rows - start), seed=seed * 1000 + index, drifted=drifted)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def as_csv(parquet: Path, path: Path) -> None:
    """The same rows as csv, a row group at a time."""
    source = pq.ParquetFile(parquet)
    with pacsv.CSVWriter(path, source.schema_arrow) as writer:
        for group in range(source.num_row_groups):
            writer.write_table(source.read_row_group(group))


def measure(reference: Path, current: Path) -> dict[str, float | str]:
    command = [*driftloop_command(), "drift", "--reference", str(reference), "--current", str(current), "--json"]
    seconds, cpu, mib, stdout = run_process(command)
    result = json.loads(stdout)
    drifted = sum(column["drifted"] for column in result["columns"])
    return {"seconds": seconds, "cpu": cpu, "mib": mib, "verdict": f"{drifted}/{len(result['columns'])} drifted"}


def row(label: str, rows: int, measured: dict[str, float | str], baseline: float) -> str:
    per_million = float(measured["seconds"]) / (rows / 1e6)
    target = TARGETS_MIB.get(rows)
    status = "" if target is None else ("met" if float(measured["mib"]) <= target else "MISSED")
    target_text = "" if target is None else f"<= {target:.0f}"
    return (
        f"{label:>8} {rows:>11,} | {measured['seconds']:>8.1f} {measured['cpu']:>8.1f} | "
        f"{per_million:>8.2f} {per_million / baseline:>9.1f}x | {measured['mib']:>8.0f} {target_text:>8} {status:>6} | "
        f"{measured['verdict']:>14} | {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000,50000000", help="comma-separated rows per side")
    parser.add_argument("--csv-rows", type=int, default=1_000_000, help="rows per side of the csv pair (0: none)")
    parser.add_argument("--dir", default=None, help="where the files go (they take ~0.1 GB per million rows)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="large-batch-bench-", dir=args.dir))
    try:
        baseline = min(run_process(BASELINE)[0] for _ in range(3))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
        print(f"baseline: `python -c 'import pandas, pyarrow'` as a whole process, best of 3: {baseline:.2f} s")
        print("driftloop drift --json, whole process (imports, reading, contract, tests), 20 columns per side")
        print(
            f"{'format':>8} {'rows/side':>11} | {'wall s':>8} {'cpu s':>8} | {'s per 1M':>8} {'baselines':>10} | "
            f"{'peak MiB':>8} {'target':>8} {'':>6} | {'verdict':>14} | load"
        )
        per_million: dict[int, tuple[float, float]] = {}
        for rows in sizes:
            reference, current = folder / f"reference_{rows}.parquet", folder / f"current_{rows}.parquet"
            write_parquet(reference, rows, seed=1, drifted=False)
            write_parquet(current, rows, seed=2, drifted=True)
            measured = measure(reference, current)
            per_million[rows] = (float(measured["seconds"]) / (rows / 1e6), float(measured["cpu"]) / (rows / 1e6))
            print(row("parquet", rows, measured, baseline), flush=True)
            if rows == args.csv_rows:
                csvs = folder / f"reference_{rows}.csv", folder / f"current_{rows}.csv"
                as_csv(reference, csvs[0])
                as_csv(current, csvs[1])
                print(row("csv", rows, measure(*csvs), baseline), flush=True)
                for path in csvs:
                    path.unlink()
            reference.unlink()
            current.unlink()
        if len(per_million) > 1:
            smallest, largest = min(per_million), max(per_million)
            for index, kind in enumerate(("wall", "cpu")):
                ratio = per_million[largest][index] / per_million[smallest][index]
                print(
                    f"{kind} time per million rows, {largest:,} rows against {smallest:,}: {ratio:.2f} (1.0 = linear; "
                    f"{kind} time ratio {ratio * largest / smallest:.1f} for {largest // smallest}x the rows)"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
