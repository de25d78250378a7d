"""What every section plug-in shares: the ``Section`` record (its question, claim and default grid, and what it
becomes on the profiles that run the papers' own data, models and weights) and its default table, figure and
headlines; and ``Results``, the view of one grid's stored runs a plug-in reads (``Results(grid, df)`` is the
section's own kind, ``Section.results_type``: what a plug-in computes once per grid is a typed cached property of
its subclass). A plug-in module subclasses ``Section`` with what is particular to its
section: its verdict rule, its comparisons, its headline numbers and the papers' side of its question.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from .. import papers
from ..figures import plot_scores
from ..flags import flag_dependence, flag_runs
from ..models import get_arch
from ..profiles import PAPERS, get_profile
from ..run_tables import scores_table
from ..scores import MAIN_METRICS, is_synthetic, summarize
from ..tables import Table, frame_table
from ..tasks import CLASSIFICATION, PAPER_SEG_V2, get_task_spec
from ..verdicts import INCONCLUSIVE, Verdict, measure_stability

KIND_WORDS = {CLASSIFICATION: "classification", "binary_segmentation": "segmentation"}


@dataclass(frozen=True)
class Section:
    """A section of the paper as a notebook with a default grid: tasks x archs x inits x fractions x seeds.

    ``compare`` says what the rows of its table are: ``init`` (one architecture, initialisations compared) or
    ``arch`` (architecture x initialisation, rows keyed ``"arch/init"``). ``baseline`` and ``candidate`` are row
    keys (``candidate`` may be ``"ssl"``: every self-supervised init); the significance marks compare every row with
    ``baseline``; the claim is about ``candidate`` (and ``rival``, the row it is compared with pairwise).
    ``claim_kinds`` are the kinds of task the claim speaks of: a verdict from a grid without some of them says so.
    """

    key: str
    number: int
    notebook: str  # file name in notebooks/
    title: str
    question: str
    claim: str
    tasks: tuple[str, ...]
    inits: tuple[str, ...]
    baseline: str
    candidate: str
    prefix: str  # of the headline names its notebook glues (``gr_verdict``)
    rival: str = ""
    arch: str = "test_resnet"
    archs: tuple[str, ...] = ()  # several architectures (compare="arch"); empty: just ``arch``
    fractions: tuple[float, ...] = (1.0,)  # shares of the training split
    compare: str = "init"  # init | arch
    paper_tasks: tuple[tuple[str, str], ...] = ()  # (our task, the paper's task) where not the task's analog_of
    claim_kinds: tuple[str, ...] = (CLASSIFICATION, "binary_segmentation")
    row_title: str = "Initialisation"
    # (task, arch, init, fraction) of every run the grid holds when it is not the full product of the lists above:
    # on ``paper``, the papers' own experiments (``cells.paper_cells``); empty: the product
    cells: tuple[tuple[str, str, str, float], ...] = ()
    paper: str = "DART 2021"  # whose protocol the section's runs follow on ``paper``
    # the kind of ``Results`` its runs are read as (a plug-in's subclass holds what it computes once per grid)
    results_type: ClassVar[type | None] = None

    @property
    def all_archs(self) -> tuple[str, ...]:
        return self.archs or (self.arch,)

    def for_profile(self, profile: str) -> "Section":
        """The section as it runs on ``profile``, by what the profile runs on (``Profile.runs_on``). On the papers'
        experiments the grid is the papers' own, read from the reported registry (``cells.paper_cells``): every
        task, model and training fraction a printed number or mark speaks of, and nothing else. On MedMNIST+ each
        generated task, miniature architecture and synthetic initialisation is replaced by a real one (MedMNIST+,
        classification only; the tiny variants; released weights). A profile without manual downloads
        (``Profile.manual_downloads``) leaves out extra candidates whose weights need one (never the baseline or the
        compared models). On generated data the section is as it is.
        """
        from .stand_ins import REAL_TASKS, papers_grid, real_stand_ins

        prof = get_profile(profile)
        if prof.runs_on == PAPERS:
            return papers_grid(self)
        if prof.runs_on not in REAL_TASKS:
            return self
        return real_stand_ins(self, prof.runs_on, manual_downloads=prof.manual_downloads)

    def protocol_for(self, task: str, profile: str) -> dict:
        """Protocol fields this section sets for ``task`` on ``profile``: where the profile follows the original
        code (``Profile.light`` false), the MedIA 2025 sections segment with that paper's protocol (Version 2: AdamW,
        warm-up then cosine, 500 epochs, patience 50)."""
        if (not get_profile(profile).light and self.paper == "MedIA 2025"
                and get_task_spec(task).kind != CLASSIFICATION):
            return dict(PAPER_SEG_V2)
        return {}

    # -- our runs: a plug-in overrides what its section does differently ---------------------------------------

    def table(self, res: "Results") -> Table:
        """Our results in the papers' layout."""
        return scores_table(res.summary, res.grid.groups, res.grid.tasks, baseline=self.baseline,
                            caption=res.caption(), row_title=self.row_title)

    def details(self, res: "Results") -> list:
        """Further tables and figures the section's question needs (a list of displayable objects)."""
        return []

    def figure(self, res: "Results"):
        """The figure the section page and the summary show for the claim."""
        return plot_scores(res.df, res.grid.groups, res.grid.tasks, title=self.title, synthetic=res.synthetic)

    def rule(self, res: "Results") -> Verdict:
        """The section's rule: its answer to the claim from its runs (``agrees`` / ``does not agree`` /
        ``inconclusive`` with the reasons). ``Results.verdict`` is that answer once its stability is measured."""
        raise NotImplementedError

    def judge(self, res: "Results") -> Verdict:
        """``rule``, with its scope stated when the grid holds only some of the kinds of task the claim is about
        (e.g. MedMNIST+ has classification only)."""
        v = self.rule(res)
        kinds = {get_task_spec(t).kind for t in res.grid.tasks}
        missing = [k for k in self.claim_kinds if k not in kinds]
        if missing:
            have = ", ".join(KIND_WORDS.get(k, k) for k in self.claim_kinds if k in kinds) or "no"
            lack = ", ".join(KIND_WORDS.get(k, k) for k in missing)
            v.scope = (f"Drawn from the {have} tasks only: the claim is also about {lack}, which this grid (profile "
                       f"{res.grid.profile}) does not run; that part of the claim is untested here.")
        return v

    def directions(self, res: "Results") -> Table:
        """The directions of the effects the claim is about, ours next to the papers', for every reported cell our
        grid has a counterpart of (a grid of stand-ins; a grid of the papers' own cells has ``reproduction``)."""
        raise NotImplementedError

    def reproduction(self, res: "Results") -> Table:
        """Every cell the papers print next to ours, with whether ours is consistent (``reproduction``)."""
        from .reproduction import reproduction_table

        return reproduction_table(self.key, res.df, res.grid.profile)

    def reproduction_counts(self, res: "Results") -> dict | None:
        """How many printed cells our runs are consistent with, of those tested (``reproduction.counts``), on a grid
        of the papers' cells; None elsewhere."""
        if not self.cells:
            return None
        from .reproduction import counts, reproduction

        return counts(reproduction(self.key, res.df))

    def headlines(self, res: "Results") -> dict:
        """The numbers the page's prose reads (myst-nb glue), named ``<prefix>_<name>``."""
        v = res.verdict
        common = {"verdict": v.outcome, "stability": v.stability.short() if v.stability else "not measured",
                  "profile": res.grid.profile, "runs": len(res.grid.configs),
                  "seeds": len(res.grid.seeds), "scope": v.scope or "all the kinds of task the claim is about",
                  "reproduced": reproduction_words(self.reproduction_counts(res))}
        return {f"{self.prefix}_{k}": val for k, val in (common | self.section_headlines(res)).items()}

    def section_headlines(self, res: "Results") -> dict:
        return {}

    # -- the papers' side, from the reported registry ----------------------------------------------------------

    def reported(self) -> pd.DataFrame:
        return papers.load_reported(self.key)

    def paper_table(self) -> Table:
        raise NotImplementedError

    def paper_plot(self):
        raise NotImplementedError

    def paper_claims(self) -> list[dict]:
        """The papers' claims of this section, each flagged by the papers' own numbers (``papers.FLAGS``)."""
        raise NotImplementedError

    def paper_details(self) -> list:
        """Further views of the papers' numbers (e.g. re-derived tests); none by default."""
        return []

    def paper_claims_table(self) -> Table:
        return papers.claims_table(self.paper_claims())


