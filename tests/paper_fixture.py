"""A FIXTURE results file for the paper profile's grids: made-up scores, built so that the papers' printed numbers
and marks are reproduced by construction (and one cell deliberately is not). It tests the reproduced-vs-reported
view and the section pages on the papers' sparse grids; it is not a result of any run. Its rows say so in their
``device`` column and carry a profile of ``paper``.
"""
from __future__ import annotations

import csv

import numpy as np

import medbench_core as mb
from medbench_core.papers import load_reported
from medbench_core.results import COLUMNS
from medbench_core.sections.cells import cells_of_row, paper_init

SECTIONS = ("granularity", "self-supervised", "domain-adaptation", "architectures", "data-size")
DEVICE = "FIXTURE: generated for a test, not a run"
BROKEN = ("shenzhen", "resnet50", "imagenet", 1.0)  # shifted away from the paper's 95.62 ± 0.63
SHIFT = 5.0
SIG = 3.0  # points a "significantly better" model is ahead in the fixture


def _z(n: int) -> np.ndarray:
    """n fixed values with mean 0 and sample std 1."""
    z = np.linspace(-1, 1, n)
    return (z - z.mean()) / z.std(ddof=1)


def cell_values() -> dict[tuple, tuple[float, float]]:
    """(mean, std) in percent for every cell of the paper grids."""
    cells: dict[tuple, tuple[float, float]] = {}
    for _, r in load_reported("domain-adaptation").dropna(subset=["mean"]).iterrows():
        cells[cells_of_row(r)[0]] = (float(r["mean"]), float(r["std"]))
    cells[BROKEN] = (cells[BROKEN][0] + SHIFT, cells[BROKEN][1])

    def get(key):
        return cells.setdefault(key, (80.0, 0.5))

    for section in ("architectures", "data-size"):  # first - second = the printed difference
        for _, r in load_reported(section).iterrows():
            a, b = cells_of_row(r)
            d = float(r["mean"])
            if a in cells and b not in cells:
                cells[b] = (cells[a][0] - d, cells[a][1])
            elif a not in cells:
                m, s = get(b)
                cells[a] = (m + d, s)
    for _, r in load_reported("self-supervised").iterrows():
        key = cells_of_row(r)[0]
        base = get((key[0], key[1], "imagenet", key[3]))
        if key[2] != "imagenet":
            cells[key] = (base[0] + (SIG if r["mark"] in ("*", "**", "***") else 0.0), base[1])
    for _, r in load_reported("granularity").iterrows():
        key = cells_of_row(r)[0]
        base = get((key[0], key[1], "imagenet", key[3]))
        sign = 1 if r["higher"] == r["init"] else -1
        cells[key] = (base[0] + (sign * SIG if r["p_value"] < 0.05 else 0.0), base[1])
        get((key[0], key[1], paper_init("Scratch"), key[3]))
    return cells


def write(path) -> int:
    """Write the fixture for every run of the five paper grids; returns the number of runs."""
    values = cell_values()
    rows, seen = [], set()
    for section in SECTIONS:
        grid = mb.validate_section_params(section, profile="paper")
        z = _z(len(grid.seeds))
        for c in grid.configs:
            h = c.config_hash()
            if h in seen:  # a run shared by two sections (the same task, model and protocol)
                continue
            seen.add(h)
            mean, std = values.get((c.task, c.arch, c.init, c.fraction), (80.0, 0.5))
            score = min(mean + std * z[c.seed], 100.0)  # a score is at most 100 % (the import refuses more)
            metric = mb.create_task(c.task, "paper").metric
            base = {"section": section, "task": c.task, "init": c.init, "arch": c.arch, "seed": c.seed,
                    "fraction": c.fraction, "profile": "paper", "config_hash": h, "medbench_version": "fixture",
                    "git_sha": "fixture", "torch_version": "fixture", "device": DEVICE, "wall_seconds": 0,
                    "finished_at": "2026-12-01T00:00:00+00:00", "synthetic": False}
            for split, m, v in (("test", metric, score / 100), ("val", metric, score / 100), ("test", "loss", 0.3),
                                ("train", "epochs_run", 30), ("train", "best_epoch", 20),
                                ("train", "n_images", round(c.fraction * 1000))):
                rows.append({**base, "split": split, "metric": m, "value": v})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return len(seen)
