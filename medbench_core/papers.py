"""What the papers report, as data: the registry (``data/reported.csv``), statistics re-derived from it, the claims
checked against it, and tables and figures in the papers' notation.

Every number in ``references/REPORTED.md`` (sections 1-4) is one row of the registry. Only the domain-adaptation
table prints mean ± std; there the papers' t-tests are recomputed from summary statistics. The number of runs
behind each cell is not printed, and the original code computed the population std (ddof=0), so every re-derived
p-value is given under stated assumptions (runs per cell 3, 5 or 10; the printed std being the population or the
sample std), and a conclusion that changes with them is flagged as such.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from importlib import resources

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .stats import ALPHA, significance_mark, ttest_from_stats

QUESTIONS = {
    "granularity": "Fine-grained (iNat2021) vs coarse-grained (ImageNet) pre-training",
    "self-supervised": "14 self-supervised ImageNet models vs supervised ImageNet",
    "domain-adaptation": "Domain-adaptive (continual) pre-training",
    "architectures": "ConvNets vs vision transformers",
    "data-size": "ConvNets vs vision transformers as labelled data grows",
}
ASSUMED_RUNS = (3, 5, 10)
STD_KINDS = ("population", "sample")
SUPPORTED, NOT_SUPPORTED, UNDETERMINABLE = "supported", "not supported", "undeterminable"

_CSS = """<style>
.mb-table {border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0;}
.mb-table th, .mb-table td {border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; text-align: center;}
.mb-table td.mb-equiv {background: #d6e9ff;}
.mb-table td.mb-depends {background: repeating-linear-gradient(45deg, #fff, #fff 4px, #e8f1ff 4px, #e8f1ff 8px);}
.mb-table caption {caption-side: bottom; font-size: 0.85em; text-align: left; color: #444;}
</style>"""


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
        if section not in QUESTIONS:
            raise KeyError(f"unknown section {section!r}; valid sections: {', '.join(QUESTIONS)}")
        df = df[df["section"] == section]
    return df.reset_index(drop=True)


@dataclass
class Table:
    """A table for the book: ``text`` (DataFrame of strings) and ``html`` (what the page shows)."""

    text: pd.DataFrame
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text.to_string()


def _html_table(cells: pd.DataFrame, classes: pd.DataFrame | None, caption: str, bold: pd.DataFrame | None = None,
                corner: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cells.columns)
    rows = []
    for idx in cells.index:
        tds = []
        for col in cells.columns:
            v = html.escape(str(cells.loc[idx, col])).replace(" ± ", "\u00a0±\u00a0")
            if bold is not None and bool(bold.loc[idx, col]):
                v = f"<b>{v}</b>"
            cls = classes.loc[idx, col] if classes is not None else ""
            tds.append(f'<td class="{cls}">{v}</td>' if cls else f"<td>{v}</td>")
        rows.append(f"<tr><th>{html.escape(str(idx))}</th>{''.join(tds)}</tr>")
    return (f'{_CSS}<table class="mb-table"><caption>{caption}</caption><thead><tr><th>{html.escape(corner)}</th>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


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
                row["status"] = ("equivalent" if all(p > ALPHA for p in ps)
                                 else "below" if all(p <= ALPHA for p in ps) else "depends")
            out.append(row)
    return pd.DataFrame(out)


def rederive_pair(section: str, task: str, a: str, b: str, n_runs=ASSUMED_RUNS, std_kinds=STD_KINDS) -> dict:
    """p-values of the t-test between inits ``a`` and ``b`` on ``task`` under each assumption."""
    rep = load_reported(section).dropna(subset=["mean", "std"]).set_index(["task", "init"])
    ra, rb = rep.loc[(task, a)], rep.loc[(task, b)]
    return {(n, kind): ttest_from_stats(ra["mean"], as_sample_std(ra["std"], n, kind), n,
                                        rb["mean"], as_sample_std(rb["std"], n, kind), n)
            for n in n_runs for kind in std_kinds}


def _flag(ps, *, want_significant: bool) -> str:
    sig = [p <= ALPHA for p in ps]
    if all(sig):
        return SUPPORTED if want_significant else NOT_SUPPORTED
    if not any(sig):
        return NOT_SUPPORTED if want_significant else SUPPORTED
    return UNDETERMINABLE


def _p_range(ps) -> str:
    return f"p = {min(ps):.2g} to {max(ps):.2g}" if len(ps) > 1 else f"p = {ps[0]:.2g}"


# ---------------------------------------------------------------------------------------------------------------
# Claims


def claims(section: str | None = None) -> pd.DataFrame:
    """The papers' claims, each flagged ``supported``, ``not supported`` or ``undeterminable`` by the papers' own
    numbers, with the evidence. Significance level 0.05 throughout."""
    rows = []
    sections = [section] if section else list(QUESTIONS)
    for s in sections:
        rows += _CLAIM_BUILDERS[s]()
    return pd.DataFrame(rows, columns=["section", "claim", "flag", "evidence"])


def _claims_domain_adaptation():
    rows = []
    rep = load_reported("domain-adaptation")
    adapted = [i for i in rep["init"].unique() if "→" in i]
    n_assumptions = len(ASSUMED_RUNS) * len(STD_KINDS)
    for task, g in rep.dropna(subset=["mean"]).groupby("task", sort=False):
        best_da = g[g["init"].isin(adapted)].sort_values("mean").iloc[-1]["init"]
        best = g.loc[g["mean"].idxmax(), "init"]
        if best in adapted:
            flag, ev = SUPPORTED, f"{best} has the highest mean"
        else:
            ps = list(rederive_pair("domain-adaptation", task, best_da, best).values())
            flag = _flag(ps, want_significant=False)
            ev = f"{best} is best; {best_da} vs {best}: {_p_range(ps)} over {n_assumptions} assumptions"
        rows.append({"section": "domain-adaptation", "flag": flag, "evidence": ev,
                     "claim": f"{task}: a domain-adapted model is the best or equivalent to the best"})
        ps = list(rederive_pair("domain-adaptation", task, best_da, "ImageNet").values())
        diff = g.set_index("init").loc[best_da, "mean"] - g.set_index("init").loc["ImageNet", "mean"]
        flag = _flag(ps, want_significant=True) if diff > 0 else NOT_SUPPORTED
        rows.append({"section": "domain-adaptation", "flag": flag,
                     "claim": f"{task}: domain-adapted pre-training beats ImageNet pre-training",
                     "evidence": f"{best_da} {diff:+.2f} points vs ImageNet; {_p_range(ps)} over "
                                 f"{n_assumptions} assumptions (n = 3, 5, 10 runs; population or sample std)"})
    return rows


def _claims_granularity():
    rows = []
    for _, r in load_reported("granularity").iterrows():
        kind = "segmentation" if r["metric"] == "dice" else "classification"
        rows.append({"section": "granularity",
                     "claim": f"{r['task']} ({kind}): {r['higher']} pre-training is better",
                     "flag": SUPPORTED if r["p_value"] < ALPHA else NOT_SUPPORTED,
                     "evidence": f"{r['higher']} higher as printed; printed p = {r['p_value']:.2g} "
                                 f"({'significant' if r['p_value'] < ALPHA else 'not significant'} at 0.05); "
                                 "means not printed, so not re-derivable"})
    return rows


def _claims_self_supervised():
    rows = []
    rep = load_reported("self-supervised")
    for task, g in rep[rep["init"] != "ImageNet"].groupby("task", sort=False):
        sig = g[g["mark"].isin(["*", "**", "***"])]
        names = ", ".join(f"{m} ({k})" for m, k in zip(sig["init"], sig["mark"]))
        rows.append({"section": "self-supervised",
                     "claim": f"{task}: top self-supervised models beat supervised ImageNet pre-training",
                     "flag": SUPPORTED if len(sig) else NOT_SUPPORTED,
                     "evidence": (f"{len(sig)} of {len(g)} methods marked significantly better: {names}"
                                  if len(sig) else f"none of {len(g)} methods significantly different")
                                 + "; printed marks only (no std), not re-derivable"})
    return rows


def _claims_architectures():
    rows = []
    for _, r in load_reported("architectures").iterrows():
        rows.append({"section": "architectures", "flag": UNDETERMINABLE,
                     "claim": f"{r['task']} ({int(r['labelled_images'])} images): {r['comparison'].split(' minus ')[0]}"
                              f" transfers better than {r['comparison'].split(' minus ')[1]}",
                     "evidence": f"gain {r['mean']:+g} points as printed; no std, runs or test printed"})
    return rows


def _claims_data_size():
    rows = []
    rep = load_reported("data-size")
    for _, r in rep[rep["init"] == "ImageNet"].iterrows():
        n = int(r["labelled_images"])
        sig = r["mark"] in ("*", "**", "***")
        flag = SUPPORTED if sig and r["mean"] < 0 else NOT_SUPPORTED
        rows.append({"section": "data-size", "flag": flag,
                     "claim": f"{n // 1000}K labelled images ({r['dataset']}), ImageNet init: ConvNeXt beats Swin",
                     "evidence": f"Swin minus ConvNeXt {r['mean']:+g} AUC points, printed mark {r['mark']}; "
                                 "not re-derivable (no std)"})
    scratch = rep[rep["init"] == "Scratch"].sort_values("labelled_images")
    shrinking = bool(np.all(np.diff(scratch["mean"].to_numpy()) > 0))
    rows.append({"section": "data-size", "flag": SUPPORTED if shrinking else NOT_SUPPORTED,
                 "claim": "From scratch, the gap between Swin and ConvNeXt narrows as labelled data grows",
                 "evidence": "Swin minus ConvNeXt " + ", ".join(f"{v:+g}" for v in scratch["mean"])
                             + " points at " + ", ".join(f"{int(n) // 1000}K" for n in scratch["labelled_images"])})
    return rows


_CLAIM_BUILDERS = {"domain-adaptation": _claims_domain_adaptation, "granularity": _claims_granularity,
                   "self-supervised": _claims_self_supervised, "architectures": _claims_architectures,
                   "data-size": _claims_data_size}


def claims_table(section: str) -> Table:
    """The claims of ``section`` with their flags, as a table for the book."""
    df = claims(section)
    text = df[["claim", "flag", "evidence"]].set_index("claim")
    colour = {SUPPORTED: "#d9f2d9", NOT_SUPPORTED: "#f8d7d7", UNDETERMINABLE: "#eeeeee"}
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(r.claim)}</td>"
        f"<td style='background:{colour[r.flag]}'><b>{r.flag}</b></td>"
        f"<td style='text-align:left'>{html.escape(r.evidence)}</td></tr>" for r in df.itertuples())
    cap = ("Each claim is checked against the papers' own printed numbers at a significance level of 0.05. "
           "undeterminable: the printed numbers cannot decide it (no std or test printed, or the answer depends "
           "on the number of runs and the kind of std, which the papers do not state).")
    return Table(text, f'{_CSS}<table class="mb-table"><caption>{cap}</caption><thead><tr><th>claim</th>'
                       f"<th>flag</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table>")


# ---------------------------------------------------------------------------------------------------------------
# Tables in the papers' notation


def paper_table(section: str) -> Table:
    """The reported numbers of ``section`` laid out as the paper prints them."""
    return {"domain-adaptation": _table_domain_adaptation, "granularity": _table_granularity,
            "self-supervised": _table_self_supervised, "architectures": _table_architectures,
            "data-size": _table_data_size}[section]()


def _table_domain_adaptation() -> Table:
    rep = load_reported("domain-adaptation")
    status = rederive_vs_best().set_index(["task", "init"])["status"]
    inits, tasks = list(dict.fromkeys(rep["init"])), list(dict.fromkeys(rep["task"]))
    cells = pd.DataFrame("", index=inits, columns=tasks)
    classes, bold = cells.copy(), pd.DataFrame(False, index=inits, columns=tasks)
    for _, r in rep.iterrows():
        if r["mark"] == "n/a":
            cells.loc[r["init"], r["task"]] = "n/a"
            continue
        cells.loc[r["init"], r["task"]] = f"{r['mean']:.2f} ± {r['std']:.2f}"
        bold.loc[r["init"], r["task"]] = r["mark"] == "best"
        st = status.get((r["task"], r["init"]), "")
        classes.loc[r["init"], r["task"]] = {"equivalent": "mb-equiv", "depends": "mb-depends"}.get(st, "")
    text = cells.copy()
    for (t, i), st in status.items():
        if st in ("equivalent", "depends", "best"):
            text.loc[i, t] += {"equivalent": " (≈ best)", "depends": " (≈ best under some assumptions)",
                               "best": " (best)"}[st]
    cap = ("As reported in DART 2021 (Result III table), ResNet-50, mean ± std over runs, in percent. Bold: best, "
           "as printed. Highlighted: not significantly different from the best (p &gt; 0.05), <i>re-derived here</i> "
           "from mean ± std for every assumption of 3, 5 or 10 runs and a population or sample std; hatched: "
           "equivalent under some of these assumptions only. n/a: pre-training and target are the same data.")
    return Table(text, _html_table(cells, classes, cap, bold, corner="Initialisation"))


def _table_granularity() -> Table:
    rep = load_reported("granularity")
    cells = pd.DataFrame({"kind": np.where(rep["metric"] == "dice", "segmentation", "classification"),
                          "higher": rep["higher"].to_numpy(),
                          "printed p (ImageNet vs iNat2021)": rep["p_value"].map("{:.1e}".format).to_numpy(),
                          "mark": rep["p_value"].map(significance_mark).to_numpy()}, index=rep["task"].to_numpy())
    cap = ("As reported in DART 2021 (Result I figure), ResNet-50: which pre-training scored higher and the printed "
           "p-value of ImageNet vs iNat2021. The figure's bar heights are not printed as numbers.")
    return Table(cells, _html_table(cells, None, cap, corner="task"))


def _table_self_supervised() -> Table:
    rep = load_reported("self-supervised")
    rep = rep[rep["init"] != "ImageNet"]
    mat = rep.pivot(index="init", columns="task", values="mark").reindex(list(dict.fromkeys(rep["init"])))
    mat = mat[list(dict.fromkeys(rep["task"]))].replace({"not sig. better": "–"})
    cap = ("As reported in DART 2021 (Result II figure), ResNet-50, each method against supervised ImageNet: *** "
           "p &lt; 0.0001, ** p &lt; 0.01, * p &lt; 0.05 (significantly better), n.s. not significantly different, "
           "– not reported as significantly better (the figure's exact values are not printed).")
    bold = mat.isin(["*", "**", "***"])
    return Table(mat, _html_table(mat, None, cap, bold, corner="method"))


def _table_architectures() -> Table:
    rep = load_reported("architectures")
    rep = rep.assign(col=rep["task"] + " (" + rep["labelled_images"].map(lambda n: f"{int(n):,}") + ")",
                     row=rep["comparison"])
    mat = rep.pivot(index="row", columns="col", values="mean")
    mat = mat[list(dict.fromkeys(rep["col"]))].reindex(list(dict.fromkeys(rep["row"])))
    cells = mat.map(lambda v: f"{v:+g}")
    cap = ("As reported in MedIA 2025: ConvNeXt minus Swin of the same size, in points of the task metric (Dice "
           "for CXS and PXS, AUC for TXC and DXC14), by task and number of training images. No std, number of runs or "
           "test is printed.")
    return Table(cells, _html_table(cells, None, cap, corner="pair"))


def _table_data_size() -> Table:
    rep = load_reported("data-size")
    rep = rep.assign(row=rep["labelled_images"].map(lambda n: f"{int(n) // 1000}K") + " (" + rep["dataset"] + ")")
    cells = pd.DataFrame(index=list(dict.fromkeys(rep["row"])), columns=["ImageNet init", "Scratch"], dtype=object)
    for _, r in rep.iterrows():
        col = "ImageNet init" if r["init"] == "ImageNet" else "Scratch"
        cells.loc[r["row"], col] = f"{r['mean']:+g}%" + (f" ({r['mark']})" if r["mark"] else "")
    cap = ("As reported in MedIA 2025: AUC of Swin minus ConvNeXt on ChestX-ray14-like classification as the "
           "number of labelled images grows; negative: ConvNeXt better. Marks as printed (ImageNet init only).")
    return Table(cells, _html_table(cells, None, cap, corner="labelled images"))


# ---------------------------------------------------------------------------------------------------------------
# Figures drawn from the registry


def plot(section: str):
    """A figure of the reported numbers of ``section``."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    return {"domain-adaptation": _plot_domain_adaptation, "granularity": _plot_granularity,
            "self-supervised": _plot_self_supervised, "architectures": _plot_architectures,
            "data-size": _plot_data_size}[section]()


def _plot_domain_adaptation():
    rep = load_reported("domain-adaptation").dropna(subset=["mean"])
    tasks = list(dict.fromkeys(rep["task"]))
    inits = list(dict.fromkeys(load_reported("domain-adaptation")["init"]))
    palette = dict(zip(inits, sns.color_palette("colorblind", len(inits))))
    ncols = 3
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.3 * nrows), dpi=130, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, t in zip(axes.flat, tasks):
        g = rep[rep["task"] == t].set_index("init").reindex([i for i in inits if i in set(rep[rep.task == t].init)])
        ax.bar(range(len(g)), g["mean"], yerr=g["std"], color=[palette[i] for i in g.index], capsize=2)
        lo = (g["mean"] - g["std"]).min()
        ax.set_ylim(lo - 0.3 * (g["mean"].max() - lo + 0.1), (g["mean"] + g["std"]).max() + 0.1)
        ax.set_xticks(range(len(g)), g.index, rotation=60, ha="right", fontsize=7)
        ax.set_title(t, fontsize=9)
    for row in axes:
        row[0].set_ylabel("AUC or Dice (%), mean ± std")
    fig.suptitle("Domain-adaptive pre-training, as reported (DART 2021, ResNet-50)", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_granularity():
    rep = load_reported("granularity")
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=130)
    colours = {"iNat2021": "#0173b2", "ImageNet": "#de8f05"}
    ax.bar(rep["task"], -np.log10(rep["p_value"]), color=[colours[h] for h in rep["higher"]])
    ax.axhline(-math.log10(ALPHA), ls="--", c="k", lw=1)
    ax.text(len(rep) - 0.5, -math.log10(ALPHA) + 0.05, "p = 0.05", ha="right", va="bottom", fontsize=8)
    ax.set_ylabel("−log10(printed p), ImageNet vs iNat2021")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, [f"{k} higher" for k in colours], fontsize=8, loc="upper left")
    ax.set_title("Granularity, as reported (DART 2021): which pre-training wins, and how surely", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_self_supervised():
    tab = _table_self_supervised().text
    levels = {"–": 0, "n.s.": 1, "*": 2, "**": 3, "***": 4}
    z = tab.apply(lambda col: col.map(levels)).astype(float)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=130)
    # greys for "not reported better" and "n.s.", blues only for significantly better
    cmap = sns.color_palette(["#f7f7f7", "#d9d9d9", "#9ecae1", "#4292c6", "#08519c"], as_cmap=True)
    sns.heatmap(z, annot=tab.to_numpy(), fmt="", cmap=cmap, vmin=-0.5, vmax=4.5, cbar=False, linewidths=0.5,
                ax=ax, annot_kws={"fontsize": 8})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("Self-supervised vs supervised ImageNet, as reported (DART 2021):\nmarks of significantly better "
                 "methods", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_architectures():
    rep = load_reported("architectures")
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=130)
    rep = rep.assign(x=rep["task"] + "\n" + rep["labelled_images"].map(lambda n: f"{int(n):,} images"))
    order = list(dict.fromkeys(rep["x"]))
    sns.barplot(data=rep, x="x", y="mean", hue="comparison", order=order, palette="colorblind", ax=ax)
    ax.axhline(0, c="k", lw=0.8)
    ax.set_xlabel("")
    ax.set_ylabel("ConvNeXt minus Swin (points)")
    ax.legend(fontsize=8, title="")
    ax.set_title("ConvNets vs vision transformers, as reported (MedIA 2025)", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_data_size():
    rep = load_reported("data-size")
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=130)
    for init, c in (("ImageNet", "#0173b2"), ("Scratch", "#de8f05")):
        g = rep[rep["init"] == init]
        ax.plot(g["labelled_images"], g["mean"], "o-", c=c, label=f"{init} init")
        for _, r in g.iterrows():
            if r["mark"]:
                ax.annotate(r["mark"], (r["labelled_images"], r["mean"]), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=8)
    ax.axhline(0, c="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images")
    ax.set_ylabel("AUC: Swin minus ConvNeXt (%)")
    ax.legend(fontsize=8)
    ax.set_title("Annotation efficiency, as reported (MedIA 2025)", fontsize=9)
    fig.tight_layout()
    return fig


def reported_gain_headlines(section: str, *, prefix: str, baseline: str = "ImageNet") -> dict:
    """From the reported table: the tasks where the best domain-adapted init (``A→B`` inits) gains most and least
    over ``baseline``, as glue-ready strings."""
    rep = load_reported(section).dropna(subset=["mean"])
    gains = {}
    for task, g in rep.groupby("task", sort=False):
        base = g.loc[g["init"] == baseline, "mean"]
        adapted = g.loc[g["init"].str.contains("→"), "mean"]
        if len(base) and len(adapted):
            gains[task] = adapted.max() - base.iloc[0]
    top, low = max(gains, key=gains.get), min(gains, key=gains.get)
    return {f"{prefix}_top_task": top, f"{prefix}_top_gain": f"{gains[top]:+.2f}",
            f"{prefix}_low_task": low, f"{prefix}_low_gain": f"{gains[low]:+.2f}"}


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
    return Table(text, _html_table(cells, classes, cap, corner="task · init"))
