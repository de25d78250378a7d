"""Tables, figures and verdicts for the book, computed from the results store (never typed by hand)."""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import seaborn as sns

from . import reported
from .reported import _CSS as _TABLE_CSS
from .reported import Table
from .models import get_arch
from .pretrain import get_init, is_self_supervised, reported_name
from .stats import compare_groups, significance_mark, ttest
from .tasks import CLASSIFICATION, get_task_spec

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
    d = df[(df["split"] == split) & df["metric"].isin(MAIN_METRICS)].copy()
    d["group"] = _groups(d)
    d["score"] = 100 * d["value"].astype(float)
    d["fraction"] = d["fraction"].astype(float)
    return d[["group", "task", "init", "arch", "seed", "fraction", "metric", "score", "config_hash"]].reset_index(
        drop=True)


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
    out["init"] = out["group"].str.split("/").str[-1]
    out["arch"] = out["group"].map(lambda k: k.split("/")[0] if "/" in k else "")
    return out


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}"


def paper_table(summary: pd.DataFrame, groups, tasks, *, baseline: str, caption: str, fraction: float = 1.0,
                row_title: str = "Initialisation") -> Table:
    """Groups x tasks, mean ± std in percent, in the papers' layout: best in bold, runs not significantly different
    from the best highlighted (p > 0.05), and marks (n.s., *, **, ***) against ``baseline``. Cells without runs
    (e.g. a plain ViT on segmentation) show "–"."""
    s = summary[summary["fraction"] == fraction].set_index(["group", "task"])
    labels = [group_label(g) for g in groups]
    names = [get_task_spec(t).display_name for t in tasks]
    text = pd.DataFrame(index=labels, columns=names, dtype=object)
    rows_html = []
    for g, label in zip(groups, labels):
        cells = []
        for t, name in zip(tasks, names):
            if (g, t) not in s.index:
                text.loc[label, name] = "–"
                cells.append("<td>–</td>")
                continue
            r = s.loc[(g, t)]
            val = _fmt(r["mean"], r["std"])
            mark = r.get("mark_vs_baseline", "") or ""
            plain = val + (f" {mark}" if mark else "") + (" (best)" if r["is_best"] else "")
            plain += " (≈ best)" if r["equivalent_to_best"] else ""
            text.loc[label, name] = plain
            val = val.replace(" ± ", "\u00a0±\u00a0")
            body = f"<b>{val}</b>" if r["is_best"] else val
            sup = f"<sup>{html.escape(mark)}</sup>" if mark else ""
            cls = ' class="mb-equiv"' if r["equivalent_to_best"] else ""
            cells.append(f"<td{cls}>{body}{sup}</td>")
        rows_html.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(get_task_spec(t).display_name)}<br><small>{get_task_spec(t).metric_label}"
                   f"</small></th>" for t in tasks)
    legend = (f"{html.escape(caption)} Bold: best mean. Highlighted: not significantly different from the best "
              f"(independent two-sample t-test, p &gt; 0.05). Marks against {html.escape(group_label(baseline))}: "
              "n.s. p ≥ 0.05, * p &lt; 0.05, ** p &lt; 0.01, *** p &lt; 0.0001. Mean ± sample std over seeds.")
    table = (f'{_TABLE_CSS}<table class="mb-table"><caption>{legend}</caption><thead><tr><th>{row_title}</th>'
             f"{head}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>")
    return Table(text, table)


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


