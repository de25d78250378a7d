"""Write medbench_core/data/demo_reference.csv: the demo profile's reference range of every run group, from the store
of a `make book` build (maintainers only; `medbench check` reads the file).

    python scripts/freeze_demo_reference.py RESULTS_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from medbench_core.results import ResultsStore

OUT = Path(__file__).resolve().parents[1] / "medbench_core" / "data" / "demo_reference.csv"


def main(results_dir: str) -> None:
    df = ResultsStore(results_dir).load()
    df = df[(df["profile"] == "demo") & (df["split"] == "test") & df["metric"].isin(["mean_auc", "dice"])]
    df = df.drop_duplicates(["task", "arch", "init", "fraction", "seed"])
    g = df.groupby(["task", "arch", "init", "fraction", "metric"])["value"]
    ref = pd.DataFrame({"n": g.size(), "mean": g.mean(), "std": g.std(ddof=1), "min": g.min(), "max": g.max()})
    ref = ref.reset_index().round(6)
    OUT.write_text("# demo-profile test scores of the issue-22 `make book` build (six seeds per cell, SYNTHETIC data), "
                   "per run group\n"
                   + ref.to_csv(index=False))
    print(f"{len(ref)} groups from {len(df)} runs -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
