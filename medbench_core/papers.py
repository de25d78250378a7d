"""What the papers report, as data: the registry (``data/reported.csv``), statistics re-derived from it, and the
vocabulary in which the papers' claims are checked against their own numbers. Each section's own claims, table and
figure of the papers' numbers live in its plug-in (``medbench_core.sections``).

Every number in ``references/REPORTED.md`` (sections 1-4) is one row of the registry. Only the domain-adaptation
table prints mean ± std; there the papers' t-tests are recomputed from summary statistics. The number of runs
behind each cell is not printed, and the original code computed the population std (ddof=0), so every re-derived
p-value is given under stated assumptions (runs per cell 3, 5 or 10; the printed std being the population or the
sample std), and a conclusion that changes with them is flagged as such.
"""
from __future__ import annotations

import html
import math
from importlib import resources

import pandas as pd

from .stats import ALPHA, is_significant, ttest_from_stats
from .tables import Table, grid_html, wrap

ASSUMED_RUNS = (3, 5, 10)
STD_KINDS = ("population", "sample")
# How a claim fares on the papers' own printed numbers (our runs have their own words: verdicts.OUTCOMES)
SUPPORTED, NOT_SUPPORTED, UNDETERMINABLE = "supported", "not supported", "undeterminable"
FLAGS = {
    SUPPORTED: "the printed numbers back the claim at the 0.05 level (under every assumption where they must be "
               "re-derived)",
    NOT_SUPPORTED: "the printed numbers go against the claim, or show no significant difference where it needs one",
    UNDETERMINABLE: "the printed numbers cannot decide: no std or test is printed, or the answer changes with the "
                    "number of runs or the kind of std, which the papers do not state",
}



def load_reported(section: str | None = None) -> pd.DataFrame:
    """The papers' reported numbers (one row per printed number or mark), optionally for one ``section``.

    Example:
        >>> load_reported("domain-adaptation").query("task == 'TXC' and init == 'ImageNet'")["mean"].item()
        95.62
    """
    with resources.files("medbench_core").joinpath("data/reported.csv").open() as f:
        df = pd.read_csv(f, dtype={"mark": str, "note": str, "dataset": str, "approx": str}, keep_default_na=False,
                         na_values={"mean": [""], "std": [""], "n_runs": [""], "p_value": [""],
                                    "labelled_images": [""]})
    if section is not None:
        if section not in set(df["section"]):
            raise KeyError(f"unknown section {section!r}; valid sections: {', '.join(dict.fromkeys(df['section']))}")
        df = df[df["section"] == section]
    return df.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Re-derived t-tests (domain adaptation: the one table with mean ± std)


def as_sample_std(std: float, n: int, kind: str) -> float:
    """The sample std (ddof=1) behind a printed std of ``kind`` ``population`` (ddof=0) or ``sample``.

    Example:
        >>> round(as_sample_std(1.0, 5, "population"), 4)
        1.118
    """
    if kind == "population":
        return std * math.sqrt(n / (n - 1))
    if kind == "sample":
        return std
    raise ValueError(f"unknown std kind {kind!r}; valid: population, sample")


def rederive_vs_best(section: str = "domain-adaptation", n_runs=ASSUMED_RUNS, std_kinds=STD_KINDS) -> pd.DataFrame:
    """For every cell with mean ± std: the two-sample t-test (Student, two-sided) against the best cell of its
    task, under each assumption (runs per cell, std kind). ``status`` is ``best``, ``equivalent`` (p > 0.05 under
    every assumption), ``below`` (p <= 0.05 under every assumption) or ``depends`` (the assumptions disagree)."""
    rep = load_reported(section).dropna(subset=["mean", "std"])
    out = []
    for task, g in rep.groupby("task", sort=False):
        b = g.loc[g["mean"].idxmax()]
        for _, r in g.iterrows():
            row = {"task": task, "init": r["init"], "mean": r["mean"], "std": r["std"], "best": b["init"],
                   "diff_vs_best": r["mean"] - b["mean"]}
            if r["init"] == b["init"]:
                row["status"] = "best"
            else:
                ps = []
                for n in n_runs:
                    for kind in std_kinds:
                        p = ttest_from_stats(r["mean"], as_sample_std(r["std"], n, kind), n,
                                             b["mean"], as_sample_std(b["std"], n, kind), n)
                        row[f"p (n={n}, {kind} std)"] = p
                        ps.append(p)
                row["status"] = ("equivalent" if not any(map(is_significant, ps))
                                 else "below" if all(map(is_significant, ps)) else "depends")
            out.append(row)
    return pd.DataFrame(out)


