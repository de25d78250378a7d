"""A section page: what a section notebook calls, one call per cell, the same calls in every section notebook.

    page = section_page("granularity", profile=profile, ...)   # validate every name, before any work
    page.describe()       # what runs here, from the profile and the grid
    run_summary = page.run()
    page.provenance(); page.pretraining(); page.table(); page.details()
    page.paper_table(); page.reproduced(); page.figure(); page.verdict(); page.glue_headlines()
"""
from __future__ import annotations

import html

from ..figures import display_figure, glue
from ..flags import flags_note
from ..models import get_arch
from ..paths import default_results_dir
from ..pretrain import get_init
from ..profiles import get_profile
from ..request import GridRequest
from ..results import ResultsStore
from ..run_tables import pretraining_table, provenance, runs_table
from ..scores import is_synthetic
from ..tables import Table
from ..tasks import get_task_spec
from ..verdicts import Verdict
from .base import Results
from .grid import Grid, load_grid_results



def _show(*objs) -> None:
    """Display tables and figures in order (figures once, then closed)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    for o in objs:
        if isinstance(o, plt.Figure):
            display_figure(o)  # a PNG that records its text size (the browser test checks it is readable)
        else:
            display(o)


class SectionPage:
    """One section on one profile: its validated grid, its runs and every view its notebook shows."""

    def __init__(self, grid: Grid, *, results_dir, cache_dir=None, progress: bool | None = None,
                 ran_with: dict | None = None, kept: str = ""):
        self.grid, self.section = grid, grid.section
        self.ran_with = ran_with or {"profile": grid.profile}
        self.results_dir, self.cache_dir, self.progress = str(results_dir), cache_dir, progress
        self._results: Results | None = None
        self.kept = kept  # where the runs are kept, when a disconnect could lose them (``storage.keep_on_drive``)

    # -- before the runs --

    def describe(self):
        """What runs on this page, said from the profile and the grid (never typed for one profile)."""
        from IPython.display import HTML

        g, prof = self.grid, get_profile(self.grid.profile)
        stored = sum(ResultsStore(self.results_dir).has(h) for h in g.hashes)
        tasks = ", ".join(get_task_spec(t).display_name for t in g.tasks)
        archs = ", ".join(get_arch(a).label or a for a in g.archs)
        inits = ", ".join(get_init(i).label for i in g.inits)
        size = sorted({c.image_size for c in g.configs})
        epochs = sorted({c.max_epochs for c in g.configs})
        setup = (f"{len(g.configs)} runs ({len(g.tasks)} tasks × {len(g.groups)} models × {len(g.fractions)} "
                 f"training fractions × {len(g.seeds)} seeds), {stored} already stored; images of "
                 f"{'/'.join(map(str, size))} px, at most {'/'.join(map(str, epochs))} epochs.")
        if is_synthetic(g.tasks):
            kind, title = "warning", "What runs here: SYNTHETIC data"
            body = (f"On the <code>{g.profile}</code> profile this page trains on <b>synthetic, procedurally "
                    f"generated images</b>, not medical data ({html.escape(tasks)}), with {html.escape(archs)} "
                    f"initialised as {html.escape(inits)}. It reproduces the <i>design</i> of the experiment, so "
                    "the direction of an effect can be compared with the paper, never its size. The "
                    "<code>colab</code> and <code>paper</code> profiles run the same cells on the papers' "
                    "datasets and released weights.")
        else:
            kind, title = "note", "What runs here"
            body = (f"On the <code>{g.profile}</code> profile ({html.escape(prof.description)}) this page trains "
                    f"on the real datasets {html.escape(tasks)}, with {html.escape(archs)} initialised as "
                    f"{html.escape(inits)} (released weights, audited on load).")
        ran = ", ".join(f"{k}={v!r}" for k, v in self.ran_with.items())
        return HTML(f'<div class="admonition {kind}"><p class="admonition-title">{title}</p><p>{body}</p>'
                    f"<p>{html.escape(setup)}</p>"
                    + (f"<p><b>{html.escape(self.kept)}</b></p>" if self.kept else "")
                    + f"<p><small>Ran with {html.escape(ran)} (the notebook's "
                    "parameters that differ from its defaults; the folders of its results store and caches are "
                    "those of the machine that ran it and are not shown).</small></p></div>")

    def run(self) -> dict:
        """Train every run of the grid the store lacks (stored runs are read, never trained again)."""
        from ..experiments import run_grid

        return run_grid(self.grid, self.results_dir, cache_dir=self.cache_dir, progress=self.progress)

    # -- the runs --

    @property
    def results(self) -> Results:
        if self._results is None:
            self._results = Results(self.grid, load_grid_results(self.grid, self.results_dir),
                                    results_dir=self.results_dir, cache_dir=self.cache_dir)
        return self._results

    def provenance(self):
        return provenance(self.results.df)

    def pretraining(self):
        return pretraining_table(self.grid, cache_dir=self.cache_dir)

    def table(self):
        """The section's table in the paper's layout; runs that went wrong are named under it (``flag_runs``)."""
        t = self.section.table(self.results)
        note = flags_note(self.results.flags)
        return Table(t.text, t.html + note) if note else t

    def details(self) -> None:
        """Every run, seed by seed (flagged runs marked), then the section's further tables and figures."""
        res = self.results
        _show(runs_table(res.df, self.grid.groups, self.grid.tasks, res.flags), *self.section.details(res))

    def figure(self) -> None:
        _show(self.section.figure(self.results))

    def verdict(self) -> Verdict:
        return self.results.verdict

    def headlines(self) -> dict:
        return self.section.headlines(self.results)

    def glue_headlines(self) -> None:
        """Record the headline numbers with myst-nb glue (the prose reads them; ``headlines`` returns them)."""
        glue(self.headlines())

    # -- the papers' side and the two side by side --

    def paper_table(self):
        return self.section.paper_table()

    def reproduced(self):
        """Ours next to the papers': on a grid of the papers' own cells (``paper``), every printed cell with a
        consistency test; elsewhere, the directions of the effects the claim is about."""
        if self.section.cells:
            return self.section.reproduction(self.results)
        return self.section.directions(self.results)


