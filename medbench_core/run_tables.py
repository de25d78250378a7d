"""The tables of our runs a section page shows (HTML and text, ``tables.Table``): every run seed by seed, the
scores in the papers' layout, the provenance of the runs and the pre-training behind their initialisations."""
from __future__ import annotations

import html

import pandas as pd

from .flags import FLAG_MARK
from .pretrain import get_init
from .scores import group_label, main_scores
from .stats import ALPHA
from .tables import Table, frame_table, grid_html, mean_std, wrap
from .tasks import get_task_spec


def flagged_sentence(summary: pd.DataFrame) -> str:
    """The caption's sentence for cells holding a flagged run (none when no cell does)."""
    flagged = "flagged" in summary.columns and summary["flagged"].any()
    return f" {FLAG_MARK}: the cell holds a flagged run, named below." if flagged else ""


def headed_table(caption_html: str, corner: str, head_html: str, rows_html: list[str]) -> str:
    """A ``mb-table`` from its caption (HTML), corner cell, header cells and row HTML, in its scrolling box."""
    return wrap(f'<table class="mb-table"><caption>{caption_html}</caption><thead><tr><th>{corner}</th>{head_html}'
                f"</tr></thead><tbody>{''.join(rows_html)}</tbody></table>")


def runs_table(df: pd.DataFrame, groups, tasks, flags: pd.DataFrame | None = None) -> Table:
    """Every run's test score (percent), seed by seed, one row per model (and training fraction, when there are
    several) and one column per task; flagged runs carry ``FLAG_MARK``."""
    scores = main_scores(df).drop_duplicates("config_hash").sort_values("seed")
    flagged = set(flags["config_hash"]) if flags is not None and len(flags) else set()
    fractions = sorted(scores["fraction"].unique(), reverse=True)
    names = [get_task_spec(t).display_name for t in tasks]
    rows = {}
    for g in groups:
        for f in fractions:
            d = scores[(scores["group"] == g) & (scores["fraction"] == f)]
            if not len(d):
                continue
            label = group_label(g) + (f", {f:.0%}" if len(fractions) > 1 else "")
            rows[label] = ["  ".join(f"{v:.1f}{FLAG_MARK if h in flagged else ''}" for v, h in
                                     zip(d.loc[d["task"] == t, "score"], d.loc[d["task"] == t, "config_hash"])) or "–"
                           for t in tasks]
    text = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    cap = ("Every run's test score in percent, in seed order (seed 0 first)"
           + (f"; {FLAG_MARK}: a flagged run (see under the results table)." if flagged else "."))
    return Table(text, grid_html(text, html.escape(cap), corner="model"))


def scores_table(summary: pd.DataFrame, groups, tasks, *, baseline: str, caption: str, fraction: float = 1.0,
                 row_title: str = "Initialisation") -> Table:
    """Groups x tasks, mean ± std in percent, in the papers' layout: best in bold, runs not significantly different
    from the best highlighted, and marks (n.s., *, **, ***) against ``baseline``. Cells without runs (e.g. a plain
    ViT on segmentation) show "–"."""
    s = summary[summary["fraction"] == fraction].set_index(["group", "task"])
    labels = [group_label(g) for g in groups]
    names = [get_task_spec(t).display_name for t in tasks]
    text = pd.DataFrame(index=labels, columns=names, dtype=object)
    rows_html = []
    for g, label in zip(groups, labels):
        cells = []
        for t, name in zip(tasks, names):
            if (g, t) not in s.index:
                text.loc[label, name] = "–"
                cells.append("<td>–</td>")
                continue
            r = s.loc[(g, t)]
            val = mean_std(r["mean"], r["std"])
            mark = r.get("mark_vs_baseline", "") or ""
            flag = FLAG_MARK if r.get("flagged", 0) else ""
            val += flag
            plain = val + (f" {mark}" if mark else "") + (" (best)" if r["is_best"] else "")
            plain += " (≈ best)" if r["equivalent_to_best"] else ""
            text.loc[label, name] = plain
            val = val.replace(" ± ", "\u00a0±\u00a0")
            body = f"<b>{val}</b>" if r["is_best"] else val
            sup = f"<sup>{html.escape(mark)}</sup>" if mark else ""
            cls = ' class="mb-equiv"' if r["equivalent_to_best"] else ""
            cells.append(f"<td{cls}>{body}{sup}</td>")
        rows_html.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(get_task_spec(t).display_name)}<br><small>{get_task_spec(t).metric_label}"
                   f"</small></th>" for t in tasks)
    legend = (f"{html.escape(caption)} Bold: best mean. Highlighted: not significantly different from the best "
              f"(independent two-sample t-test, p ≥ {ALPHA}). Marks against {html.escape(group_label(baseline))}: "
              "n.s. p ≥ 0.05, * p &lt; 0.05, ** p &lt; 0.01, *** p &lt; 0.0001. Mean ± sample std over seeds."
              + flagged_sentence(s))
    return Table(text, headed_table(legend, row_title, head, rows_html))


