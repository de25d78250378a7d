"""Reproduced vs reported, cell by cell: for every number or mark the papers print, ours next to it and whether
ours is consistent with it.

What "consistent" means depends on what the paper prints:
- mean ± std (domain adaptation): a two-sample t-test from the two summaries; the paper's runs per cell are not
  printed, so ``PAPER_RUNS`` (10, the maintainers' figure) is assumed and its std taken as the population std
  the original code computed. Consistent: p >= 0.05.
- a difference without std (ConvNeXt minus Swin; Swin minus ConvNeXt by labelled images): a t-test of our
  difference (Welch, from our runs) against the printed one. Consistent: p >= 0.05.
- a significance mark against a comparison model (self-supervised vs supervised ImageNet; ImageNet vs iNat2021):
  our t-test must give the same answer (significantly better, or not; the same winner when the paper's is
  significant).
- a mean without std (the approximate values read off a figure): shown, not tested.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

from .. import papers
from ..pretrain import get_init
from ..scores import main_scores
from ..stats import ALPHA, is_significant, significance_mark, ttest, ttest_from_stats
from ..tables import Table, frame_table
from ..tasks import ASSUMED_TASKS
from .cells import cells_of_row, compared_init

PAPER_RUNS = 10  # assumed runs behind each printed mean ± std
CONSISTENT, INCONSISTENT, NOT_TESTED, NOT_RUN = "yes", "no", "not tested", "not run"


def cell_scores(df: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Our test scores in percent, by (task, arch, init, fraction)."""
    s = main_scores(df)
    return {(t, a, i, float(f)): g["score"].to_numpy() for (t, a, i, f), g in
            s.groupby(["task", "arch", "init", "fraction"], sort=False)}


def _ms(x: np.ndarray) -> str:
    return f"{x.mean():.2f} ± {x.std(ddof=1):.2f} (n = {len(x)})" if len(x) > 1 else f"{x.mean():.2f} (n = 1)"


def _difference_test(a: np.ndarray, b: np.ndarray, printed: float) -> tuple[float, float]:
    """Our difference mean(a) - mean(b) and the Welch t-test of it against ``printed``."""
    d = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, 1.0 if d == printed else 0.0
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return d, float(2 * st.t.sf(abs((d - printed) / se), dof))


def _better(mark: str) -> bool | None:
    """What a printed mark says of a model against its comparison: significantly better (True), not (False), or
    nothing testable (None)."""
    if mark in ("*", "**", "***"):
        return True
    if mark in ("n.s.", "not sig. better"):
        return False
    return None


def reproduction(section: str, df: pd.DataFrame) -> pd.DataFrame:
    """One row per printed number or mark of ``section`` (``n/a`` cells left out): the cell, the paper, ours, the
    difference, the test and whether ours is consistent with the paper."""
    scores = cell_scores(df)
    rows = []
    for _, r in papers.load_reported(section).iterrows():
        if r["mark"] == "n/a":
            continue
        keys = cells_of_row(r)
        task = keys[0][0]
        where = f"{r['task']}" + (f" · {r['dataset']}" if r["dataset"] else "")
        model = f"{r['arch']}" if len(keys) > 1 else f"{r['init']}" + (f" ({r['arch']})" if r["arch"] != "resnet50"
                                                                        else "")
        assumed = " †" if task in ASSUMED_TASKS else ""  # no script in the original code: our protocol
        row = {"cell": f"{where} · {model}" + (f" · {r['init']}" if len(keys) > 1 else "") + assumed, "paper": "",
               "ours": "", "ours − paper": "", "test": "", "consistent": NOT_TESTED}
        got = [scores.get(k) for k in keys]
        if len(keys) == 2:  # a printed difference between two models
            _difference(row, r, got)
        elif not pd.isna(r["mean"]) and not pd.isna(r["std"]):  # mean ± std
            _mean_std(row, r, got[0])
        else:  # a mark (or a figure's approximate value) against a comparison model
            _mark(row, r, got[0], scores, keys[0])
        rows.append(row)
    return pd.DataFrame(rows)


def _difference(row: dict, r, got: list) -> None:
    """A printed difference of two models: ours tested against it (Welch)."""
    row["paper"] = f"{r['mean']:+.2f} {r['mark']}".strip()
    if any(g is None or len(g) < 2 for g in got):
        row.update(consistent=NOT_RUN)
        return
    d, p = _difference_test(got[0], got[1], float(r["mean"]))
    _, p0 = _difference_test(got[0], got[1], 0.0)
    row.update({"ours": f"{d:+.2f} {significance_mark(p0)}", "ours − paper": f"{d - r['mean']:+.2f}",
                "test": f"Welch t-test of ours against the printed difference: p = {p:.2g}",
                "consistent": CONSISTENT if p >= ALPHA else INCONSISTENT})


