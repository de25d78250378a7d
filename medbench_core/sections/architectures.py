"""Section 4: ConvNets vs vision transformers of the same size (MedIA 2025)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import papers
from ..models import get_arch
from ..scores import group_label, pair_differences
from ..stats import holm, is_significant
from ..tables import Table, frame_table, grid_html
from ..tasks import get_task_spec
from ..verdicts import Verdict, holm_words, outcome
from .base import Results, Section, directions_table, same_sign



def _arch(group: str) -> str:
    return group.split("/")[0]


class Architectures(Section):
    def pairs(self, res: Results) -> list[tuple[str, str, str]]:
        """(name, transformer group, ConvNet group) for every ConvNet-transformer pair of the grid with the same
        initialisation: first the section's candidate and rival architectures, then the remaining ConvNets and
        transformers in the grid's order (by the registry's ``family``). Differences are ConvNet minus
        transformer, as in the paper's table."""
        archs = res.grid.archs
        conv = [a for a in archs if get_arch(a).family == "convnet"]
        vit = [a for a in archs if get_arch(a).family == "transformer"]
        first = (_arch(self.candidate), _arch(self.rival))
        rest = list(zip([a for a in conv if a != first[0]], [a for a in vit if a != first[1]]))
        out = []
        for init in res.grid.inits:
            for c, v in [first, *rest]:
                a, b = f"{v}/{init}", f"{c}/{init}"
                if a in res.grid.groups and b in res.grid.groups:
                    out.append((f"{group_label(b)} − {get_arch(v).label}", a, b))
        return out

    def differences(self, res: Results) -> pd.DataFrame:
        full = res.df[res.df["fraction"].astype(float) == 1.0]
        parts = [pair_differences(full, self.pairs(res), t).assign(task=t) for t in res.grid.tasks]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def details(self, res: Results) -> list:
        d = self.differences(res)
        if not len(d):
            return []
        d = d.assign(cell=[f"{x:+.2f} {m}" for x, m in zip(d["difference"], d["mark"])],
                     task=d["task"].map(lambda t: get_task_spec(t).display_name))
        text = d.pivot_table(index="pair", columns="task", values="cell", aggfunc="first", sort=False).fillna("–")
        text = text.reset_index().rename(columns={"pair": "ConvNet − transformer"})
        return [frame_table(text, "ConvNet minus transformer of the same pre-training, in points, with the t-test "
                                  "mark (n.s., *, **, ***); – where the pair has no runs (a plain ViT does not "
                                  "segment).")]

    def rule(self, res: Results) -> Verdict:
        """Is the candidate (ConvNet) ahead of the rival (transformer of the same size) on every task?

        The per-task tests are Holm-adjusted over the tasks (``stats.holm``); the table keeps per-task marks.
        agrees: ahead on every task, significantly on at least one, never significantly behind. does not agree:
        significantly behind on some task, or behind on most. inconclusive: anything in between.
        """
        better, worse = self.candidate, self.rival
        full = res.df[res.df["fraction"].astype(float) == 1.0]
        rows = []
        for t in res.grid.tasks:
            d = pair_differences(full, [("claim", worse, better)], t)
            if len(d):
                rows.append((t, d.iloc[0]))
        adjusted = holm([r["p"] for _, r in rows])
        reasons, ahead, sig_ahead, sig_behind = [], 0, 0, 0
        for (t, r), p_adj in zip(rows, adjusted):
            ahead += r["difference"] > 0
            sig_ahead += bool(is_significant(p_adj) and r["difference"] > 0)
            sig_behind += bool(is_significant(p_adj) and r["difference"] < 0)
            reasons.append(f"{get_task_spec(t).display_name}: {group_label(better)} {r['difference']:+.2f} points vs "
                           f"{group_label(worse)} (p = {r['p']:.3g}, {holm_words(p_adj, len(rows))})")
        n = len(rows)
        reasons.append(f"{group_label(better)} ahead on {ahead} of {n} tasks, significantly (Holm) on {sig_ahead}; "
                       f"significantly behind on {sig_behind}")
        return Verdict(outcome(agrees=ahead == n and sig_ahead >= 1 and sig_behind == 0,
                               disagrees=sig_behind > 0 or ahead * 2 < n), reasons)

    def paper_pair(self) -> tuple[str, bool]:
        """The paper's row for our candidate and rival: the pair of the same size (``ConvNeXt-B vs Swin-B``), or,
        for architectures the paper did not run (the miniatures), its smallest pair; and whether it is the same."""
        rep = self.reported()
        ours = f"{get_arch(_arch(self.candidate)).label} vs {get_arch(_arch(self.rival)).label}"
        if ours in set(rep["arch"]):
            return ours, True
        return rep["arch"].iloc[0], False

    def directions(self, res: Results) -> Table:
        rep, (pair, same) = self.reported(), self.paper_pair()
        paper_task = dict(self.paper_tasks)
        full = res.df[res.df["fraction"].astype(float) == 1.0]
        label = f"paper: {pair.replace(' vs ', ' − ')}" + ("" if same else " (the paper's smallest pair)")
        rows = []
        for t in res.grid.tasks:
            d = pair_differences(full, [("x", self.rival, self.candidate)], t)
            if not len(d):
                continue
            pt = paper_task.get(t, get_task_spec(t).analog_of)
            pr = rep[(rep["task"] == pt) & (rep["arch"] == pair)]
            row = {"task (ours → paper)": f"{get_task_spec(t).display_name} → {pt}",
                   f"ours: {group_label(self.candidate)} − {get_arch(_arch(self.rival)).label} (points)":
                       f"{d.iloc[0]['difference']:+.2f} {d.iloc[0]['mark']}"}
            if len(pr):
                v = float(pr.iloc[0]["mean"])
                row.update({label: f"{v:+.2f}", "same direction": same_sign(d.iloc[0]["difference"], v)})
            else:
                row.update({label: "not reported", "same direction": "–"})
            rows.append(row)
        return directions_table(rows, synthetic=res.synthetic)

    def section_headlines(self, res: Results) -> dict:
        d = self.differences(res)
        claim = next((n for n, a, b in self.pairs(res) if (a, b) == (self.rival, self.candidate)), None)
        main = d[d["pair"] == claim] if len(d) else d  # the claim's pair: candidate minus rival
        return {"main_gaps": ", ".join(f"{r.difference:+.2f} ({get_task_spec(r.task).display_name}, {r.mark})"
                                       for r in main.itertuples()),
                "conv_ahead": f"{int((d['difference'] > 0).sum())} of {len(d)}" if len(d) else "0 of 0"}

    # -- the papers' side --

    def paper_table(self) -> Table:
        rep = self.reported()
        rep = rep.assign(col=rep["task"] + " (" + rep["labelled_images"].map(lambda n: f"{int(n):,}") + ")",
                         row=rep["comparison"])
        mat = rep.pivot(index="row", columns="col", values="mean")
        mat = mat[list(dict.fromkeys(rep["col"]))].reindex(list(dict.fromkeys(rep["row"])))
        cells = mat.map(lambda v: f"{v:+g}")
        cap = ("As reported in MedIA 2025: ConvNeXt minus Swin of the same size, in points of the task metric (Dice "
               "for CXS and PXS, AUC for TXC and DXC14), by task and number of training images. No std, number of "
               "runs or test is printed.")
        return Table(cells, grid_html(cells, cap, corner="pair"))

    def paper_plot(self):
        rep = self.reported()
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=130)
        rep = rep.assign(x=rep["task"] + "\n" + rep["labelled_images"].map(lambda n: f"{int(n):,} images"))
        sns.barplot(data=rep, x="x", y="mean", hue="comparison", order=list(dict.fromkeys(rep["x"])),
                    palette="colorblind", ax=ax)
        ax.axhline(0, c="k", lw=0.8)
        ax.set_xlabel("")
        ax.set_ylabel("ConvNeXt minus Swin (points)")
        ax.legend(fontsize=8, title="")
        ax.set_title("ConvNets vs vision transformers, as reported (MedIA 2025)", fontsize=10)
        fig.tight_layout()
        return fig

    def paper_claims(self) -> list[dict]:
        rows = []
        for _, r in self.reported().iterrows():
            a, b = r["comparison"].split(" minus ")
            rows.append({"section": self.key, "flag": papers.UNDETERMINABLE,
                         "claim": f"{r['task']} ({int(r['labelled_images'])} images): {a} transfers better than {b}",
                         "evidence": f"gain {r['mean']:+g} points as printed; no std, runs or test printed"})
        return rows


SECTION = Architectures(
    paper="MedIA 2025",
    key="architectures", number=4, notebook="04_architectures.ipynb", prefix="arch",
    title="ConvNets vs vision transformers",
    question="Do ConvNets transfer better to medical tasks than vision transformers of the same size?",
    claim="ConvNets transfer better than vision transformers: ImageNet-pre-trained ConvNeXt is ahead of Swin "
          "of the same size on every task, most of all on the small target sets (clavicle, tuberculosis).",
    tasks=("syn_lxs", "syn_txc"),
    inits=("scratch", "synth_imagenet"),
    archs=("test_resnet", "mini_convnext", "mini_swin", "mini_vit"), compare="arch",
    baseline="test_resnet/synth_imagenet", candidate="mini_convnext/synth_imagenet",
    rival="mini_swin/synth_imagenet", row_title="Architecture · initialisation",
    paper_tasks=(("syn_lxs", "CXS"), ("syn_txc", "TXC")))
