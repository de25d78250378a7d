"""Scores of stored runs, read from the results store's long table: each run's main score (AUC or Dice, in percent),
per group and task its mean, standard deviation and t-test against a baseline, and the paired differences of two
groups. Nothing here trains, draws or writes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .models import get_arch
from .pretrain import get_init
from .stats import compare_groups, significance_mark, ttest, unique_runs
from .tasks import get_task_spec


MAIN_METRICS = ("mean_auc", "dice")


def group_label(key: str) -> str:
    """Display name of a table row key: an init (``synth_imagenet`` -> "ImageNet-like") or an ``arch/init`` pair
    ("ConvNeXt (mini) · ImageNet-like")."""
    if "/" in key:
        arch, init = key.split("/", 1)
        return f"{get_arch(arch).label or arch} · {get_init(init).label}"
    return get_init(key).label


def _groups(df: pd.DataFrame) -> pd.Series:
    return df["group"] if "group" in df.columns else df["init"]


def main_scores(df: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per run: group (the table row key), task, init, arch, seed, fraction and its main metric in percent
    (AUC or Dice x 100)."""
    d = unique_runs(df[(df["split"] == split) & df["metric"].isin(MAIN_METRICS)])
    d["group"] = _groups(d)
    d["score"] = 100 * pd.to_numeric(d["value"], errors="coerce")
    d["fraction"] = d["fraction"].astype(float)
    undefined = d[d["score"].isna()]  # e.g. an AUC on a test split with one label value: left out, and counted
    out = d[d["score"].notna()][["group", "task", "init", "arch", "seed", "fraction", "metric", "score",
                                 "config_hash"]].reset_index(drop=True)
    out.attrs["undefined"] = len(undefined)
    return out


def summarize(df: pd.DataFrame, baseline: str | None, split: str = "test") -> pd.DataFrame:
    """Per (task, fraction, group): mean, sample std, n, best / equivalent-to-best, and p-value, mark and difference
    against the ``baseline`` group. Scores are in percent. Groups are inits, or ``arch/init`` pairs when the runs
    carry a ``group`` column (see ``load_grid_results``)."""
    scores = main_scores(df, split)
    parts = []
    for (task, frac), g in scores.groupby(["task", "fraction"], sort=False):
        groups = {k: gi["score"].tolist() for k, gi in g.groupby("group", sort=False)}
        comp = compare_groups(groups, baseline=baseline if baseline in groups else None)
        parts.append(comp.rename_axis("group").reset_index().assign(task=task, fraction=frac))
    out = pd.concat(parts, ignore_index=True)
    out.attrs["undefined"] = scores.attrs.get("undefined", 0)  # runs whose score is undefined, left out of n
    out["init"] = out["group"].str.split("/").str[-1]
    out["arch"] = out["group"].map(lambda k: k.split("/")[0] if "/" in k else "")
    return out


def pair_differences(df: pd.DataFrame, pairs, task: str, split: str = "test") -> pd.DataFrame:
    """For each (name, group a, group b) in ``pairs`` and each fraction: mean of b minus mean of a in points,
    the t-test p-value and mark, and the labelled training images."""
    scores = main_scores(df, split)
    scores = scores[scores["task"] == task]
    n_train = (df[(df["task"] == task) & (df["metric"] == "n_images")].assign(fraction=lambda d: d["fraction"]
               .astype(float)).groupby("fraction")["value"].first())
    rows = []
    for frac, g in scores.groupby("fraction"):
        for name, a, b in pairs:
            va, vb = g.loc[g["group"] == a, "score"].tolist(), g.loc[g["group"] == b, "score"].tolist()
            if len(va) < 2 or len(vb) < 2:
                continue
            p = ttest(vb, va)
            rows.append({"pair": name, "fraction": frac, "labelled images": int(n_train.get(frac, 0)),
                         "difference": float(np.mean(vb) - np.mean(va)), "p": p, "mark": significance_mark(p)})
    return pd.DataFrame(rows)


def is_synthetic(tasks) -> bool:
    """True when any of ``tasks`` trains on generated data: tables, figures and prose then say SYNTHETIC.

    Example:
        >>> is_synthetic(["syn_txc"]), is_synthetic(["shenzhen"])
        (True, False)
    """
    return any(get_task_spec(t).synthetic for t in tasks)