def section_page(section: str, *, results_dir=None, cache_dir=None, progress: bool | None = None,
                 drive: bool = False, models=None, **request) -> SectionPage:
    """Validate every parameter of a section notebook (``request``: the fields of a ``GridRequest``, ``None``
    for the section's; unknown names raise with the valid ones, before any work) and return its page.
    ``results_dir`` defaults to ``results/`` of the checkout (``paths.default_results_dir``); ``profile="auto"``
    picks the profile registered for this machine (``Profile.auto_on``). ``drive``: on Colab, keep the store and
    the caches on Google Drive (``storage.keep_on_drive``). ``models``: your checkpoints to add first, as
    ``[(name, arch, file), ...]`` (``medbench models add``), then usable in ``inits``."""
    from ..storage import keep_on_drive

    results_dir, cache_dir, kept = keep_on_drive(drive, results_dir, cache_dir)
    if models:
        from ..user_models import add_model

        for name, arch, file in models:
            add_model(name, arch, file, cache_dir=cache_dir)
    req = GridRequest(section, **{k: v for k, v in request.items() if v is not None})  # a misspelt keyword raises
    grid = Grid.of(req)
    results_dir = results_dir or str(default_results_dir())
    ran_with = req.given() | {"profile": grid.profile}
    return SectionPage(grid, results_dir=results_dir, cache_dir=cache_dir, progress=progress, ran_with=ran_with,
                       kept=kept)


class PaperPage:
    """The papers' own numbers of one section (the 'What the papers report' pages)."""

    def __init__(self, section: str):
        from .registry import get_section

        self.section = get_section(section)

    def table(self):
        return self.section.paper_table()

    def figure(self) -> None:
        _show(self.section.paper_plot())

    def claims(self):
        return self.section.paper_claims_table()

    def details(self) -> None:
        _show(*self.section.paper_details())