def rederive_pair(section: str, task: str, a: str, b: str, n_runs=ASSUMED_RUNS, std_kinds=STD_KINDS) -> dict:
    """p-values of the t-test between inits ``a`` and ``b`` on ``task`` under each assumption."""
    rep = load_reported(section).dropna(subset=["mean", "std"]).set_index(["task", "init"])
    ra, rb = rep.loc[(task, a)], rep.loc[(task, b)]
    return {(n, kind): ttest_from_stats(ra["mean"], as_sample_std(ra["std"], n, kind), n,
                                        rb["mean"], as_sample_std(rb["std"], n, kind), n)
            for n in n_runs for kind in std_kinds}


def flag(ps, *, want_significant: bool) -> str:
    """The flag of a claim from the p-values of its test under every assumption: ``want_significant`` when the claim
    needs a significant difference, otherwise when it needs none."""
    sig = [is_significant(p) for p in ps]
    if all(sig):
        return SUPPORTED if want_significant else NOT_SUPPORTED
    if not any(sig):
        return NOT_SUPPORTED if want_significant else SUPPORTED
    return UNDETERMINABLE


def p_range(ps) -> str:
    """``p = lo to hi`` over the assumptions (or the one p-value)."""
    return f"p = {min(ps):.2g} to {max(ps):.2g}" if len(ps) > 1 else f"p = {ps[0]:.2g}"


def rederive_table(section: str = "domain-adaptation") -> Table:
    """``rederive_vs_best`` formatted for the book: one row per cell, one column of p-values per assumption."""
    df = rederive_vs_best(section)
    pcols = [c for c in df.columns if c.startswith("p (")]
    text = pd.DataFrame({
        "task": df["task"], "init": df["init"],
        "mean ± std": [f"{m:.2f} ± {s:.2f}" for m, s in zip(df["mean"], df["std"])],
        "vs best": [("best" if st == "best" else f"{d:+.2f}") for d, st in zip(df["diff_vs_best"], df["status"])],
        **{c.replace("p (", "").replace(")", "").replace(" std", ""): df[c].map(
            lambda p: "" if pd.isna(p) else f"{p:.2g}") for c in pcols},
        "conclusion": df["status"].map({"best": "best", "equivalent": "equivalent to the best",
                                        "below": "below the best", "depends": "depends on the assumption"}),
    })
    classes = pd.DataFrame("", index=text.index, columns=text.columns)
    classes.loc[df["status"] == "equivalent", "conclusion"] = "mb-equiv"
    classes.loc[df["status"] == "depends", "conclusion"] = "mb-depends"
    cap = ("Student's two-sample t-test (two-sided) of each cell against the best cell of its task, from the printed "
           "mean ± std. Columns: assumed runs per cell (n) and whether the printed std is the population std "
           "(ddof = 0, as in the original code) or the sample std (ddof = 1). A conclusion holds only if it holds "
           "under every assumption.")
    cells = text.set_index(["task", "init"])
    cells.index = [f"{t} · {i}" for t, i in cells.index]
    classes = classes.drop(columns=["task", "init"])
    classes.index = cells.index
    return Table(text, grid_html(cells, cap, classes=classes, corner="task · init"))


def claims_table(rows) -> Table:
    """Claims (dicts with ``claim``, ``flag``, ``evidence``) with their flags, as a table for the book."""
    df = pd.DataFrame(list(rows), columns=["section", "claim", "flag", "evidence"])
    text = df[["claim", "flag", "evidence"]].set_index("claim")
    colour = {SUPPORTED: "#d9f2d9", NOT_SUPPORTED: "#f8d7d7", UNDETERMINABLE: "#eeeeee"}
    body = "".join(
        f"<tr><td style='text-align:left'>{html.escape(r.claim)}</td>"
        f"<td style='background:{colour[r.flag]}'><b>{r.flag}</b></td>"
        f"<td style='text-align:left'>{html.escape(r.evidence)}</td></tr>" for r in df.itertuples())
    cap = (f"Each claim checked against the papers' own printed numbers at a significance level of {ALPHA} "
           "(the flags are explained on the methods page).")
    return Table(text, wrap(f'<table class="mb-table"><caption>{cap}</caption><thead><tr><th>claim</th>'
                            f"<th>flag</th><th>evidence</th></tr></thead><tbody>{body}</tbody></table>"))
