"""Section 1: fine-grained (iNat2021) vs coarse-grained (ImageNet) supervised pre-training."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import papers
from ..scores import group_label
from ..stats import ALPHA, holm, is_significant, significance_mark
from ..tables import Table, grid_html
from ..tasks import CLASSIFICATION, get_task_spec
from ..verdicts import Verdict, holm_words, outcome
from .base import Results, Section, directions_table, same_sign



class Granularity(Section):
    def rule(self, res: Results) -> Verdict:
        """Fine-grained ahead on segmentation, coarse-grained ahead on classification?

        Significance here is Holm-adjusted over the grid's tasks (one comparison each, ``stats.holm``), so scanning
        more tasks does not make a significant difference likelier by chance; the table keeps per-task marks.
        agrees: no task differs significantly against the claim, the claimed direction holds on at least half of
        the segmentation and half of the classification tasks present, and at least one difference in the claimed
        direction is significant. does not agree: some task differs significantly against the claim, or the claimed
        direction holds on fewer than half of all tasks. inconclusive: anything in between.
        """
        s = res.at_full()
        fine, coarse = self.candidate, self.baseline
        reasons, along, count, against, sig_along = [], {True: 0, False: 0}, {True: 0, False: 0}, 0, 0
        rows = [(t, s.loc[(fine, t)]) for t in res.grid.tasks]
        adjusted = holm([r["p_vs_baseline"] for _, r in rows])
        for (t, r), p_adj in zip(rows, adjusted):
            seg = get_task_spec(t).kind != CLASSIFICATION
            d, p = r["diff_vs_baseline"], r["p_vs_baseline"]
            ok = np.sign(d) == (1 if seg else -1)
            count[seg] += 1
            along[seg] += bool(ok)
            against += bool(is_significant(p_adj) and not ok)
            sig_along += bool(is_significant(p_adj) and ok)
            reasons.append(f"{get_task_spec(t).display_name} ({'segmentation' if seg else 'classification'}): "
                           f"{group_label(fine)} {d:+.2f} points vs {group_label(coarse)} (p = {p:.3g}, "
                           f"{holm_words(p_adj, len(rows))}); the claim expects {'fine' if seg else 'coarse'}-grained "
                           "ahead")
        n = len(res.grid.tasks)
        word = outcome(agrees=against == 0 and all(along[k] * 2 >= count[k] for k in (True, False))
                       and sig_along >= 1, disagrees=against > 0 or (along[True] + along[False]) * 2 < n)
        reasons.append(f"the claimed direction holds on {along[True] + along[False]} of {n} tasks, significantly "
                       f"(Holm) on {sig_along}; significantly against it on {against}")
        return Verdict(word, reasons)

    def directions(self, res: Results) -> Table:
        s, rep, rows = res.at_full(), self.reported(), []
        for t in res.grid.tasks:
            r = s.loc[(self.candidate, t)]
            pt = get_task_spec(t).analog_of
            pr = rep[rep["task"] == pt]
            row = {"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                   "ours: fine − coarse (points)": f"{r['diff_vs_baseline']:+.2f} {r['mark_vs_baseline']}"}
            if len(pr):
                higher, p = pr.iloc[0]["higher"], float(pr.iloc[0]["p_value"])
                sign = 1 if str(higher).startswith("iNat") else -1
                row.update({"paper: higher": f"{higher} (p = {p:.2g})",
                            "same direction": same_sign(r["diff_vs_baseline"], sign)})
            else:
                row.update({"paper: higher": "not reported", "same direction": "–"})
            rows.append(row)
        return directions_table(rows, synthetic=res.synthetic)

    def section_headlines(self, res: Results) -> dict:
        fine = res.at_full().xs(self.candidate, level="group")
        seg = [t for t in fine.index if get_task_spec(t).kind != CLASSIFICATION]
        cls = [t for t in fine.index if t not in seg]
        mean = lambda ts: f"{fine.loc[ts, 'diff_vs_baseline'].mean():+.2f}" if ts else "– (none run)"  # noqa: E731
        paper = self.reported().dropna(subset=["p_value"])
        sig = paper["p_value"].map(is_significant)
        return {"seg_gain": mean(seg), "cls_gain": mean(cls),
                "n_sig": int(fine["p_vs_baseline"].map(is_significant).sum()), "n_tasks": len(fine),
                "paper_sig": int(sig.sum()), "paper_n": len(paper),
                "paper_sig_tasks": ", ".join(paper.loc[sig, "task"])}

    # -- the papers' side --

    def paper_table(self) -> Table:
        rep = self.reported()
        cells = pd.DataFrame({"kind": np.where(rep["metric"] == "dice", "segmentation", "classification"),
                              "higher": rep["higher"].to_numpy(),
                              "printed p (ImageNet vs iNat2021)": rep["p_value"].map("{:.1e}".format).to_numpy(),
                              "mark": rep["p_value"].map(significance_mark).to_numpy()}, index=rep["task"].to_numpy())
        cap = ("As reported in DART 2021 (Result I figure), ResNet-50: which pre-training scored higher and the "
               "printed p-value of ImageNet vs iNat2021. The figure's bar heights are not printed as numbers.")
        return Table(cells, grid_html(cells, cap, corner="task"))

    def paper_plot(self):
        rep = self.reported()
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=130)
        colours = {"iNat2021": "#0173b2", "ImageNet": "#de8f05"}
        ax.bar(rep["task"], -np.log10(rep["p_value"]), color=[colours[h] for h in rep["higher"]])
        ax.axhline(-math.log10(ALPHA), ls="--", c="k", lw=1)
        ax.text(len(rep) - 0.5, -math.log10(ALPHA) + 0.05, f"p = {ALPHA}", ha="right", va="bottom", fontsize=8)
        ax.set_ylabel("−log10(printed p), ImageNet vs iNat2021")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
        ax.legend(handles, [f"{k} higher" for k in colours], fontsize=8, loc="upper left")
        ax.set_title("Granularity, as reported (DART 2021): which pre-training wins, and how surely", fontsize=9)
        fig.tight_layout()
        return fig

    def paper_claims(self) -> list[dict]:
        rows = []
        for _, r in self.reported().iterrows():
            kind = "segmentation" if r["metric"] == "dice" else "classification"
            sig = is_significant(r["p_value"])
            rows.append({"section": self.key, "claim": f"{r['task']} ({kind}): {r['higher']} pre-training is better",
                         "flag": papers.SUPPORTED if sig else papers.NOT_SUPPORTED,
                         "evidence": f"{r['higher']} higher as printed; printed p = {r['p_value']:.2g} "
                                     f"({'significant' if sig else 'not significant'} at {ALPHA}); "
                                     "means not printed, so not re-derivable"})
        return rows


SECTION = Granularity(
    key="granularity", number=1, notebook="01_granularity.ipynb", prefix="gr",
    title="Fine-grained vs coarse-grained supervised pre-training",
    question="Do fine-grained labels (iNat2021) make better pre-trained features than coarse ones (ImageNet)?",
    claim="Fine-grained pre-training (iNat2021) suits segmentation: it is ahead of coarse-grained ImageNet "
          "pre-training on the segmentation tasks, while coarse-grained pre-training prevails on "
          "classification.",
    tasks=("syn_dxc", "syn_txc", "syn_pxs", "syn_vxs"),
    inits=("scratch", "synth_imagenet", "synth_inat"),
    baseline="synth_imagenet", candidate="synth_inat")
