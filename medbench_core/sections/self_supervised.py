"""Section 2: self-supervised vs supervised ImageNet pre-training, and where the models look (Grad-CAM)."""
from __future__ import annotations

from functools import cached_property

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import explain, papers
from ..pretrain import get_init, is_self_supervised, reported_name
from ..scores import group_label
from ..stats import compare_groups, holm, is_significant
from ..tables import Table, frame_table, grid_html
from ..tasks import CLASSIFICATION, get_task_spec
from ..verdicts import Verdict, holm_words, outcome
from .base import Results, Section, directions_table


SIG_MARKS = ("*", "**", "***")


class SelfSupervisedResults(Results):
    """The self-supervised section's runs, with where its fine-tuned models look (Grad-CAM), computed once."""

    @cached_property
    def attention(self) -> pd.DataFrame | None:
        """Attended area of every stored fine-tuned classifier on the grid's first classification task, compared
        with the supervised model (t-test over seeds); ``None`` without a classification task or checkpoints."""
        cls = [t for t in self.grid.tasks if get_task_spec(t).kind == CLASSIFICATION]
        if not cls:
            return None
        att = explain.attention_by_run(self.grid, self.results_dir, task=cls[0], cache_dir=self.cache_dir)
        groups = {i: g["attended_area"].tolist() for i, g in att.groupby("init", sort=False)}
        if self.section.baseline not in groups or len(groups) < 2:
            return None
        area = compare_groups(groups, baseline=self.section.baseline)
        area.attrs.update(task=cls[0], missing=att.attrs["missing"])
        return area


