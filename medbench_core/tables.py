"""HTML tables for the book: one ``Table`` type (plain text for tests and terminals, HTML for the page) and the one
stylesheet every table uses. Wide tables scroll inside their own box instead of being clipped."""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import pandas as pd

CSS = """<style>
.mb-scroll {overflow-x: auto; max-width: 100%;}
.mb-table {border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0;}
.mb-table th, .mb-table td {border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; text-align: center;}
.mb-table td.mb-equiv {background: #d6e9ff;}
.mb-table td.mb-depends {background: repeating-linear-gradient(45deg, #fff, #fff 4px, #e8f1ff 4px, #e8f1ff 8px);}
.mb-caption {font-size: 0.85em; text-align: left; color: #444; margin: 0.2em 0 1em 0;}
</style>"""


@dataclass
class Table:
    """A table for the book: ``text`` (DataFrame of strings) and ``html`` (what the page shows)."""

    text: pd.DataFrame
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text.to_string()


def wrap(table_html: str) -> str:
    """The stylesheet and a horizontally scrolling box around one ``<table>``, its caption below the box at the
    text width (inside the table, a caption is as wide as the table and scrolls out of view with it)."""
    m = re.search(r"<caption>(.*?)</caption>", table_html, flags=re.S)
    caption = f'<p class="mb-caption">{m.group(1)}</p>' if m else ""
    table_html = table_html[:m.start()] + table_html[m.end():] if m else table_html
    return f'{CSS}<div class="mb-scroll">{table_html}</div>{caption}'


def grid_html(cells: pd.DataFrame, caption: str, *, classes: pd.DataFrame | None = None,
              bold: pd.DataFrame | None = None, corner: str = "") -> str:
    """``cells`` (index = row headers) as a ``mb-table``; ``classes`` and ``bold`` mark cells; ``caption`` is HTML."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cells.columns)
    rows = []
    for idx in cells.index:
        tds = []
        for col in cells.columns:
            v = html.escape(str(cells.loc[idx, col])).replace(" ± ", "\u00a0±\u00a0")
            if bold is not None and bool(bold.loc[idx, col]):
                v = f"<b>{v}</b>"
            cls = classes.loc[idx, col] if classes is not None else ""
            tds.append(f'<td class="{cls}">{v}</td>' if cls else f"<td>{v}</td>")
        rows.append(f"<tr><th>{html.escape(str(idx))}</th>{''.join(tds)}</tr>")
    return wrap(f'<table class="mb-table"><caption>{caption}</caption><thead><tr><th>{html.escape(corner)}</th>'
                f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def frame_table(text: pd.DataFrame, caption: str = "") -> Table:
    """A plain DataFrame (no row headers) as a ``Table``; ``caption`` is plain text."""
    body = text.to_html(index=False, classes="mb-table", border=0, escape=True)
    if caption:
        body = re.sub(r"<table[^>]*>", lambda _: f'<table class="mb-table"><caption>{html.escape(caption)}</caption>',
                      body, count=1)
    return Table(text, wrap(body))


def mean_std(mean: float, std: float) -> str:
    """``mean ± std`` with two decimals (the mean alone when the std is undefined, as with one run)."""
    return f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}"
