"""The overview page: for every section its status on a profile, read through the same plug-ins the section pages
use. A section is "ran" (with its verdict) when all its runs are stored and its notebook did not fail; "failed in
cell N" when its last execution failed; "not run" otherwise. Nothing here trains."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..figures import display_figure, glue
from ..paths import default_results_dir
from ..request import GridRequest
from ..results import ResultsStore
from ..scores import is_synthetic
from ..verdicts import PLAIN_WORDS, Verdict
from .base import Results, reproduction_words
from .grid import Grid, load_grid_results
from .registry import get_section, list_sections


RAN, FAILED, NOT_RUN = "ran", "failed", "not run"


@dataclass
class SectionStatus:
    key: str
    grid: Grid
    state: str  # RAN | FAILED | NOT_RUN
    detail: str  # what the page says besides the state
    results: Results | None = None

    @property
    def verdict(self) -> Verdict | None:
        return self.results.verdict if self.results is not None else None

    @property
    def label(self) -> str:
        """The status in words: the verdict (with its scope), the failed cell, or how many runs are stored."""
        if self.state == RAN:
            v = self.verdict
            return (v.outcome + (" (from part of the claim's tasks)" if v.scope else "")
                    + (f"; {v.stability.short()}" if v.stability else ""))
        return self.detail


def failed_cell(path: Path) -> int | None:
    """The number (1-based, among code cells) of the first cell with an error in an executed notebook."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for n, c in enumerate(code, 1):
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])):
            return n
    return None


def section_status(key: str, profile: str, results_dir, executed_dir=None, params: dict | None = None) -> SectionStatus:
    """The status of section ``key`` on ``profile`` (its grid shaped by the notebook ``params`` it ran with): from
    the store, and from the executed notebooks in ``executed_dir`` (``<notebook>`` and the ``<stem>.failed.ipynb``
    a failed execution leaves) when given."""
    grid = Grid.of(GridRequest.from_params(key, {**(params or {}), "profile": profile}))
    sec = grid.section
    if executed_dir is not None:
        ok = Path(executed_dir) / sec.notebook
        bad = Path(executed_dir) / f"{Path(sec.notebook).stem}.failed.ipynb"
        if bad.is_file() and (not ok.is_file() or bad.stat().st_mtime >= ok.stat().st_mtime):
            cell = failed_cell(bad)
            where = f"in cell {cell}" if cell else "before its first cell"
            return SectionStatus(key, grid, FAILED, f"ran and failed {where} (see the executed notebook "
                                                    f"{bad.name})")
    store = ResultsStore(results_dir)
    stored = sum(store.has(h) for h in grid.hashes)
    if stored < len(grid.hashes):
        return SectionStatus(key, grid, NOT_RUN, f"not run ({stored} of {len(grid.hashes)} runs stored)")
    res = Results(grid, load_grid_results(grid, results_dir), results_dir=str(results_dir))
    return SectionStatus(key, grid, RAN, "", res)


def statuses(profile: str, results_dir=None, executed_dir=None, section_parameters: dict | None = None
             ) -> list[SectionStatus]:
    """The status of every section, in the paper's order (``results_dir`` defaults to the checkout's)."""
    results_dir = results_dir or str(default_results_dir())
    return [section_status(k, profile, results_dir, executed_dir, (section_parameters or {}).get(k))
            for k in list_sections()]


def note(items: list[SectionStatus]):
    """A warning when the verdicts come from synthetic data (said from the grids' tasks, not the profile)."""
    from IPython.display import HTML

    if not any(is_synthetic(s.grid.tasks) for s in items):
        return HTML("")
    return HTML('<div class="admonition warning"><p class="admonition-title">Synthetic data</p><p>On the '
                f"<code>{html.escape(items[0].grid.profile)}</code> profile the verdicts below come from "
                "<b>synthetic</b> images and miniature networks; they say whether the <i>direction</i> of the papers' "
                "findings reappears in a miniature copy of their design, not whether the findings hold on medical "
                "data.</p></div>")


def summary_table(items: list[SectionStatus]):
    """One row per section: number, linked title, question, the papers' claim, the status, runs."""
    from IPython.display import HTML

    rows = []
    for s in items:
        sec = get_section(s.key)
        page = sec.notebook.replace(".ipynb", ".html")
        rows.append({"": sec.number, "section": f'<a href="{page}">{html.escape(sec.title)}</a>',
                     "question": html.escape(sec.question), "the paper's claim": html.escape(sec.claim),
                     "verdict": f"<b>{html.escape(s.label)}</b>", "runs": len(s.grid.configs)})
        if s.grid.section.cells:  # the papers' own cells: how many ours reproduce
            rows[-1]["printed cells reproduced"] = (
                reproduction_words(s.grid.section.reproduction_counts(s.results)) if s.state == RAN else "–")
    profile = items[0].grid.profile if items else ""
    synthetic = items and all(is_synthetic(s.grid.tasks) for s in items)
    caption = f"Verdicts on profile {profile}" + (" (SYNTHETIC data)" if synthetic else "")
    table = pd.DataFrame(rows).to_html(index=False, escape=False, border=0, classes="mb-table")
    return HTML(f"<p><i>{html.escape(caption)}</i></p>" + f'<div class="mb-scroll">{table}</div>')


def key_figures(items: list[SectionStatus]) -> None:
    """For each section: its question, the papers' answer, what the runs here say, and its key figure."""
    from IPython.display import Markdown, display

    for s in items:
        sec = get_section(s.key)
        page = sec.notebook.replace(".ipynb", ".html")
        if s.state == RAN:
            v = s.verdict
            said = (PLAIN_WORDS[v.outcome] + f" (verdict: **{v.outcome}**)" + (f". {v.scope}" if v.scope else "")
                    + (f". Stability: {v.stability.sentence()}" if v.stability else ""))
        else:
            said = s.detail
        display(Markdown(f"### {sec.number}. [{sec.title}]({page})\n\n**{sec.question}** The papers: {sec.claim} "
                         f"On the {s.grid.profile} profile, {said}."))
        if s.state == RAN:
            display_figure(sec.figure(s.results))


def reasons(items: list[SectionStatus]) -> None:
    """The reasons each verdict gives, in the section's own words; one line for the sections without one."""
    from IPython.display import Markdown, display

    for s in items:
        if s.state == RAN:
            display(Markdown(f"### {get_section(s.key).number}. {get_section(s.key).title}"))
            display(s.verdict)
    rest = [s for s in items if s.state != RAN]
    if rest:
        display(Markdown("Without a verdict: " + "; ".join(
            f"{get_section(s.key).title}: {s.detail} (`medbench run {s.key} --profile {s.grid.profile}`)"
            for s in rest) + "."))


def headlines(items: list[SectionStatus]) -> dict:
    counts = pd.Series([s.verdict.outcome if s.state == RAN else s.state for s in items]).value_counts()
    done = [s.grid.section.reproduction_counts(s.results) for s in items if s.state == RAN and s.grid.section.cells]
    total = {k: sum(n[k] for n in done) for k in ("consistent", "tested")} if done else None
    return {"summary_profile": items[0].grid.profile if items else "",
            "summary_reproduced": reproduction_words(total),
            "summary_counts": ", ".join(f"{n} {k}" for k, n in counts.items()),
            **{f"summary_{s.key.replace('-', '_')}": s.verdict.outcome if s.state == RAN else s.state
               for s in items}}


def glue_headlines(items: list[SectionStatus]) -> None:
    glue(headlines(items))