def fraction_table(summary: pd.DataFrame, groups, task: str, *, caption: str, diffs: pd.DataFrame | None = None,
                   n_images: dict | None = None) -> Table:
    """Groups x training fractions for one task (mean ± std in percent), best per fraction in bold; optional rows
    of pair differences (``pair_differences``) with their marks."""
    s = summary[summary["task"] == task].set_index(["group", "fraction"])
    fracs = sorted(summary.loc[summary["task"] == task, "fraction"].unique())
    cols = [f"{f:.0%}" + (f" ({n_images[f]})" if n_images and f in n_images else "") for f in fracs]
    text = pd.DataFrame(index=[group_label(g) for g in groups], columns=cols, dtype=object)
    rows_html = []
    for g in groups:
        cells = []
        for f, c in zip(fracs, cols):
            if (g, f) not in s.index:
                text.loc[group_label(g), c] = "–"
                cells.append("<td>–</td>")
                continue
            r = s.loc[(g, f)]
            val = _fmt(r["mean"], r["std"])
            text.loc[group_label(g), c] = val + (" (best)" if r["is_best"] else "")
            val = val.replace(" ± ", "\u00a0±\u00a0")
            cls = ' class="mb-equiv"' if r["equivalent_to_best"] else ""
            cells.append(f"<td{cls}>{'<b>' + val + '</b>' if r['is_best'] else val}</td>")
        rows_html.append(f"<tr><th>{html.escape(group_label(g))}</th>{''.join(cells)}</tr>")
    if diffs is not None and len(diffs):
        for name, d in diffs.groupby("pair", sort=False):
            d = d.set_index("fraction")
            vals = [f"{d.loc[f, 'difference']:+.2f} {d.loc[f, 'mark']}" if f in d.index else "–" for f in fracs]
            text.loc[name] = vals
            rows_html.append(f"<tr class=\"mb-diff\"><th>{html.escape(name)}</th>"
                             + "".join(f"<td>{html.escape(v)}</td>" for v in vals) + "</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    legend = (f"{html.escape(caption)} Columns: share of the training split (labelled images). Bold: best mean per "
              "column; highlighted: not significantly different from it (p &gt; 0.05). Difference rows: points, "
              "with the t-test mark (n.s., *, **, ***).")
    table = (f'{_TABLE_CSS}<table class="mb-table"><caption>{legend}</caption><thead><tr><th>Model</th>{head}'
             f"</tr></thead><tbody>{''.join(rows_html)}</tbody></table>")
    return Table(text, table)


def plot_section(df: pd.DataFrame, groups, tasks, *, title: str, synthetic: bool = True):
    """Bars (mean ± sample std over seeds) per group, one panel per task, with each seed as a dot."""
    scores = main_scores(df)
    scores = scores[scores["fraction"] == 1.0]
    scores["Model"] = scores["group"].map(group_label)
    order = [group_label(g) for g in groups]
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    ncols = min(3 if len(order) <= 4 else 2, len(tasks))
    nrows = -(-len(tasks) // ncols)
    width = 3.3 if len(order) <= 4 else 0.45 * len(order) + 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.8 * nrows), dpi=130, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    palette = sns.color_palette("colorblind", len(order))
    for ax, task in zip(axes.flat, tasks):
        d = scores[scores["task"] == task]
        sns.barplot(data=d, x="Model", y="score", hue="Model", order=order, hue_order=order,
                    errorbar="sd", palette=palette, ax=ax, legend=False, alpha=0.85)
        sns.stripplot(data=d, x="Model", y="score", order=order, color="black", size=3.5, ax=ax)
        spec = get_task_spec(task)
        lo = d["score"].min() if len(d) else 0
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


def plot_learning_curves(df: pd.DataFrame, groups, task: str, *, title: str, synthetic: bool = True):
    """Test score against the number of labelled training images (log scale), mean ± sample std over seeds, one
    line per group: ConvNets solid, vision transformers dashed."""
    scores = main_scores(df)
    scores = scores[scores["task"] == task]
    n_img = (df[(df["task"] == task) & (df["metric"] == "n_images")].drop_duplicates("config_hash")
             .set_index("config_hash")["value"])
    scores["images"] = scores["config_hash"].map(n_img).astype(float)
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=130)
    palette = sns.color_palette("colorblind", len(groups))
    for g, color in zip(groups, palette):
        d = scores[scores["group"] == g].groupby("images")["score"].agg(["mean", "std"]).reset_index()
        arch = g.split("/")[0] if "/" in g else ""
        style = "--" if arch and get_arch(arch).family == "transformer" else "-"
        ax.plot(d["images"], d["mean"], style, marker="o", color=color, label=group_label(g))
        ax.fill_between(d["images"], d["mean"] - d["std"].fillna(0), d["mean"] + d["std"].fillna(0), color=color,
                        alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel(get_task_spec(task).metric_label)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title + ("\n" + get_task_spec(task).display_name + (" — SYNTHETIC data" if synthetic else "")),
                 fontsize=10)
    fig.tight_layout()
    return fig


