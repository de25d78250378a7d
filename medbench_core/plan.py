"""A budget before submitting: what a section's grid (or the whole study) costs and what it still lacks.

For every task of a grid: its runs, the training images per epoch, the epochs to expect and at most, GPU-hours at a
stated training throughput per architecture and resolution, the disk its prepared cache takes, and whether its
data and weights are present here, with the command that fixes each one missing. Every figure says where it comes
from: a prepared copy or a frozen split list (exact), a dataset's public release size (estimated), or an assumption
stated here. Nothing here trains, downloads or reads a dataset.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .datasets.catalog import get_dataset
from .datasets.sizes import RELEASE_IMAGES, is_prepared, split_images
from .datasets.splits import fraction_size
from .pretrain import get_init, zoo_key
from .profiles import get_profile
from .tasks import CLASSIFICATION, create_task

# Training throughput, images per second on one GPU at 224 px with bf16 (the paper profile's default), by
# architecture: ASSUMED, not measured by medbench (no GPU was lent to the session that wrote this; the command that
# measures them is `benchmarks/throughput.py --device cuda`). Segmentation (U-Net / UPerNet) at half these.
# Other resolutions scale with the pixel count.
ASSUMED_THROUGHPUT = {"resnet50": 1200, "convnext_tiny": 900, "convnext_small": 550, "convnext_base": 380,
                      "swin_tiny": 750, "swin_small": 450, "swin_base": 320, "deit_tiny": 2500, "deit_small": 1200,
                      "deit_base": 450}
THROUGHPUT_BASIS = ("assumed: one A100/H100-class GPU, bf16, batch 32, 224 px; segmentation at half; other sizes "
                    "by pixel count. Not measured by medbench")
# Measured throughputs, written by benchmarks/gpu_check.py (benchmarks/gpu.sh) on a GPU machine; when present they
# replace the assumed figures of the architectures they measured.
THROUGHPUT_FILE = Path(__file__).resolve().parent / "data" / "gpu_throughput.json"


def throughputs(path: str | Path | None = None) -> tuple[dict[str, float], str]:
    """Images per second at 224 px by architecture, and the sentence that says where they come from: measured
    (``THROUGHPUT_FILE``, for the architectures it holds) or assumed (``ASSUMED_THROUGHPUT``)."""
    path = Path(path) if path is not None else THROUGHPUT_FILE
    try:
        record = json.loads(path.read_text())
        steps = {r["arch"]: float(r["images_per_s"]) * (r["size"] / 224) ** 2 for r in record["paper_steps"]}
    except (OSError, ValueError, KeyError, TypeError):
        return dict(ASSUMED_THROUGHPUT), THROUGHPUT_BASIS
    if not steps:
        return dict(ASSUMED_THROUGHPUT), THROUGHPUT_BASIS
    basis = (f"measured for {', '.join(steps)} on {record.get('device', 'a GPU')} ({record.get('speed', {})}, "
             f"{str(record.get('measured_at', ''))[:10]}, benchmarks/gpu_check.py; paper_cls augmentation, "
             f"{next(iter(record['paper_steps']))['size']} px crops scaled to 224 by pixel count); others "
             + THROUGHPUT_BASIS.split(";")[0])
    return ASSUMED_THROUGHPUT | steps, basis
EVAL_SHARE = 0.25  # validation each epoch and the final test, as a share of training time (assumed)


@dataclass(frozen=True)
class TaskPlan:
    task: str
    runs: int
    train_images: int
    images_source: str  # exact | estimated
    expected_epochs: int
    max_epochs: int
    gpu_hours: float  # expected
    gpu_hours_max: float
    cache_gb: float
    data: str  # present | missing: <command>
    fractions: tuple[float, ...] = (1.0,)
    protocol: str = "original"  # original | assumed (no script in the original code: its cells rest on our choice)
    #                             | light (a light profile's protocol, not the original's)

    def images_at(self, fraction: float) -> int:
        """Training images of a run at ``fraction`` (the nested subsets take ceil(f * n) of the training split)."""
        return fraction_size(fraction, self.train_images)


def _train_images(spec) -> tuple[int, str]:
    """Training images per epoch at the full training fraction, and how sure the figure is."""
    counts, how = split_images(spec)
    return counts["train"], how


def expected_epochs(protocol) -> int:
    """Assumed: early stopping fires about three patience-lengths in (best epoch at two), capped by the maximum.
    ``protocol``: a task's Protocol or a RunConfig."""
    return min(protocol.max_epochs, 3 * protocol.patience + (1 if protocol.stop_rule == "original" else 0))


def _throughput(arch: str, size: int, segmentation: bool, table: dict[str, float]) -> float:
    base = table.get(arch, 1000)
    return base * (224 / size) ** 2 / (2 if segmentation else 1)


