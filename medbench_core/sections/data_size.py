"""Section 5: ConvNets vs vision transformers as the labelled training set shrinks (MedIA 2025)."""
from __future__ import annotations

import html
import json
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import papers
from ..data import write_fraction_manifest
from ..flags import FLAG_MARK
from ..inputs import task_of
from ..models import get_arch
from ..pretrain import get_init
from ..run_tables import flagged_sentence, headed_table
from ..scores import group_label, main_scores, pair_differences
from ..stats import ALPHA, holm, is_significant
from ..tables import Table, frame_table, grid_html, mean_std
from ..tasks import CLASSIFICATION, get_task_spec
from ..verdicts import Verdict, outcome
from .base import Results, Section, directions_table, same_sign


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
            val = mean_std(r["mean"], r["std"]) + (FLAG_MARK if r.get("flagged", 0) else "")
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
              f"column; highlighted: not significantly different from it (p ≥ {ALPHA}). Difference rows: points, "
              "with the t-test mark (n.s., *, **, ***)." + flagged_sentence(s))
    return Table(text, headed_table(legend, "Model", head, rows_html))


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


SMALL = 0.1  # "few labels": fractions up to this share of the training split


class DataSizeResults(Results):
    """The data-size section's runs, with the paired differences its table, figure and verdict all read."""

    @cached_property
    def differences(self) -> pd.DataFrame:
        """Transformer minus ConvNet per initialisation and training fraction (``pair_differences``), once."""
        sec = self.section
        return pair_differences(self.df, sec.pairs(self), sec.task(self))