def _outcome(*, agrees: bool, disagrees: bool) -> str:
    """The verdict word: ``agrees`` when the agreement rule holds, else ``does not agree`` when the disagreement
    rule holds, else ``inconclusive``."""
    return "agrees" if agrees else ("does not agree" if disagrees else "inconclusive")


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
    s = summary[summary["fraction"] == 1.0].set_index(["group", "task"])
    cand, base = group_label(candidate), group_label(baseline)
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
    outcome = _outcome(agrees=top == n and worse == 0 and better >= 1, disagrees=worse > 0 or top < n / 2)
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



def is_synthetic(tasks) -> bool:
    """True when any of ``tasks`` trains on generated data: tables, figures and prose then say SYNTHETIC.

    Example:
        >>> is_synthetic(["syn_txc"]), is_synthetic(["shenzhen"])
        (True, False)
    """
    return any(get_task_spec(t).synthetic for t in tasks)


def compare_with_reported(stats: pd.DataFrame, section: str, *, baseline: str) -> Table:
    """Our runs next to the paper's numbers, through each task's ``analog_of`` and each init's ``paper_analog``.

    On real data (the tasks read the papers' datasets): our mean ± std, theirs, the difference, and whether ours falls
    inside the reported spread (their mean ± std). On synthetic data (generated tasks) the scales differ, so it
    compares the direction of each effect against ``baseline``: who wins, ours and theirs, with our mark and whether
    the paper's difference is significant (re-derived from mean ± std under every assumption, see ``reported``).
    """
    rep = reported.load_reported(section).dropna(subset=["mean"]).set_index(["task", "init"])
    s = stats[stats["fraction"] == 1.0].set_index(["init", "task"])
    rows = []
    synthetic = is_synthetic(stats["task"].unique())
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


# ----------------------------------------------------------------------------------------------------------------
# Verdicts of the other sections, and the direction of each effect next to the paper's


def _sig(p: float) -> bool:
    return not math.isnan(p) and p < 0.05


def verdict_granularity(summary: pd.DataFrame, *, coarse: str, fine: str, tasks) -> Verdict:
    """Fine-grained ahead on segmentation, coarse-grained ahead on classification?

    agrees: no task differs significantly against the claim, the claimed direction holds on at least half of the
    segmentation and half of the classification tasks, and at least one difference in the claimed direction is
    significant. does not agree: some task differs significantly against the claim, or the claimed direction holds
    on fewer than half of all tasks. inconclusive: anything in between.
    """
    s = summary[summary["fraction"] == 1.0].set_index(["group", "task"])
    reasons, along, against, sig_along = [], {True: 0, False: 0}, 0, 0
    count = {True: 0, False: 0}
    for t in tasks:
        seg = get_task_spec(t).kind != CLASSIFICATION
        r = s.loc[(fine, t)]
        d, p = r["diff_vs_baseline"], r["p_vs_baseline"]
        claimed = 1 if seg else -1
        ok = np.sign(d) == claimed
        count[seg] += 1
        along[seg] += bool(ok)
        against += bool(_sig(p) and not ok)
        sig_along += bool(_sig(p) and ok)
        reasons.append(f"{get_task_spec(t).display_name} ({'segmentation' if seg else 'classification'}): "
                       f"{group_label(fine)} {d:+.2f} points vs {group_label(coarse)} (p = {p:.3g}); the claim "
                       f"expects {'fine' if seg else 'coarse'}-grained ahead")
    n = len(tasks)
    outcome = _outcome(agrees=against == 0 and all(along[k] * 2 >= count[k] for k in (True, False)) and sig_along >= 1,
                       disagrees=against > 0 or (along[True] + along[False]) * 2 < n)
    reasons.append(f"the claimed direction holds on {along[True] + along[False]} of {n} tasks, significantly on "
                   f"{sig_along}; significantly against it on {against}")
    return Verdict(outcome, reasons)