def provenance(df: pd.DataFrame) -> Table:
    """Where and how the runs behind a table were made: counts, devices, versions and compute time."""
    runs = df.drop_duplicates("config_hash")
    text = pd.DataFrame({
        "runs": [len(runs)],
        "profile": [", ".join(sorted(runs["profile"].astype(str).unique()))],
        "device": [", ".join(sorted(runs["device"].astype(str).unique()))],
        "torch": [", ".join(sorted(runs["torch_version"].astype(str).unique()))],
        "medbench": [", ".join(sorted(runs["git_sha"].astype(str).unique()))],
        "compute (min)": [round(runs["wall_seconds"].sum() / 60, 1)],
        "data": ["synthetic (generated)" if runs["synthetic"].astype(str).str.lower().eq("true").all() else
                 "real datasets" if not runs["synthetic"].astype(str).str.lower().eq("true").any() else "mixed"],
    })
    return frame_table(text)


def pretraining_table(grid, cache_dir=None) -> Table:
    """The pre-training behind the grid's initialisations (one row per arch and init), read from the caches:
    recipe, images, epochs, time and the stage's own check (validation accuracy for supervised stages,
    k-nearest-neighbour accuracy on the coarse labels for self-supervised ones; chance is 25 % for 4 coarse classes,
    6.25 % for 16 fine), or for real weights their release and audit. It never trains: a checkpoint that is not in
    the cache (results imported from another machine) is listed as such."""
    from .pretrain import checkpoint_meta, find_init_checkpoint, stage_configs, zoo_key

    rows = []
    for arch in grid.archs:
        for init in grid.inits:
            model = group_label(f"{arch}/{init}") if len(grid.archs) > 1 else get_init(init).label
            path = find_init_checkpoint(init, arch, grid.profile, cache_dir=cache_dir)
            if get_init(init).weights:  # real pre-trained weights: where they come from and their audit
                from .zoo import get_record

                rec = get_record(zoo_key(init, arch))
                check = "not in this machine's cache (runs made elsewhere)"
                if path is not None:
                    meta = checkpoint_meta(path)
                    check = (f"audited: {meta['backbone_tensors']} backbone tensors, sha256 "
                             f"{meta['source_sha256'][:12]}")
                rows.append({"model": model, "recipe": f"real weights {rec.key} ({rec.citation})", "images": "–",
                             "epochs": "–", "minutes": "–", "check (last stage)": check})
                continue
            chain = stage_configs(init, arch, grid.profile)
            if not chain:
                continue
            row = {"model": model, "recipe": " → ".join(c.source for c in chain), "images": chain[-1].n_images,
                   "epochs": chain[-1].epochs, "minutes": "–",
                   "check (last stage)": "not in this machine's cache (runs made elsewhere)"}
            if path is not None:
                meta = checkpoint_meta(path)
                row["minutes"] = round(meta["seconds"] / 60, 1)
                row["check (last stage)"] = next((f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in meta.items()
                                                  if k in ("val_accuracy", "val_knn_accuracy", "val_mean_auc")), "–")
            rows.append(row)
    return frame_table(pd.DataFrame(rows))
