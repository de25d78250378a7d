"""Time and peak memory of `medbench results import` of a file of N rows (constructed runs of the smoke grids, ten
rows each, as training writes them), into a new store, in a fresh process (as a user runs it), beside the same
command on a file of ten rows (the fixed cost of starting and knowing the grids).

    .venv/bin/python benchmarks/import_rows.py 100000
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.results import COLUMNS  # noqa: E402


def write_file(path: Path, n_rows: int) -> int:
    rows, k = [], 0
    while len(rows) < n_rows:
        h = f"{k:016x}"
        for split, metric, value in [("test", "mean_auc", 0.7), ("val", "mean_auc", 0.71), ("val", "loss", 0.5),
                                     ("test", "loss", 0.52), ("train", "epochs_run", 3), ("train", "best_epoch", 1),
                                     ("train", "n_images", 100)] + [("test", f"auc:c{j}", 0.7) for j in range(3)]:
            rows.append({"section": "domain-adaptation", "task": "syn_dxc", "init": "scratch", "arch": "test_resnet",
                         "seed": k, "fraction": 1.0, "profile": "smoke", "split": split, "metric": metric,
                         "value": value, "config_hash": h, "medbench_version": "bench", "git_sha": "unknown",
                         "torch_version": "2.14.1", "device": "cpu", "wall_seconds": 1.0,
                         "finished_at": "2026-12-03T00:00:00+00:00", "synthetic": True})
        k += 1
    pd.DataFrame(rows[:n_rows - n_rows % 10 or n_rows])[COLUMNS].to_csv(path, index=False)
    return k


def _import_in_child(path: Path, store: Path) -> tuple[int, float, float]:
    """Exit code, seconds and peak memory (MB) of `medbench results import` in a fresh process."""
    import subprocess

    t0 = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "medbench_core.cli", "results", "import", str(path), "--results-dir",
                           str(store)], capture_output=True).returncode
    dt = time.perf_counter() - t0
    return code, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main_(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        small, path = Path(d) / "small.csv", Path(d) / "rows.csv"
        write_file(small, 10)
        runs = write_file(path, n)
        # the fixed cost first (the modules and the known grids' hashes), in its own process: a child's peak is
        # the largest of the children so far, so the larger import comes second
        code0, dt0, peak0 = _import_in_child(small, Path(d) / "store0")
        code, dt, peak = _import_in_child(path, Path(d) / "store")
        print(f"10 rows (1 run): exit {code0}, {dt0:.1f} s, peak {peak0:.0f} MB (the fixed cost)")
        print(f"{n:,} rows ({runs:,} runs, {path.stat().st_size / 2**20:.0f} MB of CSV): exit {code}, {dt:.1f} s, "
              f"peak {peak:.0f} MB")


if __name__ == "__main__":
    main_(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