def verdict_self_supervised(summary: pd.DataFrame, *, supervised: str, ssl_inits, tasks) -> Verdict:
    """Top self-supervised models significantly better than supervised on segmentation, mostly no different on
    classification?

    agrees: on every segmentation task at least one self-supervised model is significantly better than supervised,
    and on the classification tasks at most half of them differ significantly. does not agree: on some segmentation
    task no self-supervised model is ahead of supervised at all, or supervised is significantly better than all of
    them. inconclusive: anything in between.
    """
    s = summary[summary["fraction"] == 1.0].set_index(["group", "task"])
    reasons, seg_ok, seg_fail, cls_diff, cls_total = [], True, False, 0, 0
    for t in tasks:
        seg = get_task_spec(t).kind != CLASSIFICATION
        rows = [(i, s.loc[(i, t)]) for i in ssl_inits if (i, t) in s.index]
        better = [group_label(i) for i, r in rows if _sig(r["p_vs_baseline"]) and r["diff_vs_baseline"] > 0]
        worse = [group_label(i) for i, r in rows if _sig(r["p_vs_baseline"]) and r["diff_vs_baseline"] < 0]
        ahead = [i for i, r in rows if r["diff_vs_baseline"] > 0]
        top_i, top_r = max(rows, key=lambda x: x[1]["mean"])
        reasons.append(f"{get_task_spec(t).display_name}: {len(better)} of {len(rows)} self-supervised models "
                       f"significantly better than {group_label(supervised)} ({', '.join(better) or 'none'}), "
                       f"{len(worse)} significantly worse; best {group_label(top_i)} "
                       f"{top_r['diff_vs_baseline']:+.2f} points (p = {top_r['p_vs_baseline']:.3g})")
        if seg:
            seg_ok &= len(better) >= 1
            seg_fail |= not ahead or len(worse) == len(rows)
        else:
            cls_diff += len(better) + len(worse)
            cls_total += len(rows)
    outcome = _outcome(agrees=seg_ok and cls_diff * 2 <= cls_total, disagrees=seg_fail)
    return Verdict(outcome, reasons)


def verdict_pairs(df: pd.DataFrame, *, better: str, worse: str, tasks, claim: str) -> Verdict:
    """Is group ``better`` ahead of group ``worse`` on every task (the ConvNet vs transformer claim)?

    agrees: ahead on every task, significantly on at least one, never significantly behind. does not agree:
    significantly behind on some task, or behind on most. inconclusive: anything in between.
    """
    reasons, ahead, sig_ahead, sig_behind = [], 0, 0, 0
    for t in tasks:
        d = pair_differences(df[df["fraction"].astype(float) == 1.0], [(claim, worse, better)], t)
        if not len(d):
            continue
        r = d.iloc[0]
        ahead += r["difference"] > 0
        sig_ahead += bool(_sig(r["p"]) and r["difference"] > 0)
        sig_behind += bool(_sig(r["p"]) and r["difference"] < 0)
        reasons.append(f"{get_task_spec(t).display_name}: {group_label(better)} {r['difference']:+.2f} points vs "
                       f"{group_label(worse)} (p = {r['p']:.3g})")
    n = len(reasons)
    outcome = _outcome(agrees=ahead == n and sig_ahead >= 1 and sig_behind == 0,
                       disagrees=sig_behind > 0 or ahead * 2 < n)
    reasons.append(f"{group_label(better)} ahead on {ahead} of {n} tasks, significantly on {sig_ahead}; "
                   f"significantly behind on {sig_behind}")
    return Verdict(outcome, reasons)


