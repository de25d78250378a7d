"""Runs that went wrong, flagged from their stored scores and predictions (a constant prediction, a score far
outside its group), and what a verdict owes to them."""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from .scores import group_label, main_scores
from .tasks import get_task_spec


# Runs that went wrong: flagged in the tables, named under them, and the verdict checked without them.
OUTLIER_POINTS = 15.0  # at least this far (points) from the median of the other runs of its group


OUTLIER_SPREAD = 5.0   # and this many times their robust spread


FLAG_MARK = "†"


FLAG_RULE = (f"A run is flagged ({FLAG_MARK}) when it predicts a constant (the same probabilities for every test "
             "image, or an empty or full mask on every test image), or when its test score lies far outside its "
             f"group: more than {OUTLIER_POINTS:g} points from the median of the group's other runs and more than "
             f"{OUTLIER_SPREAD:g} times their robust spread (1.4826 × their median absolute deviation); that test "
             "needs at least two other runs. A flagged run stays in the mean, the standard deviation and the "
             "t-tests, as every run does in the papers; it is named under the table, and the verdict is computed "
             "again without the flagged runs to say whether it depends on them.")


def flag_runs(df: pd.DataFrame, store=None) -> pd.DataFrame:
    """The runs of ``df`` (long rows) that ``FLAG_RULE`` flags, one row each: config_hash, task, group, fraction,
    seed, score (percent), others_median (of the group's other runs) and the reason. ``store`` (a ``ResultsStore``) is read
    for the per-image predictions the constant test needs; without it only the outlier test runs."""
    scores = main_scores(df)
    out = []
    for _, g in scores.groupby(["task", "fraction", "group"], sort=False):
        g = g.drop_duplicates("config_hash")
        for i, r in g.iterrows():
            others = g.loc[g.index != i, "score"].to_numpy(float)
            med = float(np.median(others)) if len(others) else float("nan")
            reason = None
            if store is not None and store.has(r["config_hash"]):
                reason = constant_prediction(store.cases(r["config_hash"]))
            if reason is None and len(others) >= 2:
                spread = 1.4826 * float(np.median(np.abs(others - med)))
                if abs(r["score"] - med) > max(OUTLIER_POINTS, OUTLIER_SPREAD * spread):
                    reason = f"{r['score'] - med:+.1f} points from the median of the other runs"
            if reason:
                out.append({"config_hash": r["config_hash"], "task": r["task"], "group": r["group"],
                            "fraction": r["fraction"], "seed": int(r["seed"]), "score": r["score"],
                            "others_median": med, "reason": reason})
    cols = ["config_hash", "task", "group", "fraction", "seed", "score", "others_median", "reason"]
    return pd.DataFrame(out, columns=cols)


def constant_prediction(cases: dict) -> str | None:
    """Why a run's test predictions are constant, or None: the same probabilities for every image, or an empty
    (full) mask on every image (``foreground``: each image's predicted share; absent in runs stored before it)."""
    if "test_probs" in cases and len(cases["test_probs"]) > 1:
        if float(np.ptp(np.asarray(cases["test_probs"], float), axis=0).max()) < 1e-6:
            return "predicts the same probabilities for every test image"
    if "test_foreground" in cases and len(cases["test_foreground"]):
        fg = np.asarray(cases["test_foreground"], float)
        if (fg == 0).all():
            return "predicts an empty mask on every test image"
        if (fg >= 0.999).all():
            return "predicts a full mask on every test image"
    return None


def flags_note(flags: pd.DataFrame) -> str:
    """HTML under a table: each flagged run named (task, model, seed, score, reason); empty when none."""
    if flags is None or not len(flags):
        return ""
    items = "".join(
        f"<li>{html.escape(get_task_spec(r.task).display_name)}, {html.escape(group_label(r.group))}"
        + (f", {r.fraction:.0%} of the training split" if r.fraction != 1.0 else "")
        + f", seed {r.seed}: {r.score:.2f} ({html.escape(r.reason)}"
        + (f"; the others' median is {r.others_median:.2f}" if not math.isnan(r.others_median) else "") + ")</li>"
        for r in flags.itertuples())
    return (f'<div class="admonition warning"><p class="admonition-title">{FLAG_MARK} {len(flags)} run'
            f"{'s' if len(flags) > 1 else ''} went wrong</p><ul>{items}</ul><p><small>{html.escape(FLAG_RULE)}"
            "</small></p></div>")


def flag_dependence(flags: pd.DataFrame, outcome_with: str, outcome_without: str | None) -> str:
    """The verdict's sentence about the flagged runs."""
    n = f"the {len(flags)} flagged run{'s' if len(flags) > 1 else ''} ({FLAG_MARK} in the table)"
    if outcome_without is None:
        return f"Without {n} some group has too few runs to be tested again; the verdict is kept with them."
    if outcome_without == outcome_with:
        return f"The verdict does not depend on {n}: without them it is {outcome_without} too."
    return (f"The verdict depends on {n}: without them it would be {outcome_without}, not {outcome_with}. "
            "Look at those runs before trusting either.")
