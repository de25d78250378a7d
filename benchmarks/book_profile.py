"""Where the seconds of a book build went, read from what the build left (nothing is run): each executed
notebook's papermill timings (kernel start-up, the setup cell's imports, the run cell, the cells that render), the
pre-training stages' recorded seconds, and the recorded wall time of every run trained in the run cell, against
the run cell's wall time (so the number of runs at once shows).

    .venv/bin/python benchmarks/book_profile.py BUILD_ROOT [--cache-dir DIR]

BUILD_ROOT is the checkout that ran `make book` (its book/executed/ and results/). Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.pretrain import checkpoint_meta  # noqa: E402
from medbench_core.progress import stage_paths  # noqa: E402
from medbench_core.sections import get_section, list_sections  # noqa: E402
from medbench_core.sections.grid import validate_section_params  # noqa: E402


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def notebook_times(path: Path) -> dict:
    nb = json.loads(path.read_text())
    pm = nb["metadata"]["papermill"]
    cells = [c for c in nb["cells"] if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    first = min(_t(c["metadata"]["papermill"]["start_time"]) for c in cells)
    src = lambda c: "".join(c["source"])  # noqa: E731
    dur = lambda pred: sum(c["metadata"]["papermill"]["duration"] or 0 for c in cells if pred(src(c)))  # noqa: E731
    run = [c for c in cells if "page.run()" in src(c)]
    return {"total": pm["duration"], "kernel start": (first - _t(pm["start_time"])).total_seconds(),
            "imports and validation": dur(lambda s: "section_page(" in s),
            "run cell": dur(lambda s: "page.run()" in s),
            "run window": ((_t(run[0]["metadata"]["papermill"]["start_time"]),
                            _t(run[0]["metadata"]["papermill"]["end_time"])) if run else None)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--profile", default="demo")
    args = ap.parse_args(argv)
    runs = pd.concat([pd.read_csv(p) for p in (args.root / "results" / "runs").glob("*.csv")], ignore_index=True)
    runs = runs.drop_duplicates("config_hash")
    runs["end"] = pd.to_datetime(runs["finished_at"], utc=True)
    seen_stages: set[Path] = set()
    rows = []
    for key in list_sections():
        path = args.root / "book" / "executed" / get_section(key).notebook
        if not path.is_file():
            continue
        t = notebook_times(path)
        grid = validate_section_params(key, profile=args.profile)
        new_stages = [p for p in stage_paths(grid.configs, args.cache_dir) if p.is_file() and p not in seen_stages]
        seen_stages.update(new_stages)
        stage_s = sum(checkpoint_meta(p).get("seconds", 0.0) for p in new_stages)
        start, end = t["run window"]
        mine = runs[(runs["end"] >= pd.Timestamp(start)) & (runs["end"] <= pd.Timestamp(end))]
        train_wall = float(mine["wall_seconds"].sum())
        # the run cell: pre-training until the first run starts, then fine-tuning
        first = (mine["end"] - pd.to_timedelta(mine["wall_seconds"], unit="s")).min() if len(mine) else None
        pre = (first - pd.Timestamp(start)).total_seconds() if first is not None else t["run cell"]
        fine_tune_window = max(1e-9, t["run cell"] - pre)
        rows.append({"section": key, "notebook (s)": round(t["total"]), "kernel start (s)": round(t["kernel start"], 1),
                     "imports + validation (s)": round(t["imports and validation"], 1),
                     "pre-training (s)": f"{pre:.0f} ({len(new_stages)} stages, {stage_s:.0f} s of stage time)",
                     "fine-tuning (s)": f"{fine_tune_window:.0f} ({len(mine)} runs, {train_wall:.0f} s of run time, "
                                        f"{train_wall / fine_tune_window:.2f} at once)",
                     "tables, figures, verdict (s)": round(t["total"] - t["kernel start"] - t["run cell"]
                                                           - t["imports and validation"], 1)})
    cols = list(rows[0]) if rows else []
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    total = sum(r["notebook (s)"] for r in rows)
    print(f"\nsection notebooks: {total} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