def verdict_data_size(diffs: pd.DataFrame, *, pretrained: str, scratch: str, small: float = 0.1) -> Verdict:
    """From ``pair_differences`` (transformer minus ConvNet per fraction): does the pre-trained transformer trail
    when labelled data are few (fractions ≤ ``small``) and does the gap close with more data?

    agrees: significantly behind at some small fraction, never significantly ahead there, and the gap at the full
    training set is smaller than the mean gap at the small fractions. does not agree: not behind on average at the
    small fractions, or significantly ahead at one of them. inconclusive: anything in between.
    """
    d = diffs[diffs["pair"] == pretrained].set_index("fraction")
    few = d[d.index <= small]
    full = d.loc[d.index.max()]
    behind = bool(((few["difference"] < 0) & (few["p"] < 0.05)).any())
    ahead = bool(((few["difference"] > 0) & (few["p"] < 0.05)).any())
    closes = full["difference"] > few["difference"].mean()
    reasons = [f"{pretrained}: {r['difference']:+.2f} points at {f:.0%} ({int(r['labelled images'])} images, "
               f"{r['mark']})" for f, r in d.iterrows()]
    reasons.append(f"mean gap with ≤ {small:.0%} of the labels: {few['difference'].mean():+.2f} points; with all of "
                   f"them: {full['difference']:+.2f} points ({'closes' if closes else 'does not close'})")
    s = diffs[diffs["pair"] == scratch]
    if len(s):
        reasons.append(f"{scratch}: {s['difference'].mean():+.2f} points on average over the fractions")
    outcome = _outcome(agrees=behind and not ahead and closes, disagrees=few["difference"].mean() >= 0 or ahead)
    return Verdict(outcome, reasons)


def data_size_pairs(grid) -> list[tuple[str, str, str]]:
    """(name, ConvNet group, transformer group) per init of a data-size grid: differences are transformer minus
    ConvNet, as in the MedIA 2025 table."""
    conv = [a for a in grid.archs if get_arch(a).family == "convnet"][0]
    vit = [a for a in grid.archs if get_arch(a).family == "transformer"][0]
    return [(f"{get_arch(vit).label} − {get_arch(conv).label} ({get_init(i).label})", f"{conv}/{i}", f"{vit}/{i}")
            for i in grid.inits]


def key_figure(grid, df: pd.DataFrame):
    """The figure a section's page shows for its claim (learning curves for data size, scores otherwise)."""
    synthetic = is_synthetic(grid.tasks)
    sec = grid.section
    if sec.key == "data-size":
        return plot_learning_curves(df, grid.groups, grid.tasks[0], title=sec.title, synthetic=synthetic)
    return plot_section(df, grid.groups, grid.tasks, title=sec.title, synthetic=synthetic)


PLAIN_WORDS = {"agrees": "the same answer comes out here", "does not agree": "a different answer comes out here",
               "inconclusive": "the runs here cannot decide either way"}


def section_verdict(grid, df: pd.DataFrame) -> Verdict:
    """The computed verdict of ``grid``'s section on its runs ``df`` (from ``load_grid_results``)."""
    sec = grid.section
    summary = summarize(df, baseline=sec.baseline)
    if sec.key == "granularity":
        return verdict_granularity(summary, coarse=sec.baseline, fine=sec.candidate, tasks=grid.tasks)
    if sec.key == "self-supervised":
        return verdict_self_supervised(summary, supervised=sec.baseline,
                                       ssl_inits=[i for i in grid.inits if is_self_supervised(i)], tasks=grid.tasks)
    if sec.key == "architectures":
        return verdict_pairs(df, better=sec.candidate, worse=sec.rival, tasks=grid.tasks,
                             claim=f"{group_label(sec.candidate)} vs {group_label(sec.rival)}")
    if sec.key == "data-size":
        pairs = data_size_pairs(grid)
        diffs = pair_differences(df, pairs, grid.tasks[0])
        init_of = {name: b.split("/")[1] for name, _, b in pairs}
        pre = [n for n, i in init_of.items() if i != "scratch"][0]
        scratch = [n for n, i in init_of.items() if i == "scratch"]
        return verdict_data_size(diffs, pretrained=pre, scratch=scratch[0] if scratch else "")
    return verdict_best_or_equivalent(summary, candidate=sec.candidate, baseline=sec.baseline, tasks=grid.tasks)


