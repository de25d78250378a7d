"""Where does your model rank? Your model (``medbench models add``) beside a section's initialisations, on the
section's tasks, under the profile's protocol: each init's mean ± std over its seeds, the section tables' t-tests
and marks (against the section's baseline, and each init against the best), the papers' reported number where the
init and the task have a counterpart in the papers, one verdict per task (better than / equivalent to / worse than
the best of the others), one line over the tasks, and a figure with your model highlighted.

"Better than the best" needs your model to be the best and significantly ahead of the runner-up after Holm's
adjustment over the tasks (``stats.holm``), as every verdict rule that scans several comparisons here; "equivalent"
is a failure to find a difference from the best (a per-task test: a correction would only make it easier to claim).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import BadValueError
from .profiles import DEFAULT
from .stats import holm, is_significant, significance_mark, ttest
from .tables import Table, grid_html, mean_std

BETTER, EQUIVALENT, WORSE = "better than the best", "equivalent to the best", "worse than the best"


@dataclass
class Ranking:
    name: str
    grid: object  # sections.Grid
    summary: pd.DataFrame  # ``scores.summarize`` of the grid's runs
    per_task: dict  # task -> (verdict word, reason)
    verdict: str  # one line over the tasks

    @property
    def table(self) -> Table:
        return ranking_table(self)


def default_section(arch: str | None = None) -> str:
    """The section that compares the most initialisations (a fact of the registry, not a name)."""
    from .sections import get_section, list_sections

    inits = {s: len(get_section(s).inits) for s in list_sections() if get_section(s).compare == "init"}
    return max(inits, key=inits.get)


def rank_grid(name: str, section: str | None = None, *, profile: str = DEFAULT, **request):
    """The grid that ranks your model ``name``: the section's grid on ``profile`` with ``name`` added to its
    initialisations, on your model's architecture."""
    from .pretrain import get_init
    from .request import GridRequest
    from .sections import Grid
    from .user_models import user_models

    models = user_models()
    if name not in models or get_init(name).family != "yours":
        raise BadValueError(f"{name!r} is not one of your models (medbench models list); add it with `medbench "
                            f"models add {name} --arch ARCH --file CHECKPOINT`")
    section = section or default_section()
    base = Grid.of(GridRequest(section, profile=profile, **request))
    if base.section.compare != "init":
        from .sections import get_section, list_sections

        fits = [s for s in list_sections() if get_section(s).compare == "init"]
        raise BadValueError(f"section {section!r} compares architectures; rank your model in a section that "
                            f"compares initialisations ({', '.join(fits)})")
    arch = models[name]["arch"]
    if arch not in base.archs:
        from .profiles import list_profiles

        fits = [p for p in list_profiles() if arch in Grid.of(GridRequest(section, profile=p)).archs]
        raise BadValueError(f"your model {name} is a {arch}; the {section} section trains {', '.join(base.archs)} on "
                            f"profile {base.profile}: add a checkpoint of that architecture, or rank it on "
                            f"{' or '.join(fits) if fits else 'a profile whose section trains ' + arch}")
    inits = [i for i in base.inits if i != name] + [name]
    return Grid.of(GridRequest(section, profile=profile, **{**request, "inits": inits, "arch": arch}))


def rank(name: str, section: str | None = None, *, profile: str = DEFAULT, results_dir=None, cache_dir=None,
         train: bool = False, **request) -> Ranking:
    """Rank your model ``name`` from the runs stored in ``results_dir`` (``train``: train the missing ones first;
    otherwise a missing run is refused, naming the command that trains it)."""
    from .paths import default_results_dir
    from .scores import summarize
    from .sections import load_grid_results

    grid = rank_grid(name, section, profile=profile, **request)
    results_dir = results_dir or default_results_dir()
    if train:
        from .experiments import run_grid

        run_grid(grid, results_dir, cache_dir=cache_dir)
    try:
        df = load_grid_results(grid, results_dir)
    except RuntimeError as e:
        raise BadValueError(f"{e}: train them by giving the same command with --train (stored runs are read, never "
                            "trained again)") from None
    summary = summarize(df, baseline=grid.section.baseline)
    summary = summary[summary["fraction"] == max(grid.fractions)]
    per_task = {t: _task_verdict(name, df, summary[summary["task"] == t]) for t in grid.tasks}
    return Ranking(name, grid, summary, per_task, _overall(name, per_task, df, summary))


def _scores(df: pd.DataFrame, task: str, init: str) -> list[float]:
    from .scores import main_scores

    s = main_scores(df)
    return s[(s["task"] == task) & (s["init"] == init) & (s["fraction"] == s["fraction"].max())]["score"].tolist()


def _task_verdict(name: str, df: pd.DataFrame, s: pd.DataFrame) -> tuple[str, str, float]:
    """(word, reason, p against the runner-up when ours is the best) on one task."""
    from .pretrain import get_init

    s = s.set_index("init")
    task = s["task"].iloc[0]
    others = s.drop(index=name)
    best_other = others["mean"].idxmax()
    diff = s.loc[name, "mean"] - others.loc[best_other, "mean"]
    p = ttest(_scores(df, task, name), _scores(df, task, best_other))
    other = get_init(best_other).label
    if s.loc[name, "is_best"]:
        return BETTER, f"{diff:+.2f} points ahead of {other} (p = {p:.3g})", p
    if s.loc[name, "equivalent_to_best"]:
        return EQUIVALENT, f"{diff:+.2f} points from {other}, not significantly different (p = {p:.3g})", p
    return WORSE, f"{diff:+.2f} points behind {other} (p = {p:.3g} {significance_mark(p)})", p