def _mean_std(row: dict, r, x) -> None:
    """A printed mean ± std: ours tested against it from the summaries (the paper's runs assumed)."""
    row["paper"] = f"{r['mean']:.2f} ± {r['std']:.2f}"
    if x is None or len(x) < 2:
        row.update(consistent=NOT_RUN)
        return
    std = papers.as_sample_std(float(r["std"]), PAPER_RUNS, "population")
    p = ttest_from_stats(x.mean(), x.std(ddof=1), len(x), float(r["mean"]), std, PAPER_RUNS)
    row.update({"ours": _ms(x), "ours − paper": f"{x.mean() - r['mean']:+.2f}",
                "test": f"t-test from summaries, paper n = {PAPER_RUNS} assumed: p = {p:.2g}",
                "consistent": CONSISTENT if p >= ALPHA else INCONSISTENT})


def _mark(row: dict, r, x, scores: dict, key: tuple) -> None:
    """A printed mark (or a figure's approximate value) against a comparison model: ours tested the same way."""
    task, arch, _, fraction = key
    has_mean, has_std = not pd.isna(r["mean"]), not pd.isna(r["std"])
    base = compared_init(r)
    y = scores.get((task, arch, base, fraction)) if base else None
    printed = []
    if has_mean:
        printed.append(f"about {r['mean']:.1f}" if r["approx"] or not has_std else f"{r['mean']:.2f}")
    if r["mark"]:
        printed.append(f"{r['mark']} {r['comparison']}")
    if not pd.isna(r["p_value"]):
        printed.append(f"{r['higher']} higher, p = {r['p_value']:.2g}")
    row["paper"] = "; ".join(printed)
    if x is None or len(x) < 2:
        row.update(consistent=NOT_RUN)
        return
    row["ours"] = _ms(x)
    if has_mean:
        row["ours − paper"] = f"{x.mean() - r['mean']:+.2f}"
    if y is None or len(y) < 2:
        return
    want = _better(r["mark"])
    d, p = x.mean() - y.mean(), ttest(x, y)
    row["test"] = f"ours vs {get_init(base).label}: {d:+.2f}, p = {p:.2g} ({significance_mark(p)})"
    if not pd.isna(r["p_value"]):  # a winner and a printed p
        paper_sig, paper_up = is_significant(r["p_value"]), r["higher"] == r["init"]
        ok = (is_significant(p) and (d > 0) == paper_up) if paper_sig else not is_significant(p)
        row["consistent"] = CONSISTENT if ok else INCONSISTENT
    elif want is not None:
        ours = bool(is_significant(p) and d > 0)
        if r["mark"] == "n.s.":
            ours = bool(is_significant(p))
        row["consistent"] = CONSISTENT if ours == want else INCONSISTENT


def counts(table: pd.DataFrame) -> dict:
    """How many printed cells ours is consistent with, of those tested; and how many were not run or not
    testable."""
    c = table["consistent"].value_counts()
    return {"consistent": int(c.get(CONSISTENT, 0)), "tested": int(c.get(CONSISTENT, 0) + c.get(INCONSISTENT, 0)),
            "not_run": int(c.get(NOT_RUN, 0)), "not_tested": int(c.get(NOT_TESTED, 0)), "printed": len(table)}


def reproduction_table(section: str, df: pd.DataFrame, profile: str) -> Table:
    t = reproduction(section, df)
    n = counts(t)
    cap = (f"Reproduced vs reported, every cell the papers print (profile {profile}): {n['consistent']} of "
           f"{n['tested']} tested cells consistent with the paper; {n['not_run']} not run here; {n['not_tested']} "
           f"printed without anything to test against (a figure's approximate value). The paper's runs per cell are "
           f"not printed: {PAPER_RUNS} are assumed where a test needs them, and its std taken as the population std "
           "the original code computed.")
    if t["cell"].str.endswith(" †").any():
        cap += (f" † rests on an assumed protocol: the original code has no script for "
                f"{', '.join(ASSUMED_TASKS)}, so these runs follow the DART 2021 classification protocol, our choice.")
    return frame_table(t, cap)
