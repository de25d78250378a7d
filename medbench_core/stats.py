"""Statistics over runs: mean, sample standard deviation, independent two-sample t-tests, the papers' marks.

Conventions (stated in the book): the std is the *sample* std (ddof=1; the original code used the population std,
ddof=0); the t-test is Student's independent two-sample test with pooled variance (``equal_var=True``), two-sided,
as the papers describe; marks follow the papers: n.s. p >= 0.05, * p < 0.05, ** p < 0.01, *** p < 0.0001.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as _st

from .errors import BadFileError

ALPHA = 0.05  # the one significance level: a difference is significant when p < ALPHA


def is_significant(p: float) -> bool:
    """True when ``p`` is below the significance level (``nan``, an undefined test, is never significant).

    Example:
        >>> is_significant(0.049), is_significant(0.05), is_significant(float("nan"))
        (True, False, False)
    """
    return p is not None and not math.isnan(p) and p < ALPHA


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1; ``nan`` for a single value) and count.

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0, 3)
    """
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else float("nan")), len(v)


def ttest(a, b, equal_var: bool = True) -> float:
    """Two-sided p-value of the independent two-sample t-test between groups ``a`` and ``b``.

    Returns ``nan`` when a group has fewer than two values. Two groups of identical constant values give 1.0;
    constant but different groups give 0.0 (zero variance: the difference is certain).

    Example:
        >>> round(ttest([1, 2, 3, 4], [3, 4, 5, 6]), 3)
        0.071
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(_st.ttest_ind(a, b, equal_var=equal_var).pvalue)


def ttest_from_stats(mean1, std1, n1, mean2, std2, n2, equal_var: bool = True) -> float:
    """Two-sided p-value of the two-sample t-test from summary statistics (sample stds)."""
    return float(_st.ttest_ind_from_stats(mean1, std1, n1, mean2, std2, n2, equal_var=equal_var).pvalue)


def significance_mark(p: float) -> str:
    """The papers' notation: ``n.s.``, ``*`` (p < 0.05), ``**`` (p < 0.01), ``***`` (p < 0.0001); ``n/a`` if
    undefined.

    Example:
        >>> [significance_mark(p) for p in (0.2, 0.03, 0.004, 1e-5)]
        ['n.s.', '*', '**', '***']
    """
    if p is None or math.isnan(p):
        return "n/a"
    if p < 1e-4:
        return "***"
    if p < 0.01:
        return "**"
    if p < ALPHA:
        return "*"
    return "n.s."


def compare_groups(groups: dict[str, list[float]], baseline: str | None = None) -> pd.DataFrame:
    """One row per group: mean, std, n, whether it is the best (highest mean), the p-value against the best and
    whether it is equivalent to the best (not significantly different, the papers' highlighting), and, with ``baseline``, the p-value,
    mark and direction against the baseline group.

    Example:
        >>> bool(compare_groups({"a": [1, 2, 3], "b": [1.5, 2.5, 3.5]}).loc["b", "is_best"])
        True
    """
    rows = {}
    for name, vals in groups.items():
        m, s, n = mean_std(vals)
        rows[name] = dict(mean=m, std=s, n=n)
    df = pd.DataFrame.from_dict(rows, orient="index")
    if df.empty:
        return df
    best = df["mean"].idxmax()
    df["is_best"] = df.index == best
    df["p_vs_best"] = [float("nan") if g == best else ttest(groups[g], groups[best]) for g in df.index]
    df["equivalent_to_best"] = (~df["is_best"]) & df["p_vs_best"].notna() & ~df["p_vs_best"].map(is_significant)
    if baseline is not None:
        if baseline not in groups:
            raise KeyError(f"baseline {baseline!r} is not among the groups: {', '.join(groups)}")
        df["p_vs_baseline"] = [float("nan") if g == baseline else ttest(groups[g], groups[baseline])
                               for g in df.index]
        df["mark_vs_baseline"] = [("" if g == baseline else significance_mark(p))
                                  for g, p in zip(df.index, df["p_vs_baseline"])]
        df["diff_vs_baseline"] = df["mean"] - df.loc[baseline, "mean"]
    return df


def unique_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (long rows) with each (run, split, metric) once: a run listed twice (a grid or a store read twice, a
    file with a repeated line) is counted once, so no statistic sees a seed twice. Two different values for the
    same run, split and metric raise: the store is inconsistent and no number drawn from it can be trusted.

    Example:
        >>> r = pd.DataFrame({"config_hash": ["a", "a", "b"], "split": "test", "metric": "dice", "value": [.5, .5, .7]})
        >>> unique_runs(r)["value"].tolist()
        [0.5, 0.7]
    """
    key = ["config_hash", "split", "metric"]
    clash = rows.groupby(key)["value"].nunique()
    clash = clash[clash > 1]
    if len(clash):
        h, split, metric = clash.index[0]
        raise BadFileError(f"run {h} holds two different {split} {metric} values; the results store is "
                           f"inconsistent: remove runs/{h}.csv (and run it again) or restore it from a backup")
    return rows.drop_duplicates(key).copy()


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of a family of p-values: each adjusted p-value is compared with ``ALPHA`` as
    it is, and the chance that any true null hypothesis of the family is called significant stays at most
    ``ALPHA`` (family-wise error control, with no assumption on how the tests depend on each other). Undefined
    p-values (``nan``) stay undefined and do not count in the family's size.

    Used by every verdict rule that scans several comparisons; the tables keep the papers' per-comparison marks.

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, float("nan")])]
        [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray([float("nan") if v is None else float(v) for v in pvalues], dtype=float)
    out = np.full(len(p), float("nan"))
    ok = np.flatnonzero(~np.isnan(p))
    m, running = len(ok), 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))  # step-down: never below a smaller p's adjustment
        out[i] = running
    return out.tolist()
