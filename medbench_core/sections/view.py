"""The view a section plug-in reads of one grid's stored runs: ``Results``, with its summary statistics, flagged
runs, verdict and the stability of that verdict. ``Results(grid, df)`` is the grid's section's own kind
(``Section.results_type``): what a plug-in computes once per grid is a typed cached property of its subclass."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from ..flags import flag_dependence, flag_runs
from ..models import get_arch
from ..scores import MAIN_METRICS, is_synthetic, summarize
from ..tasks import get_task_spec
from ..verdicts import INCONCLUSIVE, Verdict, measure_stability
from .base import Section


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