def _overall(name: str, per_task: dict, df, summary) -> str:
    """One line: better only where ahead of the runner-up after Holm's adjustment over the tasks."""
    ahead = {t: v[2] for t, v in per_task.items() if v[0] == BETTER}
    adjusted = dict(zip(ahead, holm(list(ahead.values())))) if ahead else {}
    words = {}
    for t, (word, reason, p) in per_task.items():
        if word == BETTER and not is_significant(adjusted[t]):
            word = EQUIVALENT  # the best here, but not significantly ahead once the tasks are counted
        per_task[t] = (word, reason + (f"; Holm-adjusted over {len(ahead)}: {adjusted[t]:.3g}" if t in adjusted
                                       else ""), p)
        words.setdefault(word, []).append(t)
    parts = [f"{w} on {len(ts)} of {len(per_task)} task{'s' if len(per_task) > 1 else ''} ({', '.join(ts)})"
             for w, ts in sorted(words.items(), key=lambda kv: [BETTER, EQUIVALENT, WORSE].index(kv[0]))]
    return f"{name}: " + "; ".join(parts)


def _reported(section: str, task: str, init: str) -> str:
    from . import papers
    from .pretrain import get_init
    from .tasks import get_task_spec

    rep = papers.load_reported(section)
    hit = rep[(rep["task"] == get_task_spec(task).analog_of) & (rep["init"] == get_init(init).paper_analog)
              & rep["mean"].notna()]
    if hit.empty:
        return "–"
    r = hit.iloc[0]
    return (mean_std(r["mean"], r["std"]) if pd.notna(r["std"]) else f"{r['mean']:.2f}") + f" ({r['source']})"


def ranking_table(r: Ranking) -> Table:
    """One row per init and task: ours, the marks, the papers' number; your model's row in bold."""
    from .pretrain import get_init
    from .tasks import get_task_spec

    rows, bold = [], []
    sec = r.grid.section
    for t in r.grid.tasks:
        s = r.summary[r.summary["task"] == t].sort_values("mean", ascending=False)
        for _, x in s.iterrows():
            rows.append({"task": get_task_spec(t).display_name, "init": get_init(x["init"]).label,
                         "ours (mean ± std)": mean_std(x["mean"], x["std"]), "runs": int(x["n"]),
                         f"vs {get_init(sec.baseline).label}": x.get("mark_vs_baseline", "") or "",
                         "best": "best" if x["is_best"] else "equivalent" if x["equivalent_to_best"] else "",
                         "paper (reported)": _reported(sec.key, t, x["init"]),
                         "verdict": r.per_task[t][0] + ": " + r.per_task[t][1] if x["init"] == r.name else ""})
            bold.append(x["init"] == r.name)
    text = pd.DataFrame(rows)
    cells = text.drop(columns=["task", "init"])
    cells.index = [f"{a} · {b}" for a, b in zip(text["task"], text["init"])]
    classes = pd.DataFrame([["mb-equiv" if b else ""] * len(cells.columns) for b in bold], index=cells.index,
                           columns=cells.columns)
    emphasis = pd.DataFrame([[b] * len(cells.columns) for b in bold], index=cells.index, columns=cells.columns)
    cap = (f"Your model {html.escape(r.name)} (highlighted) beside the {html.escape(sec.title.lower())} section's "
           f"initialisations, profile {r.grid.profile}, {len(r.grid.seeds)} seeds per cell; marks: t-tests against "
           f"{html.escape(get_init(sec.baseline).label)} (* p < 0.05, ** < 0.01, *** < 0.001); best: the highest "
           "mean, equivalent: not significantly different from it. " + html.escape(r.verdict))
    return Table(text, grid_html(cells, cap, classes=classes, bold=emphasis, corner="task · init"))


def ranking_figure(r: Ranking):
    """Every init's mean ± std per task, your model's bar highlighted."""
    import matplotlib.pyplot as plt

    from .pretrain import get_init
    from .tasks import get_task_spec

    tasks = list(r.grid.tasks)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        s = r.summary[r.summary["task"] == t].sort_values("mean")
        colours = ["#d95f02" if i == r.name else "#9ab" for i in s["init"]]
        ax.barh([get_init(i).label for i in s["init"]], s["mean"], xerr=s["std"].fillna(0), color=colours)
        lo = float((s["mean"] - s["std"].fillna(0)).min())
        ax.set_xlim(max(0.0, lo - 5), min(100.0, float((s["mean"] + s["std"].fillna(0)).max()) + 2))
        ax.set_title(get_task_spec(t).display_name, fontsize=10)
        ax.set_xlabel(get_task_spec(t).metric_label, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"Where {r.name} ranks ({r.grid.section.title}, profile {r.grid.profile})", fontsize=10)
    fig.tight_layout()
    return fig


def write_page(r: Ranking, path) -> Path:
    """The ranking as one HTML page (the table, the figure, the verdicts), written atomically to ``path``."""
    import base64
    import io

    import matplotlib.pyplot as plt

    from .paths import write_output_bytes

    fig = ranking_figure(r)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    tasks = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(w)} ({html.escape(why)})</li>"
                    for t, (w, why, _) in r.per_task.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Where {html.escape(r.name)} ranks</title>"
            f"</head><body><main><article class='bd-article'><h1>Where {html.escape(r.name)} ranks</h1>"
            f"<p><b>Verdict.</b> {html.escape(r.verdict)}</p><ul>{tasks}</ul>{r.table.html}"
            f"<img alt='every init per task, {html.escape(r.name)} highlighted' "
            f"src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"
            "<p><small>Computed from the stored runs by medbench (medbench rank); synthetic tasks are marked "
            "(synthetic) and are not medical data.</small></p></article></main></body></html>")
    return write_output_bytes(Path(path), page.encode("utf-8"))
