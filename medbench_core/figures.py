"""Figures of our runs (drawn from stored scores) and what a notebook records for the book: PNGs that carry their
smallest text size, and headline numbers glued for myst-nb."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .scores import group_label, main_scores
from .tasks import get_task_spec


FIGURE_DPI = 130


FONT_KEY = "medbench:min-font-px"  # PNG text chunk: the smallest text of a figure, in pixels of the PNG


def min_font_px(fig) -> float:
    """The smallest visible text of ``fig`` in pixels of its PNG at ``fig.dpi`` (the browser test scales it by
    how much the page shrinks the image, to check that every figure's text stays readable)."""
    import matplotlib.text as mtext

    fig.canvas.draw()  # tick labels exist once drawn
    sizes = [t.get_fontsize() for t in fig.findobj(mtext.Text) if t.get_visible() and t.get_text().strip()
             and t.get_window_extent().width > 0]
    return min(sizes) * fig.dpi / 72 if sizes else float("nan")


def display_figure(fig) -> None:
    """Show ``fig`` as a PNG that records its smallest text size (``FONT_KEY``), then close it."""
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight",
                metadata={FONT_KEY: f"{min_font_px(fig):.2f}"})
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


def _panels(n_panels: int, n_groups: int) -> tuple[int, int, float]:
    """(rows, columns, panel width in inches) so that a figure is read at the text width (about 7 inches): two
    panels a row with a few bars each, one a row when a panel has many bars."""
    ncols = 1 if n_groups > 4 else min(2, n_panels)
    width = 3.4 if n_groups <= 4 else min(0.42 * n_groups + 1.4, 7.4)
    return -(-n_panels // ncols), ncols, width


class _seeded_jitter:
    """Context: seaborn jitters strip-plot points with numpy's global generator; seed it for the plot and give the
    caller's state back after."""

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(0)

    def __exit__(self, *exc):
        np.random.set_state(self.state)
        return False


def plot_scores(df: pd.DataFrame, groups, tasks, *, title: str, synthetic: bool = True):
    """Bars (mean ± sample std over seeds) per group, one panel per task, with each seed as a dot."""
    scores = main_scores(df)
    scores = scores[scores["fraction"] == 1.0]
    scores["Model"] = scores["group"].map(group_label)
    order = [group_label(g) for g in groups]
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    nrows, ncols, width = _panels(len(tasks), len(order))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.6 * nrows), dpi=FIGURE_DPI, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    palette = sns.color_palette("colorblind", len(order))
    for ax, task in zip(axes.flat, tasks):
        d = scores[scores["task"] == task]
        sns.barplot(data=d, x="Model", y="score", hue="Model", order=order, hue_order=order,
                    errorbar="sd", palette=palette, ax=ax, legend=False, alpha=0.85)
        with _seeded_jitter():  # the same points on every build of the page
            sns.stripplot(data=d, x="Model", y="score", order=order, color="black", size=3.5, ax=ax)
        spec = get_task_spec(task)
        lo = d["score"].min() if len(d) else 0
        ax.set_ylim(max(0, lo - 0.15 * (d["score"].max() - lo + 1) - 2), None)
        ax.set_title(spec.display_name.replace(" (synthetic)", "\n(synthetic)"), fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel(spec.metric_label)
        ax.tick_params(axis="x", rotation=35, labelsize=9)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
    fig.suptitle(title + ("\n(SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    return fig


GLUE_PREFIX = "application/papermill.record/"  # myst-nb's (and scrapbook's) mime prefix of a glued value


def glue(values: dict) -> None:
    """Record headline numbers for myst-nb's ``{glue:text}`` (text and tests read them from here).

    Writes exactly what ``myst_nb.glue(name, value, display=False)`` writes (a display-data output whose mime keys
    carry ``GLUE_PREFIX`` and whose metadata names the value), without importing myst-nb in the kernel (2.5 s)."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    for name, value in values.items():
        bundle, metadata = format_display_data(value)
        metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
        display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
