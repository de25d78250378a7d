"""Section 3: domain-adaptive (continual) pre-training, ImageNet → a large annotated chest X-ray set."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .. import papers
from ..pretrain import get_init
from ..scores import group_label, is_synthetic
from ..stats import holm, is_significant
from ..tables import Table, frame_table, grid_html, mean_std
from ..tasks import get_task_spec
from ..verdicts import Verdict, holm_words, outcome
from .base import Results, Section



def compare_with_reported(stats: pd.DataFrame, section: str, *, baseline: str) -> Table:
    """Our runs next to the paper's numbers, through each task's ``analog_of`` and each init's ``paper_analog``.

    On real data (the tasks read the papers' datasets): our mean ± std, theirs, the difference, and whether ours falls
    inside the reported spread (their mean ± std). On synthetic data (generated tasks) the scales differ, so it
    compares the direction of each effect against ``baseline``: who wins, ours and theirs, with our mark and whether
    the paper's difference is significant (re-derived from mean ± std under every assumption, see ``papers``).
    """
    rep = papers.load_reported(section).dropna(subset=["mean"]).set_index(["task", "init"])
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
                sig = [is_significant(p) for p in papers.rederive_pair(section, ptask, pinit, pbase).values()]
                same = np.sign(r["diff_vs_baseline"]) == np.sign(theirs - tb)
                row.update({"paper (points)": f"{theirs - tb:+.2f}",
                            "paper significant": "yes" if all(sig) else "no" if not any(sig) else "depends",
                            "same direction": "yes" if same else "no"})
            rows.append(row)
        else:
            row = {"ours": ours, "paper": f"{ptask} / {pinit}", "ours (mean ± std)": mean_std(r["mean"], r["std"])}
            if theirs is None:
                row.update({"paper (mean ± std)": "not reported", "difference": "–", "inside reported spread": "–"})
            else:
                tstd = rep["std"].get((ptask, pinit))
                diff = r["mean"] - theirs
                row.update({"paper (mean ± std)": mean_std(theirs, tstd), "difference": f"{diff:+.2f}",
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
    return frame_table(text, cap)


class DomainAdaptation(Section):
    def rule(self, res: Results) -> Verdict:
        """Is the candidate best (or equivalent to the best) and ahead of the baseline?

        The comparisons with the baseline (one per task) are Holm-adjusted together (``stats.holm``). "Equivalent
        to the best" is a failure to find a difference, so it keeps the per-task test: a correction would only make
        it easier to claim. agrees: on every task the candidate is best or not significantly different from the
        best, it is never significantly worse than the baseline, and it is significantly better than the baseline
        on at least one task. does not agree: it is significantly worse than the baseline on some task, or neither
        best nor equivalent on most tasks. inconclusive: anything in between (for example, no difference is
        significant).
        """
        s = res.at_full()
        cand, base = group_label(self.candidate), group_label(self.baseline)
        top, worse, better, reasons = 0, 0, 0, []
        tasks = [t for t in res.grid.tasks if (self.candidate, t) in s.index]
        adjusted = dict(zip(tasks, holm([s.loc[(self.candidate, t), "p_vs_baseline"] for t in tasks])))
        for t in res.grid.tasks:
            if t not in tasks:  # the papers' n/a cells: pre-trained on the target task's own data
                reasons.append(f"{get_task_spec(t).display_name}: {cand} not run (pre-training and target are the "
                               "same data)")
                continue
            r = s.loc[(self.candidate, t)]
            top += bool(r["is_best"] or r["equivalent_to_best"])
            d, p = r["diff_vs_baseline"], r["p_vs_baseline"]
            worse += is_significant(adjusted[t]) and d < 0
            better += is_significant(adjusted[t]) and d > 0
            standing = "best" if r["is_best"] else ("equivalent to the best" if r["equivalent_to_best"]
                                                    else "significantly below the best")
            reasons.append(f"{get_task_spec(t).display_name}: {cand} is {standing}; {d:+.2f} points vs {base} "
                           f"(p = {p:.3g}, {holm_words(adjusted[t], len(tasks))})")
        n = len(tasks)
        reasons.append(f"{cand} is best or equivalent on {top} of {n} tasks, significantly (Holm) better than "
                       f"{base} on {better} and significantly worse on {worse}")
        return Verdict(outcome(agrees=top == n and worse == 0 and better >= 1, disagrees=worse > 0 or top < n / 2),
                       reasons)

    def directions(self, res: Results) -> Table:
        return compare_with_reported(res.summary, self.key, baseline=self.baseline)

    def section_headlines(self, res: Results) -> dict:
        cand = res.at_full().xs(self.candidate, level="group")
        gain = cand["diff_vs_baseline"]
        top = gain.idxmax()
        return {"top_tasks": f"{int((cand['is_best'] | cand['equivalent_to_best']).sum())} of {len(cand)}",
                "best_gain_task": get_task_spec(top).display_name, "best_gain": f"{gain.max():+.2f}",
                "best_gain_p": f"{cand.loc[top, 'p_vs_baseline']:.2g}",
                **{f"paper_{k}": v for k, v in self.paper_gains().items()}}

    # -- the papers' side --

    def paper_gains(self, baseline: str = "ImageNet") -> dict:
        """From the reported table: the tasks where the best domain-adapted init (``A→B``) gains most and least
        over ``baseline``."""
        rep = self.reported().dropna(subset=["mean"])
        gains = {}
        for task, g in rep.groupby("task", sort=False):
            base = g.loc[g["init"] == baseline, "mean"]
            adapted = g.loc[g["init"].str.contains("→"), "mean"]
            if len(base) and len(adapted):
                gains[task] = adapted.max() - base.iloc[0]
        top, low = max(gains, key=gains.get), min(gains, key=gains.get)
        return {"top_task": top, "top_gain": f"{gains[top]:+.2f}", "low_task": low, "low_gain": f"{gains[low]:+.2f}"}

    def paper_table(self) -> Table:
        rep = self.reported()
        status = papers.rederive_vs_best(self.key).set_index(["task", "init"])["status"]
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
        cap = ("As reported in DART 2021 (Result III table), ResNet-50, mean ± std over runs, in percent. Bold: "
               "best, as printed. Highlighted: not significantly different from the best, <i>re-derived here</i> "
               "from mean ± std for every assumption of 3, 5 or 10 runs and a population or sample std; hatched: "
               "equivalent under some of these assumptions only. n/a: pre-training and target are the same data.")
        return Table(text, grid_html(cells, cap, classes=classes, bold=bold, corner="Initialisation"))

    def paper_plot(self):
        rep = self.reported().dropna(subset=["mean"])
        tasks = list(dict.fromkeys(rep["task"]))
        inits = list(dict.fromkeys(self.reported()["init"]))
        palette = dict(zip(inits, sns.color_palette("colorblind", len(inits))))
        ncols = 2
        nrows = -(-len(tasks) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.5 * ncols, 3.4 * nrows), dpi=130, squeeze=False)
        for ax in axes.flat[len(tasks):]:
            ax.set_visible(False)
        for ax, t in zip(axes.flat, tasks):
            g = rep[rep["task"] == t].set_index("init").reindex([i for i in inits if i in set(rep[rep.task == t].init)])
            ax.bar(range(len(g)), g["mean"], yerr=g["std"], color=[palette[i] for i in g.index], capsize=2)
            lo = (g["mean"] - g["std"]).min()
            ax.set_ylim(lo - 0.3 * (g["mean"].max() - lo + 0.1), (g["mean"] + g["std"]).max() + 0.1)
            ax.set_xticks(range(len(g)), g.index, rotation=45, ha="right", fontsize=9)
            ax.set_title(t, fontsize=10)
        for row in axes:
            row[0].set_ylabel("AUC or Dice (%), mean ± std")
        fig.suptitle("Domain-adaptive pre-training, as reported (DART 2021, ResNet-50)", fontsize=11)
        fig.tight_layout()
        return fig

    def paper_claims(self) -> list[dict]:
        rows, rep = [], self.reported()
        adapted = [i for i in rep["init"].unique() if "→" in i]
        n_assumptions = len(papers.ASSUMED_RUNS) * len(papers.STD_KINDS)
        for task, g in rep.dropna(subset=["mean"]).groupby("task", sort=False):
            best_da = g[g["init"].isin(adapted)].sort_values("mean").iloc[-1]["init"]
            best = g.loc[g["mean"].idxmax(), "init"]
            if best in adapted:
                flag, ev = papers.SUPPORTED, f"{best} has the highest mean"
            else:
                ps = list(papers.rederive_pair(self.key, task, best_da, best).values())
                flag = papers.flag(ps, want_significant=False)
                ev = f"{best} is best; {best_da} vs {best}: {papers.p_range(ps)} over {n_assumptions} assumptions"
            rows.append({"section": self.key, "flag": flag, "evidence": ev,
                         "claim": f"{task}: a domain-adapted model is the best or equivalent to the best"})
            ps = list(papers.rederive_pair(self.key, task, best_da, "ImageNet").values())
            diff = g.set_index("init").loc[best_da, "mean"] - g.set_index("init").loc["ImageNet", "mean"]
            flag = papers.flag(ps, want_significant=True) if diff > 0 else papers.NOT_SUPPORTED
            rows.append({"section": self.key, "flag": flag,
                         "claim": f"{task}: domain-adapted pre-training beats ImageNet pre-training",
                         "evidence": f"{best_da} {diff:+.2f} points vs ImageNet; {papers.p_range(ps)} over "
                                     f"{n_assumptions} assumptions (n = 3, 5, 10 runs; population or sample std)"})
        return rows

    def paper_details(self) -> list:
        return [papers.rederive_table(self.key)]


SECTION = DomainAdaptation(
    key="domain-adaptation", number=3, notebook="03_domain_adaptation.ipynb", prefix="da",
    title="Domain-adaptive (continual) pre-training",
    question="Does continually pre-training an ImageNet model on medical images close the domain gap?",
    claim="Continual pre-training (ImageNet → a large annotated chest X-ray set) bridges the domain gap between "
          "natural and medical images: the domain-adapted models are the best, or equivalent to the best, on "
          "the target tasks, ahead of both ImageNet and in-domain pre-training alone.",
    tasks=("syn_dxc", "syn_txc", "syn_pxs"),
    inits=("scratch", "synth_imagenet", "synth_chest", "synth_imagenet_chest"),
    baseline="synth_imagenet", candidate="synth_imagenet_chest")