class Results:
    """A section's stored runs on one grid (from ``load_grid_results``), with the views plug-ins read."""

    def __new__(cls, grid, *args, **kwargs):
        if cls is Results:  # the section's own kind of results, with the values its plug-in computes once
            cls = type(grid.section).results_type or Results
        return super().__new__(cls)

    def __init__(self, grid, df: pd.DataFrame, *, results_dir=None, cache_dir=None):
        self.grid, self.df = grid, df
        self.results_dir, self.cache_dir = results_dir, cache_dir

    @property
    def section(self) -> Section:
        return self.grid.section

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.grid.tasks)

    @cached_property
    def flags(self) -> pd.DataFrame:
        """The runs that went wrong (``flag_runs``: a constant prediction or a score far outside its group)."""
        from ..results import ResultsStore

        store = ResultsStore(self.results_dir) if self.results_dir and Path(self.results_dir).is_dir() else None
        return flag_runs(self.df, store) if len(self.df) else flag_runs(self.df)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Per (task, fraction, group) statistics (``summarize``) and ``flagged``, its flagged runs."""
        s = summarize(self.df, baseline=self.section.baseline)
        counts = self.flags.groupby(["task", "fraction", "group"]).size()
        s["flagged"] = [int(counts.get((t, f, g), 0)) for t, f, g in zip(s["task"], s["fraction"], s["group"])]
        return s

    def judged_on(self, df: pd.DataFrame) -> str:
        """The outcome of the section's rule on some of the runs (a subset of seeds, the runs not flagged)."""
        return self.section.judge(Results(self.grid, df, results_dir=None, cache_dir=self.cache_dir)).outcome

    @cached_property
    def verdict(self) -> Verdict:
        """The section's verdict, with its stability over draws of seeds (``measure_stability``): a verdict
        that is not stable (a disjoint half of the seeds, or more than one in twenty subsets of half the seeds, does
        not give it) is not claimed: it becomes inconclusive, and says why. With flagged runs, a last reason says whether it holds without them."""
        v = self.section.judge(self)
        stability = measure_stability(self.judged_on, self.df, v.outcome)
        word, reasons = v.outcome, list(v.reasons)
        if stability.measurable and not stability.stable and word != INCONCLUSIVE:
            word = INCONCLUSIVE
            reasons.insert(0, f"the rule gives “{v.outcome}” on all {stability.n_seeds} seeds but it is not stable "
                              f"({stability.short()}): an answer that changes with the draw of seeds is not claimed")
        if len(self.flags):
            try:
                without = self.judged_on(self.df[~self.df["config_hash"].isin(self.flags["config_hash"])])
            except (ValueError, KeyError, IndexError, ZeroDivisionError):  # a group left with too few runs
                without = None
            reasons.append(flag_dependence(self.flags, v.outcome, without))
        return Verdict(word, reasons, v.scope, stability)

    def at_full(self) -> pd.DataFrame:
        """The summary at the full training set, indexed by (group, task)."""
        return self.summary[self.summary["fraction"] == 1.0].set_index(["group", "task"])

    @cached_property
    def undefined(self) -> pd.DataFrame:
        """The runs whose main test score is undefined (an AUC on a test split with one label value), one row each:
        left out of every mean and test, and counted in the captions."""
        d = self.df[(self.df["split"] == "test") & self.df["metric"].isin(MAIN_METRICS)]
        return d[pd.to_numeric(d["value"], errors="coerce").isna()].drop_duplicates("config_hash")

    def caption(self, task: str | None = None) -> str:
        what = get_task_spec(task).display_name if task else ", ".join(get_arch(a).label or a
                                                                        for a in self.grid.archs)
        n = int((self.undefined["task"] == task).sum()) if task else len(self.undefined)
        left_out = (f" {n} run{'s' if n > 1 else ''} left out: {'their' if n > 1 else 'its'} test score is undefined "
                    "(one label value in the test split)." if n else "")
        return (f"medbench, {what}, profile {self.grid.profile}, {len(self.grid.seeds)} seeds per cell"
                + (", SYNTHETIC data." if self.synthetic else ".") + left_out)


def directions_table(rows: list[dict], *, synthetic: bool, what: str = "The effects the claim is about") -> Table:
    """Rows comparing our effects with the paper's (a column starting ``same direction`` or ``both``), with a
    caption that counts the agreements among the rows the paper reports."""
    text = pd.DataFrame(rows)
    key = [c for c in text.columns if c.startswith("same direction") or c.startswith("both")]
    known = text[text[key[0]] != "–"] if key and len(text) else text
    agree = int((known[key[0]] == "yes").sum()) if key and len(text) else 0
    cap = (f"{what}, ours (synthetic data; marks from our t-tests) and the paper's. {agree} of {len(known)} agree. "
           "Sizes are not comparable on synthetic data; directions are." if synthetic else
           f"{what}, ours and the paper's; {agree} of {len(known)} agree.")
    return frame_table(text, cap)


def reproduction_words(n: dict | None) -> str:
    """"N of M" printed cells reproduced, from ``reproduction.counts`` (None: not a grid of the papers' cells)."""
    return f"{n['consistent']} of {n['tested']}" if n else "– (the papers' cells run on the paper profile)"


def same_sign(a: float, b: float) -> str:
    return "yes" if np.sign(a) == np.sign(b) else "no"
