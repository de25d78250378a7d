"""Tables, figures and verdicts for the book, computed from the results store (never typed by hand)."""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import reported
from .reported import _CSS as _TABLE_CSS
from .reported import Table
from .pretrain import get_init
from .stats import compare_groups
from .tasks import get_task_spec

MAIN_METRICS = ("mean_auc", "dice")

def main_scores(df: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per run: task, init, arch, seed, fraction and its main metric in percent (AUC or Dice x 100)."""
    d = df[(df["split"] == split) & df["metric"].isin(MAIN_METRICS)].copy()
    d["score"] = 100 * d["value"].astype(float)
    return d[["task", "init", "arch", "seed", "fraction", "metric", "score", "config_hash"]].reset_index(drop=True)


def summarize(df: pd.DataFrame, baseline: str, split: str = "test") -> pd.DataFrame:
    """Per (task, init): mean, sample std, n, best / equivalent-to-best, and p-value, mark and difference against
    ``baseline``. Scores are in percent."""
    scores = main_scores(df, split)
    parts = []
    for task, g in scores.groupby("task", sort=False):
        groups = {i: gi["score"].tolist() for i, gi in g.groupby("init", sort=False)}
        comp = compare_groups(groups, baseline=baseline if baseline in groups else None)
        parts.append(comp.rename_axis("init").reset_index().assign(task=task))
    return pd.concat(parts, ignore_index=True)


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}"


def paper_table(summary: pd.DataFrame, inits, tasks, *, baseline: str, caption: str) -> Table:
    """Inits x tasks, mean ± std in percent, in the papers' layout: best in bold, runs not significantly different
    from the best highlighted (p > 0.05), and marks (n.s., *, **, ***) against ``baseline``."""
    s = summary.set_index(["init", "task"])
    text = pd.DataFrame(index=[get_init(i).label for i in inits],
                        columns=[get_task_spec(t).display_name for t in tasks], dtype=object)
    rows_html = []
    for i in inits:
        cells = []
        for t in tasks:
            if (i, t) not in s.index:
                text.loc[get_init(i).label, get_task_spec(t).display_name] = "–"
                cells.append("<td>–</td>")
                continue
            r = s.loc[(i, t)]
            val = _fmt(r["mean"], r["std"])
            mark = r.get("mark_vs_baseline", "") or ""
            plain = val + (f" {mark}" if mark else "") + (" (best)" if r["is_best"] else "")
            plain += " (≈ best)" if r["equivalent_to_best"] else ""
            text.loc[get_init(i).label, get_task_spec(t).display_name] = plain
            val = val.replace(" ± ", "\u00a0±\u00a0")
            body = f"<b>{val}</b>" if r["is_best"] else val
            sup = f"<sup>{html.escape(mark)}</sup>" if mark else ""
            cls = ' class="mb-equiv"' if r["equivalent_to_best"] else ""
            cells.append(f"<td{cls}>{body}{sup}</td>")
        rows_html.append(f"<tr><th>{html.escape(get_init(i).label)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(get_task_spec(t).display_name)}<br><small>{get_task_spec(t).metric_label}"
                   f"</small></th>" for t in tasks)
    legend = (f"{html.escape(caption)} Bold: best mean. Highlighted: not significantly different from the best "
              f"(independent two-sample t-test, p &gt; 0.05). Marks against {html.escape(get_init(baseline).label)}: "
              "n.s. p ≥ 0.05, * p &lt; 0.05, ** p &lt; 0.01, *** p &lt; 0.0001. Mean ± sample std over seeds.")
    table = (f'{_TABLE_CSS}<table class="mb-table"><caption>{legend}</caption><thead><tr><th>Initialisation</th>'
             f"{head}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>")
    return Table(text, table)


def plot_section(df: pd.DataFrame, inits, tasks, *, title: str, synthetic: bool = True):
    """Bars (mean ± sample std over seeds) per init, one panel per task, with each seed as a dot."""
    scores = main_scores(df)
    scores["Initialisation"] = scores["init"].map(lambda i: get_init(i).label)
    order = [get_init(i).label for i in inits]
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    ncols = min(3, len(tasks))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.6 * nrows), dpi=130, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    palette = sns.color_palette("colorblind", len(order))
    for ax, task in zip(axes.flat, tasks):
        d = scores[scores["task"] == task]
        sns.barplot(data=d, x="Initialisation", y="score", hue="Initialisation", order=order, hue_order=order,
                    errorbar="sd", palette=palette, ax=ax, legend=False, alpha=0.85)
        sns.stripplot(data=d, x="Initialisation", y="score", order=order, color="black", size=3.5, ax=ax)
        spec = get_task_spec(task)
        lo = d["score"].min()
        ax.set_ylim(max(0, lo - 0.15 * (d["score"].max() - lo + 1) - 2), None)
        ax.set_title(spec.display_name.replace(" (synthetic)", "\n(synthetic)"), fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel(spec.metric_label)
        ax.tick_params(axis="x", rotation=35, labelsize=8.5)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
    fig.suptitle(title + ("\n(SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    return fig


@dataclass
class Verdict:
    """A computed answer to a paper's claim: ``agrees``, ``does not agree`` or ``inconclusive``, with reasons."""

    outcome: str
    reasons: list[str]

    def __str__(self) -> str:
        return f"{self.outcome}: " + "; ".join(self.reasons)

    def _repr_markdown_(self) -> str:
        return f"**Verdict on the paper's claim: {self.outcome}.**\n\n" + "\n".join(f"- {r}" for r in self.reasons)


def verdict_best_or_equivalent(summary: pd.DataFrame, candidate: str, baseline: str, tasks) -> Verdict:
    """Does ``candidate`` match a claim that it is best (or equivalent to the best) and ahead of ``baseline``?

    agrees: on every task the candidate is best or not significantly different from the best, it is never
    significantly worse than the baseline, and it is significantly better than the baseline on at least one task.
    does not agree: it is significantly worse than the baseline on some task, or neither best nor equivalent on most
    tasks. inconclusive: anything in between (for example, no difference is significant).
    """
    s = summary.set_index(["init", "task"])
    cand, base = get_init(candidate).label, get_init(baseline).label
    top, worse, better, reasons = 0, 0, 0, []
    for t in tasks:
        r = s.loc[(candidate, t)]
        name = get_task_spec(t).display_name
        is_top = bool(r["is_best"] or r["equivalent_to_best"])
        top += is_top
        d, p = r["diff_vs_baseline"], r["p_vs_baseline"]
        sig = not math.isnan(p) and p < 0.05
        worse += sig and d < 0
        better += sig and d > 0
        standing = "best" if r["is_best"] else ("equivalent to the best" if r["equivalent_to_best"]
                                                else "below the best (p ≤ 0.05)")
        reasons.append(f"{name}: {cand} is {standing}; {d:+.2f} points vs {base} (p = {p:.3g})")
    n = len(tasks)
    if top == n and worse == 0 and better >= 1:
        outcome = "agrees"
    elif worse > 0 or top < n / 2:
        outcome = "does not agree"
    else:
        outcome = "inconclusive"
    reasons.append(f"{cand} is best or equivalent on {top} of {n} tasks, significantly better than {base} on "
                   f"{better} and significantly worse on {worse}")
    return Verdict(outcome, reasons)


def provenance(df: pd.DataFrame) -> Table:
    """Where and how the runs behind a table were made: counts, devices, versions and compute time."""
    runs = df.drop_duplicates("config_hash")
    text = pd.DataFrame({
        "runs": [len(runs)],
        "profile": [", ".join(sorted(runs["profile"].astype(str).unique()))],
        "device": [", ".join(sorted(runs["device"].astype(str).unique()))],
        "torch": [", ".join(sorted(runs["torch_version"].astype(str).unique()))],
        "medbench": [", ".join(sorted(runs["git_sha"].astype(str).unique()))],
        "compute (min)": [round(runs["wall_seconds"].sum() / 60, 1)],
        "synthetic data": [bool(runs["synthetic"].astype(str).str.lower().eq("true").all())],
    })
    return Table(text, _TABLE_CSS + text.to_html(index=False, classes="mb-table", border=0))


def glue_headlines(values: dict) -> None:
    """Record headline numbers with myst-nb ``glue`` (text and tests read them from here)."""
    from myst_nb import glue

    for k, v in values.items():
        glue(k, v, display=False)



def compare_with_reported(stats: pd.DataFrame, section: str, *, baseline: str, profile: str) -> Table:
    """Our runs next to the paper's numbers, through each task's ``analog_of`` and each init's ``paper_analog``.

    On real data (``colab``, ``paper`` profiles): our mean ± std, theirs, the difference, and whether ours falls
    inside the reported spread (their mean ± std). On synthetic data (``smoke``, ``demo``) the scales differ, so it
    compares the direction of each effect against ``baseline``: who wins, ours and theirs, with our mark and whether
    the paper's difference is significant (re-derived from mean ± std under every assumption, see ``reported``).
    """
    rep = reported.load_reported(section).dropna(subset=["mean"]).set_index(["task", "init"])
    s = stats.set_index(["init", "task"])
    rows = []
    synthetic = profile in ("smoke", "demo")
    for (init, task), r in s.iterrows():
        ptask, pinit = get_task_spec(task).analog_of, get_init(init).paper_analog
        pbase = get_init(baseline).paper_analog
        ours = f"{get_task_spec(task).display_name} / {get_init(init).label}"
        theirs = rep["mean"].get((ptask, pinit))
        if synthetic:
            if init == baseline:
                continue
            tb = rep["mean"].get((ptask, pbase))
            row = {"task (ours → paper)": f"{get_task_spec(task).display_name} → {ptask}",
                   "effect": f"{get_init(init).label} vs {get_init(baseline).label}",
                   "ours (points)": f"{r['diff_vs_baseline']:+.2f} {r.get('mark_vs_baseline', '')}".strip()}
            if theirs is None or tb is None:
                row.update({"paper (points)": "not reported", "paper significant": "–", "same direction": "–"})
            else:
                ps = list(reported.rederive_pair(section, ptask, pinit, pbase).values())
                sig = ("yes" if all(p <= 0.05 for p in ps) else "no" if all(p > 0.05 for p in ps) else "depends")
                same = np.sign(r["diff_vs_baseline"]) == np.sign(theirs - tb)
                row.update({"paper (points)": f"{theirs - tb:+.2f}", "paper significant": sig,
                            "same direction": "yes" if same else "no"})
            rows.append(row)
        else:
            row = {"ours": ours, "paper": f"{ptask} / {pinit}", "ours (mean ± std)": _fmt(r["mean"], r["std"])}
            if theirs is None:
                row.update({"paper (mean ± std)": "not reported", "difference": "–", "inside reported spread": "–"})
            else:
                tstd = rep["std"].get((ptask, pinit))
                diff = r["mean"] - theirs
                row.update({"paper (mean ± std)": _fmt(theirs, tstd), "difference": f"{diff:+.2f}",
                            "inside reported spread": "yes" if abs(diff) <= tstd else "no"})
            rows.append(row)
    text = pd.DataFrame(rows)
    if synthetic:
        known = text[text["same direction"] != "–"]
        firm = known[known["paper significant"] == "yes"]
        n_same, n_firm = int((known["same direction"] == "yes").sum()), int((firm["same direction"] == "yes").sum())
        cap = (f"Direction of each effect against {get_init(baseline).label}, ours (synthetic data; marks from our "
               f"t-tests) and the paper's (points of its metric). Same direction for {n_same} "
               f"of {len(known)} effects; for {n_firm} of {len(firm)} that the "
               "paper's numbers show as significant under every assumption (3, 5 or 10 runs; population or sample "
               "std). Sizes are not comparable: the data are synthetic.")
    else:
        known = text[text["inside reported spread"] != "–"]
        cap = (f"Ours next to the paper's, in percent; {int((known['inside reported spread'] == 'yes').sum())} of "
               f"{len(known)} of our means fall inside the reported mean ± std.")
    body = text.to_html(index=False, classes="mb-table", border=0, escape=True)
    body = re.sub(r"<table[^>]*>", lambda _: f'<table class="mb-table"><caption>{html.escape(cap)}</caption>',
                  body, count=1)
    return Table(text, _TABLE_CSS + body)
