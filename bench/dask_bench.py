"""The Dask engine against the fast engine, as whole `driftloop drift` processes on the same parquet files.

Per size (1M rows by default) x 20 mixed columns (drift_bench's data: 14 numeric, 6 string categoricals),
with and without drift, written with row groups of 100k rows (the partitions the Dask workers read):

- baseline: `driftloop drift --json` (the fast engine, all in the one process);
- dask: `driftloop drift --json --engine dask --dask-scheduler ADDR` against a `distributed.LocalCluster`
  of 2 worker processes started once beforehand (an existing cluster, as on Kubernetes: its start is not
  counted). Its workers are restarted before each run so that their peak memory is this run's.

Printed: wall and CPU seconds and peak memory of the `driftloop` process (for dask, the client alone: the
point is that it stays small whatever the batch), the workers' largest peak, ratios to the baseline, and
whether both answered the same JSON (verdicts and scores).

    python bench/dask_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
from pathlib import Path

from distributed import Client, LocalCluster
from drift_bench import driftloop_command, make_frame, run_process

ROW_GROUP = 100_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000", help="comma-separated sizes")
    sizes = [int(size) for size in parser.parse_args().rows.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        print(f"dask: LocalCluster of 2 worker processes (1 thread each) at {cluster.scheduler_address}")
        print(
            f"{'rows':>9} {'drift':>5} | {'fast s':>7} {'dask s':>7} {'ratio':>6} | {'fast cpu':>8} "
            f"{'client cpu':>10} | {'fast MB':>7} {'client MB':>9} {'ratio':>6} {'worker MB':>9} | {'answer':>6} | load"
        )
        for rows in sizes:
            reference = Path(folder) / f"reference_{rows}.parquet"
            make_frame(rows, seed=1, drifted=False).to_parquet(reference, index=False, row_group_size=ROW_GROUP)
            for drifted in (False, True):
                current = Path(folder) / f"current_{rows}_{drifted}.parquet"
                make_frame(rows, seed=2, drifted=drifted).to_parquet(current, index=False, row_group_size=ROW_GROUP)
                argv = [*driftloop_command(), "drift", "--reference", str(reference), "--current", str(current)]
                fast = run_process([*argv, "--json"])
                client.restart()  # fresh workers: their peak memory is this run's
                dask = run_process([*argv, "--json", "--engine", "dask", "--dask-scheduler", cluster.scheduler_address])
                worker_mb = max(client.run(_peak_mb).values())
                same = json.loads(fast[3]) == json.loads(dask[3])
                print(
                    f"{rows:>9} {'yes' if drifted else 'no':>5} | {fast[0]:>7.2f} {dask[0]:>7.2f} "
                    f"{dask[0] / fast[0]:>5.2f}x | {fast[1]:>8.1f} {dask[1]:>10.1f} | "
                    f"{fast[2]:>7.0f} {dask[2]:>9.0f} {dask[2] / fast[2]:>5.2f}x {worker_mb:>9.0f} | "
                    f"{'same' if same else 'DIFFER':>6} | {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
                current.unlink()
            reference.unlink()


if __name__ == "__main__":
    main()