class SelfSupervised(Section):
    results_type = SelfSupervisedResults

    def ssl_inits(self, res: Results) -> list[str]:
        """The grid's self-supervised initialisations (by the registry, whatever their names)."""
        return [i for i in res.grid.inits if is_self_supervised(i)]

    def rule(self, res: Results) -> Verdict:
        """Top self-supervised models significantly better than supervised on segmentation, mostly no different on
        classification?

        The family is every (self-supervised model, task) comparison with supervised: their p-values are
        Holm-adjusted together (``stats.holm``), so that six models on two tasks do not make one "significant"
        model likely by chance (uncorrected, about one time in four with six comparisons and no effect at all);
        the table keeps the per-comparison marks. agrees: on every segmentation task at least one
        self-supervised model is significantly better than supervised, and on the classification tasks at most
        half of them differ significantly. does not agree: on some segmentation task no self-supervised model is
        ahead of supervised at all, or supervised is significantly better than all of them. inconclusive: anything
        in between.
        """
        s, supervised = res.at_full(), self.baseline
        cells = [(t, i, s.loc[(i, t)]) for t in res.grid.tasks for i in self.ssl_inits(res) if (i, t) in s.index]
        adjusted = dict(zip([(t, i) for t, i, _ in cells], holm([r["p_vs_baseline"] for _, _, r in cells])))
        reasons, seg_ok, seg_fail, cls_diff, cls_total = [], True, False, 0, 0
        for t in res.grid.tasks:
            seg = get_task_spec(t).kind != CLASSIFICATION
            rows = [(i, r, adjusted[(t, i)]) for t2, i, r in cells if t2 == t]
            better = [group_label(i) for i, r, p in rows if is_significant(p) and r["diff_vs_baseline"] > 0]
            worse = [group_label(i) for i, r, p in rows if is_significant(p) and r["diff_vs_baseline"] < 0]
            ahead = [i for i, r, _ in rows if r["diff_vs_baseline"] > 0]
            top_i, top_r, top_p = max(rows, key=lambda x: x[1]["mean"])
            reasons.append(f"{get_task_spec(t).display_name}: {len(better)} of {len(rows)} self-supervised models "
                           f"significantly better than {group_label(supervised)} ({', '.join(better) or 'none'}), "
                           f"{len(worse)} significantly worse; best {group_label(top_i)} "
                           f"{top_r['diff_vs_baseline']:+.2f} points (p = {top_r['p_vs_baseline']:.3g}, "
                           f"{holm_words(top_p, len(cells))})")
            if seg:
                seg_ok &= len(better) >= 1
                seg_fail |= not ahead or len(worse) == len(rows)
            else:
                cls_diff += len(better) + len(worse)
                cls_total += len(rows)
        return Verdict(outcome(agrees=seg_ok and cls_diff * 2 <= cls_total, disagrees=seg_fail), reasons)

    def directions(self, res: Results) -> Table:
        s, rep, rows = res.at_full(), self.reported(), []
        for t in res.grid.tasks:
            pt = get_task_spec(t).analog_of
            for i in self.ssl_inits(res):
                r = s.loc[(i, t)]
                ours_sig = is_significant(r["p_vs_baseline"]) and r["diff_vs_baseline"] > 0
                name = reported_name(i)
                pr = rep[(rep["task"] == pt) & (rep["init"] == name)] if name else rep.iloc[0:0]
                mark = str(pr.iloc[0]["mark"]) if len(pr) else ""
                rows.append({"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                             "method (ours → paper)": f"{group_label(i)} → {name or 'not in the paper'}",
                             "ours vs supervised (points)": f"{r['diff_vs_baseline']:+.2f} {r['mark_vs_baseline']}",
                             "paper vs supervised": mark or "–",
                             "both significantly better / both not":
                                 ("yes" if ours_sig == mark.startswith("*") else "no") if mark else "–"})
        return directions_table(rows, synthetic=res.synthetic,
                                what="Significantly better than supervised pre-training or not")

    # -- where the models look --

    def attention(self, res: SelfSupervisedResults) -> pd.DataFrame | None:
        return res.attention

    def details(self, res: Results) -> list:
        area = self.attention(res)
        if area is None:
            return [frame_table(pd.DataFrame({"Grad-CAM": ["not computed: no classification task in this grid, or "
                                                           "no fine-tuned checkpoint stored (runs imported from "
                                                           "elsewhere)"]}))]
        text = area[["mean", "std", "n", "diff_vs_baseline", "p_vs_baseline", "mark_vs_baseline"]].round(3)
        text = text.rename(columns={"mean": "attended area (%)", "std": "std over seeds", "n": "runs",
                                    "diff_vs_baseline": "vs supervised", "p_vs_baseline": "p",
                                    "mark_vs_baseline": "mark"})
        text.insert(0, "model", [get_init(i).label for i in text.index])
        table = frame_table(text.reset_index(drop=True),
                            f"Share of the image each model attends to on {get_task_spec(area.attrs['task']).display_name}"
                            f" (Grad-CAM ≥ half its maximum), over 64 test images per run; "
                            f"{area.attrs['missing']} runs without a stored checkpoint left out.")
        top = res.summary[(res.summary["fraction"] == 1.0) & res.summary["group"].isin(self.ssl_inits(res))]
        shown = [self.baseline] + list(top.groupby("group")["mean"].mean().sort_values().index[-3:])
        fig = explain.plot_cams(res.grid, res.results_dir, task=area.attrs["task"], inits=shown,
                                cache_dir=res.cache_dir)
        plt.close(fig)  # shown once, by the page
        return [table, fig]

    def section_headlines(self, res: Results) -> dict:
        s1 = res.summary[res.summary["fraction"] == 1.0]
        rows = s1[s1["group"].isin(self.ssl_inits(res))]
        sig_better = rows[rows["p_vs_baseline"].map(is_significant) & (rows["diff_vs_baseline"] > 0)]
        best = rows.loc[rows["diff_vs_baseline"].idxmax()]
        area = self.attention(res)
        if area is not None:
            ssl = area.drop(self.baseline)
            wider = int((ssl["p_vs_baseline"].map(is_significant) & (ssl["diff_vs_baseline"] > 0)).sum())
            area_text = (f"{wider} of {len(ssl)} self-supervised models attend to a significantly larger share of "
                         "the image than the supervised one")
        else:
            area_text = "no classification task or no stored checkpoint, so no Grad-CAM"
        return {"n_methods": rows["group"].nunique(), "sig_better": len(sig_better), "cells": len(rows),
                "best": f"{group_label(best['group'])} on {get_task_spec(best['task']).display_name}",
                "best_gain": f"{best['diff_vs_baseline']:+.2f}", "best_p": f"{best['p_vs_baseline']:.2g}",
                "area": area_text}

    # -- the papers' side --

    def paper_table(self) -> Table:
        rep = self.reported()
        rep = rep[rep["init"] != "ImageNet"]
        mat = rep.pivot(index="init", columns="task", values="mark").reindex(list(dict.fromkeys(rep["init"])))
        mat = mat[list(dict.fromkeys(rep["task"]))].replace({"not sig. better": "–"})
        cap = ("As reported in DART 2021 (Result II figure), ResNet-50, each method against supervised ImageNet: "
               "*** p &lt; 0.0001, ** p &lt; 0.01, * p &lt; 0.05 (significantly better), n.s. not significantly "
               "different, – not reported as significantly better (the figure's exact values are not printed).")
        return Table(mat, grid_html(mat, cap, bold=mat.isin(SIG_MARKS), corner="method"))

    def paper_plot(self):
        tab = self.paper_table().text
        levels = {"–": 0, "n.s.": 1, "*": 2, "**": 3, "***": 4}
        z = tab.apply(lambda col: col.map(levels)).astype(float)
        fig, ax = plt.subplots(figsize=(6, 5), dpi=130)
        # greys for "not reported better" and "n.s.", blues only for significantly better
        cmap = sns.color_palette(["#f7f7f7", "#d9d9d9", "#9ecae1", "#4292c6", "#08519c"], as_cmap=True)
        sns.heatmap(z, annot=tab.to_numpy(), fmt="", cmap=cmap, vmin=-0.5, vmax=4.5, cbar=False, linewidths=0.5,
                    ax=ax, annot_kws={"fontsize": 8})
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title("Self-supervised vs supervised ImageNet, as reported (DART 2021):\nmarks of significantly "
                     "better methods", fontsize=9)
        fig.tight_layout()
        return fig

    def paper_claims(self) -> list[dict]:
        rows, rep = [], self.reported()
        for task, g in rep[rep["init"] != "ImageNet"].groupby("task", sort=False):
            sig = g[g["mark"].isin(SIG_MARKS)]
            names = ", ".join(f"{m} ({k})" for m, k in zip(sig["init"], sig["mark"]))
            rows.append({"section": self.key,
                         "claim": f"{task}: top self-supervised models beat supervised ImageNet pre-training",
                         "flag": papers.SUPPORTED if len(sig) else papers.NOT_SUPPORTED,
                         "evidence": (f"{len(sig)} of {len(g)} methods marked significantly better: {names}"
                                      if len(sig) else f"none of {len(g)} methods significantly different")
                                     + "; printed marks only (no std), not re-derivable"})
        return rows


SECTION = SelfSupervised(
    key="self-supervised", number=2, notebook="02_self_supervised.ipynb", prefix="ssl",
    title="Self-supervised vs supervised ImageNet pre-training",
    question="Do self-supervised ImageNet models transfer better than the supervised ImageNet model?",
    claim="Top self-supervised models (SimCLR, BYOL, SwAV, Barlow Twins, ...) are significantly better than "
          "supervised ImageNet pre-training on segmentation (and on RSNA PE), while on the chest "
          "classification tasks most are not significantly different; they learn more holistic features "
          "that attend to larger image regions.",
    tasks=("syn_txc", "syn_pxs"),
    inits=("synth_imagenet", "ssl_simclr", "ssl_moco_v2", "ssl_byol", "ssl_swav", "ssl_barlow_twins",
           "ssl_vicreg"),
    baseline="synth_imagenet", candidate="ssl")