def compare_directions(grid, df: pd.DataFrame) -> Table:
    """Each effect the section's claim is about, ours (points, our t-test mark) next to the paper's (its number or
    mark), and whether they point the same way. On synthetic data only directions are comparable, never sizes."""
    sec = grid.section
    rep = reported.load_reported(sec.key)
    summary = summarize(df, baseline=sec.baseline)
    s = summary[summary["fraction"] == 1.0].set_index(["group", "task"])
    rows = []
    if sec.key == "granularity":
        for t in grid.tasks:
            r = s.loc[(sec.candidate, t)]
            pt = get_task_spec(t).analog_of
            pr = rep[rep["task"] == pt]
            row = {"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                   "ours: fine − coarse (points)": f"{r['diff_vs_baseline']:+.2f} {r['mark_vs_baseline']}"}
            if len(pr):
                higher, p = pr.iloc[0]["higher"], float(pr.iloc[0]["p_value"])
                sign = 1 if str(higher).startswith("iNat") else -1
                row.update({"paper: higher": f"{higher} (p = {p:.2g})",
                            "same direction": "yes" if np.sign(r["diff_vs_baseline"]) == sign else "no"})
            else:
                row.update({"paper: higher": "not reported", "same direction": "–"})
            rows.append(row)
    elif sec.key == "self-supervised":
        for t in grid.tasks:
            pt = get_task_spec(t).analog_of
            for i in grid.inits:
                if not is_self_supervised(i):
                    continue
                r = s.loc[(i, t)]
                ours_sig = _sig(r["p_vs_baseline"]) and r["diff_vs_baseline"] > 0
                name = reported_name(i)
                pr = rep[(rep["task"] == pt) & (rep["init"] == name)] if name else rep.iloc[0:0]
                mark = str(pr.iloc[0]["mark"]) if len(pr) else ""
                paper_sig = mark.startswith("*")
                rows.append({"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                             "method (ours → paper)": f"{group_label(i)} → {name or 'not in the paper'}",
                             "ours vs supervised (points)": f"{r['diff_vs_baseline']:+.2f} {r['mark_vs_baseline']}",
                             "paper vs supervised": mark or "–",
                             "both significantly better / both not":
                                 ("yes" if ours_sig == paper_sig else "no") if mark else "–"})
    elif sec.key == "architectures":
        paper_task = dict(sec.paper_tasks)
        for t in grid.tasks:
            d = pair_differences(df[df["fraction"].astype(float) == 1.0], [("x", sec.rival, sec.candidate)], t)
            pt = paper_task.get(t, get_task_spec(t).analog_of)
            pr = rep[(rep["task"] == pt) & (rep["arch"] == "ConvNeXt-T vs Swin-T")]
            row = {"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                   "ours: ConvNeXt − Swin (points)": f"{d.iloc[0]['difference']:+.2f} {d.iloc[0]['mark']}"}
            if len(pr):
                v = float(pr.iloc[0]["mean"])
                row.update({"paper: ConvNeXt-T − Swin-T": f"{v:+.2f}",
                            "same direction": "yes" if np.sign(d.iloc[0]["difference"]) == np.sign(v) else "no"})
            else:
                row.update({"paper: ConvNeXt-T − Swin-T": "not reported", "same direction": "–"})
            rows.append(row)
    elif sec.key == "data-size":
        pairs = data_size_pairs(grid)
        diffs = pair_differences(df, pairs, grid.tasks[0])
        paper_rows = {0.1: "ChestX-ray14 (10%)", 0.25: "ChestX-ray14 (25%)", 1.0: "ChestX-ray14"}
        for name, _, b in pairs:
            init = b.split("/")[1]
            pinit = get_init(init).paper_analog
            for _, r in diffs[diffs["pair"] == name].iterrows():
                row = {"model pair": name, "training data": f"{r['fraction']:.0%} ({r['labelled images']} images)",
                       "ours (points)": f"{r['difference']:+.2f} {r['mark']}"}
                pr = rep[(rep["dataset"] == paper_rows.get(r["fraction"])) & (rep["init"] == pinit)]
                if len(pr):
                    v = float(pr.iloc[0]["mean"])
                    mark = pr.iloc[0]["mark"] if isinstance(pr.iloc[0]["mark"], str) else ""
                    row.update({"paper (AUC points)": f"{v:+.2f} {mark}".strip() + f" ({pr.iloc[0]['dataset']})",
                                "same direction": "yes" if np.sign(r["difference"]) == np.sign(v) else "no"})
                else:
                    row.update({"paper (AUC points)": "–", "same direction": "–"})
                rows.append(row)
    else:
        return compare_with_reported(summary, sec.key, baseline=sec.baseline)
    text = pd.DataFrame(rows)
    key = [c for c in text.columns if c.startswith("same direction") or c.startswith("both")]
    known = text[text[key[0]] != "–"] if key else text
    cap = (f"The effects the claim is about, ours (synthetic data; marks from our t-tests) and the paper's. "
           f"{int((known[key[0]] == 'yes').sum())} of {len(known)} agree. Sizes are not comparable on synthetic "
           "data; directions are." if is_synthetic(grid.tasks) else
           f"The effects the claim is about, ours and the paper's; {int((known[key[0]] == 'yes').sum())} of "
           f"{len(known)} agree.")
    body = text.to_html(index=False, classes="mb-table", border=0, escape=True)
    body = re.sub(r"<table[^>]*>", lambda _: f'<table class="mb-table"><caption>{html.escape(cap)}</caption>',
                  body, count=1)
    return Table(text, _TABLE_CSS + body)


def pretraining_table(grid, cache_dir=None) -> Table:
    """The pre-training stages behind the grid's initialisations (one row per arch and init): recipe, images,
    epochs, time and the stage's own check (validation accuracy for supervised stages, k-nearest-neighbour accuracy
    on the coarse labels for self-supervised ones; chance is 25 % for 4 coarse classes, 6.25 % for 16 fine)."""
    from .pretrain import checkpoint_meta, get_init_checkpoint, stage_configs

    rows = []
    for arch in grid.archs:
        for init in grid.inits:
            if get_init(init).weights:  # real pre-trained weights: where they come from and their audit
                from .pretrain import zoo_key
                from .zoo import get_record

                rec = get_record(zoo_key(init, arch))
                path = get_init_checkpoint(init, arch, grid.profile, cache_dir=cache_dir, progress=False)
                ck = torch.load(path, map_location="cpu", weights_only=True)
                rows.append({"model": group_label(f"{arch}/{init}") if len(grid.archs) > 1 else get_init(init).label,
                             "recipe": f"real weights {rec.key} ({rec.citation})", "images": "–", "epochs": "–",
                             "minutes": "–", "check (last stage)": f"audited: {ck['backbone_tensors']} backbone "
                             f"tensors, sha256 {ck['source_sha256'][:12]}"})
                continue
            chain = stage_configs(init, arch, grid.profile)
            if not chain:
                continue
            path = get_init_checkpoint(init, arch, grid.profile, cache_dir=cache_dir, progress=False)
            meta = checkpoint_meta(path)
            score = next((f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in meta.items()
                          if k in ("val_accuracy", "val_knn_accuracy", "val_mean_auc")), "–")
            rows.append({"model": group_label(f"{arch}/{init}") if len(grid.archs) > 1 else get_init(init).label,
                         "recipe": " → ".join(c.source for c in chain),
                         "images": chain[-1].n_images, "epochs": chain[-1].epochs,
                         "minutes": round(meta["seconds"] / 60, 1), "check (last stage)": score})
    text = pd.DataFrame(rows)
    return Table(text, _TABLE_CSS + text.to_html(index=False, classes="mb-table", border=0))