class DataSize(Section):
    results_type = DataSizeResults

    def task(self, res: Results) -> str:
        return res.grid.tasks[0]

    def pairs(self, res: Results) -> list[tuple[str, str, str]]:
        """(name, ConvNet group, transformer group) per init: differences are transformer minus ConvNet, as in
        the MedIA 2025 table. The ConvNet and transformer are the section's baseline and candidate architectures,
        or else the grid's first of each family (by the registry)."""
        archs = res.grid.archs
        conv = self.baseline.split("/")[0]
        vit = self.candidate.split("/")[0]
        conv = conv if conv in archs else [a for a in archs if get_arch(a).family == "convnet"][0]
        vit = vit if vit in archs else [a for a in archs if get_arch(a).family == "transformer"][0]
        return [(f"{get_arch(vit).label} − {get_arch(conv).label} ({get_init(i).label})", f"{conv}/{i}", f"{vit}/{i}")
                for i in res.grid.inits]

    def differences(self, res: DataSizeResults) -> pd.DataFrame:
        return res.differences

    def table(self, res: Results) -> Table:
        d = self.differences(res)
        return fraction_table(res.summary, res.grid.groups, self.task(res), caption=res.caption(self.task(res)),
                              diffs=d, n_images=dict(zip(d["fraction"], d["labelled images"])))

    def figure(self, res: Results):
        return plot_learning_curves(res.df, res.grid.groups, self.task(res), title=self.title,
                                    synthetic=res.synthetic)

    def details(self, res: Results) -> list:
        """The training subsets: one manifest per task (image ids per fraction) written next to the results,
        re-read and checked to be nested and drawn from the training split only."""
        rows = []
        for t in res.grid.tasks:
            spec = task_of(next(c for c in res.grid.configs if c.task == t))
            path = write_fraction_manifest(spec, res.grid.fractions, Path(res.results_dir) / "manifests",
                                           cache_dir=res.cache_dir)
            man = json.loads(path.read_text())
            ids = [set(v) for v in man["fractions"].values()]
            if not all(a <= b for a, b in zip(ids, ids[1:])) or any(not i.startswith("train/") for s in ids
                                                                     for i in s):
                raise RuntimeError(f"{path} is not nested and train-only: the fractions would not be comparable")
            rows += [{"task": spec.display_name, "fraction": f"{float(f):.0%}", "training images": len(v),
                      "validation / test images": f"{man['n_val']} / {man['n_test']}", "manifest": path.name}
                     for f, v in man["fractions"].items()]
        return [frame_table(pd.DataFrame(rows), "Training subsets, re-read from their manifests: nested (each inside "
                                                "the larger ones) and drawn from the training split only.")]

    def rule(self, res: Results) -> Verdict:
        """Does the pre-trained transformer trail the pre-trained ConvNet when labelled data are few (fractions ≤
        ``SMALL``), and does the gap close with more data?

        The tests at the small fractions are Holm-adjusted together (``stats.holm``): scanning more small fractions
        does not make "significantly behind at one of them" likelier by chance.
        agrees: significantly behind at some small fraction, never significantly ahead there, and the gap at the
        full training set is smaller than the mean gap at the small fractions. does not agree: not behind on average
        at the small fractions, or significantly ahead at one of them. inconclusive: anything in between, or no
        fraction small enough in the grid.
        """
        diffs = self.differences(res)
        names = {b.split("/")[1]: name for name, _, b in self.pairs(res)}
        pretrained = next(n for i, n in names.items() if i != "scratch")
        d = diffs[diffs["pair"] == pretrained].set_index("fraction")
        few, full = d[d.index <= SMALL], d.loc[d.index.max()]
        reasons = [f"{pretrained}: {r['difference']:+.2f} points at {f:.0%} ({int(r['labelled images'])} images, "
                   f"{r['mark']})" for f, r in d.iterrows()]
        if not len(few):
            reasons.append(f"no training fraction of at most {SMALL:.0%} in this grid: the claim about few labels "
                           "cannot be tested")
            return Verdict(outcome(agrees=False, disagrees=False), reasons)
        sig = pd.Series(holm(few["p"]), index=few.index).map(is_significant)
        behind = bool(((few["difference"] < 0) & sig).any())
        ahead = bool(((few["difference"] > 0) & sig).any())
        closes = full["difference"] > few["difference"].mean()
        reasons.append(f"significantly behind (Holm-adjusted over the {len(few)} small fractions) at "
                       f"{int(((few['difference'] < 0) & sig).sum())} of them, significantly ahead at "
                       f"{int(((few['difference'] > 0) & sig).sum())}")
        reasons.append(f"mean gap with ≤ {SMALL:.0%} of the labels: {few['difference'].mean():+.2f} points; with all "
                       f"of them: {full['difference']:+.2f} points ({'closes' if closes else 'does not close'})")
        if "scratch" in names:
            s = diffs[diffs["pair"] == names["scratch"]]
            reasons.append(f"{names['scratch']}: {s['difference'].mean():+.2f} points on average over the fractions")
        return Verdict(outcome(agrees=behind and not ahead and closes,
                               disagrees=few["difference"].mean() >= 0 or ahead), reasons)

    def directions(self, res: Results) -> Table:
        rep, diffs, rows = self.reported(), self.differences(res), []
        paper_rows = {0.1: "ChestX-ray14 (10%)", 0.25: "ChestX-ray14 (25%)", 1.0: "ChestX-ray14"}
        for name, _, b in self.pairs(res):
            pinit = get_init(b.split("/")[1]).paper_analog
            for _, r in diffs[diffs["pair"] == name].iterrows():
                row = {"model pair": name, "training data": f"{r['fraction']:.0%} ({r['labelled images']} images)",
                       "ours (points)": f"{r['difference']:+.2f} {r['mark']}"}
                pr = rep[(rep["dataset"] == paper_rows.get(r["fraction"])) & (rep["init"] == pinit)]
                if len(pr):
                    v = float(pr.iloc[0]["mean"])
                    mark = pr.iloc[0]["mark"] if isinstance(pr.iloc[0]["mark"], str) else ""
                    row.update({"paper (AUC points)": f"{v:+.2f} {mark}".strip() + f" ({pr.iloc[0]['dataset']})",
                                "same direction": same_sign(r["difference"], v)})
                else:
                    row.update({"paper (AUC points)": "–", "same direction": "–"})
                rows.append(row)
        return directions_table(rows, synthetic=res.synthetic)

    def section_headlines(self, res: Results) -> dict:
        diffs = self.differences(res)
        names = {b.split("/")[1]: name for name, _, b in self.pairs(res)}
        pre = diffs[diffs["pair"] == next(n for i, n in names.items() if i != "scratch")].set_index("fraction")
        scr = diffs[diffs["pair"] == names.get("scratch", "")]
        few = pre[pre.index <= SMALL]
        return {"few_gap": f"{few['difference'].mean():+.2f}" if len(few) else "– (no small fraction run)",
                "full_gap": f"{pre['difference'].iloc[-1]:+.2f}",
                "scratch_gap": f"{scr['difference'].mean():+.2f}" if len(scr) else "– (not run)",
                "min_images": int(pre["labelled images"].min()), "max_images": int(pre["labelled images"].max())}

    # -- the papers' side --

    def paper_table(self) -> Table:
        rep = self.reported()
        rep = rep.assign(row=rep["labelled_images"].map(lambda n: f"{int(n) // 1000}K") + " (" + rep["dataset"] + ")")
        cells = pd.DataFrame(index=list(dict.fromkeys(rep["row"])), columns=["ImageNet init", "Scratch"], dtype=object)
        for _, r in rep.iterrows():
            col = "ImageNet init" if r["init"] == "ImageNet" else "Scratch"
            cells.loc[r["row"], col] = f"{r['mean']:+g}%" + (f" ({r['mark']})" if r["mark"] else "")
        cap = ("As reported in MedIA 2025: AUC of Swin minus ConvNeXt on ChestX-ray14-like classification as the "
               "number of labelled images grows; negative: ConvNeXt better. Marks as printed (ImageNet init only).")
        return Table(cells, grid_html(cells, cap, corner="labelled images"))

    def paper_plot(self):
        rep = self.reported()
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=130)
        for init, c in (("ImageNet", "#0173b2"), ("Scratch", "#de8f05")):
            g = rep[rep["init"] == init]
            ax.plot(g["labelled_images"], g["mean"], "o-", c=c, label=f"{init} init")
            for _, r in g.iterrows():
                if r["mark"]:
                    ax.annotate(r["mark"], (r["labelled_images"], r["mean"]), textcoords="offset points",
                                xytext=(0, 6), ha="center", fontsize=8)
        ax.axhline(0, c="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images")
        ax.set_ylabel("AUC: Swin minus ConvNeXt (%)")
        ax.legend(fontsize=8)
        ax.set_title("Annotation efficiency, as reported (MedIA 2025)", fontsize=10)
        fig.tight_layout()
        return fig

    def paper_claims(self) -> list[dict]:
        rows, rep = [], self.reported()
        for _, r in rep[rep["init"] == "ImageNet"].iterrows():
            sig = r["mark"] in ("*", "**", "***")
            rows.append({"section": self.key, "flag": papers.SUPPORTED if sig and r["mean"] < 0 else papers.NOT_SUPPORTED,
                         "claim": f"{int(r['labelled_images']) // 1000}K labelled images ({r['dataset']}), ImageNet "
                                  "init: ConvNeXt beats Swin",
                         "evidence": f"Swin minus ConvNeXt {r['mean']:+g} AUC points, printed mark {r['mark']}; "
                                     "not re-derivable (no std)"})
        scratch = rep[rep["init"] == "Scratch"].sort_values("labelled_images")
        shrinking = bool((scratch["mean"].diff().dropna() > 0).all())
        rows.append({"section": self.key, "flag": papers.SUPPORTED if shrinking else papers.NOT_SUPPORTED,
                     "claim": "From scratch, the gap between Swin and ConvNeXt narrows as labelled data grows",
                     "evidence": "Swin minus ConvNeXt " + ", ".join(f"{v:+g}" for v in scratch["mean"])
                                 + " points at " + ", ".join(f"{int(n) // 1000}K" for n in scratch["labelled_images"])})
        return rows


SECTION = DataSize(
    paper="MedIA 2025",
    key="data-size", number=5, notebook="05_data_size.ipynb", prefix="ds",
    title="Transfer as labelled data shrink",
    question="How do ConvNets and vision transformers behave as the labelled training set shrinks?",
    claim="ConvNets are more annotation-efficient than vision transformers: ImageNet-pre-trained Swin trails "
          "ConvNeXt when labelled data are few, and the gap closes as they grow; from scratch, Swin trails "
          "far more at every size.",
    tasks=("syn_dxc",),
    inits=("scratch", "synth_imagenet"),
    archs=("mini_convnext", "mini_swin"), compare="arch",
    fractions=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0),
    baseline="mini_convnext/synth_imagenet", candidate="mini_swin/synth_imagenet", claim_kinds=(CLASSIFICATION,),
    row_title="Model")