def plan_grid(grid) -> list[TaskPlan]:
    """One ``TaskPlan`` per task of ``grid`` (a validated ``sections.Grid``)."""
    out, table = [], throughputs()[0]
    for task in grid.tasks:
        cfgs = [c for c in grid.configs if c.task == task]
        if not cfgs:
            continue
        spec = create_task(task, grid.profile)
        p = cfgs[0]  # every run of a task shares its protocol
        n, source = _train_images(spec)
        seg = spec.kind != CLASSIFICATION
        hours = {"exp": 0.0, "max": 0.0}
        for c in cfgs:
            seconds_per_epoch = n * c.fraction / _throughput(c.arch, c.image_size, seg, table) * (1 + EVAL_SHARE)
            hours["exp"] += seconds_per_epoch * expected_epochs(c)
            hours["max"] += seconds_per_epoch * c.max_epochs
        side = spec.protocol.stored_size
        if spec.synthetic:  # generated on first use into the cache, nothing to obtain
            total, channels, data = sum(spec.sizes), 3, "generated on first use (synthetic)"
        else:
            ds = get_dataset(spec.source)
            total, channels = RELEASE_IMAGES.get(spec.source, n), ds.channels
            data = ("present" if is_prepared(spec) else
                    f"missing: obtain from {ds.obtain}, then `medbench data prepare {task} --root PATH --profile "
                    f"{grid.profile}`")
        per_image = side * side * (channels + (1 if seg else 0))
        from .original import scope_of

        out.append(TaskPlan(task, len(cfgs), n, source, expected_epochs(p), p.max_epochs, hours["exp"] / 3600,
                            hours["max"] / 3600, total * per_image / 1e9, data,
                            tuple(sorted({c.fraction for c in cfgs})),
                            "light" if get_profile(grid.profile).light else
                            "assumed" if scope_of(p) == "assumed" else "original"))
    return out


def weights_status(grids) -> list[dict]:
    """Every pre-trained (arch, init) the grids need: present in the cache, or missing with the command that gets
    it (``weights fetch`` where medbench can download it, ``weights import`` after a manual download)."""
    from .zoo import get_record
    from .zoo.fetch import converted_path, import_command

    rows = []
    for arch, init in dict.fromkeys((c.arch, c.init) for g in grids for c in g.configs):
        if not get_init(init).weights:
            continue
        key = zoo_key(init, arch)
        rec = get_record(key)
        if converted_path(key).is_file():
            state = "present"
        elif rec.source == "manual":
            state = f"missing: download by hand from {rec.page}, then `{import_command(rec)}`"
        else:
            state = f"missing: `medbench weights fetch {key}`"
        rows.append({"weights": key, "state": state})
    return rows


def plan_table(grid) -> pd.DataFrame:
    rows = [{"task": t.task, "runs": t.runs, "train images / epoch": _images(t),
             "protocol": {"assumed": "ASSUMED (no original code)", "light": "light (not the original's)"}.get(
                 t.protocol, "the original's"),
             "epochs: expected (assumed) / at most": f"{t.expected_epochs} / {t.max_epochs}",
             "GPU-hours: expected / at most": f"{t.gpu_hours:,.1f} / {t.gpu_hours_max:,.1f}",
             "cache disk": f"{t.cache_gb:,.1f} GB", "data": t.data} for t in plan_grid(grid)]
    return pd.DataFrame(rows)


def _images(t: TaskPlan) -> str:
    parts = [f"{t.images_at(f):,} at {f:.0%}" for f in t.fractions if f < 1]
    full = f"{t.train_images:,}" if 1.0 in t.fractions else ""
    return ", ".join(([full] if full else []) + parts) + f" ({t.images_source})"


def _assumed_line(plans: list[TaskPlan], hours: float, where: str) -> str | None:
    assumed = [t for t in plans if t.protocol == "assumed"]
    if not assumed or not hours:
        return None
    h = sum(t.gpu_hours for t in assumed)
    return (f"assumed protocol ({', '.join(sorted({t.task for t in assumed}))}: the original code has no script "
            f"for it): {h:,.0f} GPU-hours expected, {h / hours:.0%} of {where}")


def format_plan(grid, study: list | None = None) -> str:
    """The plan of ``grid`` as text, and one line for the whole ``study`` (every section's grid; runs shared by two
    sections counted once)."""
    plans = plan_grid(grid)
    lines = [f"plan: {grid.section.key} on {grid.profile}: {len(grid.configs)} runs "
             f"({len(grid.seeds)} per cell), {sum(t.gpu_hours for t in plans):,.0f} GPU-hours expected, "
             f"{sum(t.gpu_hours_max for t in plans):,.0f} at most; throughput {throughputs()[1]}; expected epochs "
             "assumed at three patience-lengths."]
    df = plan_table(grid)
    lines.append(df.to_string(index=False))
    line = _assumed_line(plans, sum(t.gpu_hours for t in plans), "this section")
    if line:
        lines.append(line)
    w = weights_status([grid])
    missing = [r for r in w if r["state"] != "present"]
    lines.append(f"weights: {len(w) - len(missing)} of {len(w)} present" + ("" if not missing else ":"))
    lines += [f"  {r['weights']}: {r['state']}" for r in missing]
    if study:
        seen, hours, hours_max, disk, every = set(), 0.0, 0.0, {}, []
        for g in study:
            new = [c for c in g.configs if c.config_hash() not in seen]
            seen.update(c.config_hash() for c in new)
            sub = dataclasses.replace(g, configs=tuple(new))
            for t in plan_grid(sub):
                hours += t.gpu_hours
                hours_max += t.gpu_hours_max
                disk[t.task] = t.cache_gb
                every.append(t)
        lines.append(f"whole study on {grid.profile}: {len(seen)} runs ({sum(len(g.configs) for g in study)} section "
                     f"runs, shared ones once), {hours:,.0f} GPU-hours expected, {hours_max:,.0f} at most, "
                     f"{sum(disk.values()):,.0f} GB of prepared caches.")
        line = _assumed_line(every, hours, "the whole study")
        if line:
            lines.append(line)
    return "\n".join(lines)

