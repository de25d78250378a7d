"""Cost of the training augmentation pipelines (medbench_core.augment): augmentation time per batch, and training
images/s of a classifier (and a U-Net for paper_seg) with no augmentation, light, paper_cls and paper_seg.

Each training step takes a fixed uint8 batch already on the device (no data loading, so the difference between rows
is the augmentation), converts it as BatchLoader does, augments, normalises and runs ``engine.train_step`` with the
device's automatic speed options (bf16 and channels-last on a GPU). The issue's budget: augmentation under 10 % of
the step time on a GPU.

    .venv/bin/python benchmarks/augment_throughput.py --device cuda --steps 20          # the budget (ResNet-50)
    .venv/bin/python benchmarks/augment_throughput.py --steps 2 --arch resnet18          # a CPU, quickly

Inputs: classification rows read 256 px images (paper_cls crops them to 224 as the papers did; none and light get
224 px images), segmentation rows 224 px images and masks. ``paper_seg (all)`` applies every step to every image
(the registered pipeline applies each to a fraction): its worst case. Prints a Markdown table and one JSON line.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.augment import PaperSeg, get_augmentation  # noqa: E402
from medbench_core.engine import make_loss, resolve_device, resolve_speed, train_step  # noqa: E402
from medbench_core.models import create_model  # noqa: E402
from medbench_core.tasks import create_task  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ROWS = {  # name: (pipeline, task kind, stored side as a multiple of --size)
    "none": (None, "cls", 1.0),
    "light": ("light", "cls", 1.0),
    "paper_cls": ("paper_cls", "cls", 256 / 224),
    "none (U-Net)": (None, "seg", 1.0),
    "paper_seg": ("paper_seg", "seg", 1.0),
    "paper_seg (all)": (PaperSeg(p_intensity=1, p_distort=1, p_crop=1), "seg", 1.0),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _batch(kind: str, n: int, side: int, device):
    """A fixed uint8 batch of grey images and its targets (labels, or masks with IGNORE outside a disc)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8)
    if kind == "cls":
        y = torch.randint(0, 2, (n, 1), generator=g).float()
    else:
        y = torch.randint(0, 2, (n, 1, side, side), generator=g).float()
        r = torch.arange(side) - (side - 1) / 2
        y[:, :, (r[:, None] ** 2 + r[None, :] ** 2) > (side / 2) ** 2] = 2  # IGNORE outside the field of view
    return x.to(device), y.to(device)


def _prepare(x, y, aug, size, gen, mean, std):
    """As BatchLoader.__iter__: to float, augment (grey), repeat to 3 channels, normalise."""
    x = x.float().div_(255)
    if aug is not None:
        x, y = aug(x, y, size, gen)
    return (x.expand(-1, 3, -1, -1) - mean) / std, y


def time_augment(aug, x, y, size: int, steps: int, device) -> float:
    """Milliseconds per batch of the augmentation alone (after one warm-up batch), on grey images as BatchLoader."""
    gen = torch.Generator().manual_seed(0)
    x = x.float().div(255)
    aug(x, y, size, gen)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        aug(x, y, size, gen)
    _sync(device)
    return 1000 * (time.perf_counter() - t0) / steps


def time_training(model, aug, x, y, size: int, steps: int, device, speed, warmup: int = 1) -> float:
    """Milliseconds per training step, augmentation included."""
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type) if speed.amp == torch.float16 else None
    loss_fn, gen = make_loss("bce"), torch.Generator().manual_seed(0)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        xb, yb = _prepare(x, y, aug, size, gen, mean, std)
        train_step(model, xb, yb, loss_fn, opt, speed=speed, scaler=scaler)
    _sync(device)
    return 1000 * (time.perf_counter() - t0) / steps


def _model(arch: str, kind: str, size: int, device, speed):
    task = create_task("syn_dxc" if kind == "cls" else "syn_pxs", "paper")
    task = dataclasses.replace(task, classes=task.classes[:1],
                               protocol=dataclasses.replace(task.protocol, image_size=size))
    torch.manual_seed(0)
    model = create_model(arch, task).to(device)
    return model.to(memory_format=torch.channels_last) if speed.channels_last else model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="resnet50", help="classifier, and the U-Net's encoder for segmentation rows")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224, help="training side (px)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per row (0: augmentation only)")
    ap.add_argument("--aug-steps", type=int, default=10, help="timed augmentation batches per row")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    args = ap.parse_args()

    device = resolve_device(args.device)
    speed = resolve_speed(device, "auto", "auto")
    info = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
            f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {platform.machine()})",
            "torch": torch.__version__, "arch": args.arch, "batch": args.batch, "size": args.size,
            "steps": args.steps, "aug_steps": args.aug_steps, "speed": speed.describe(), "rows": []}
    models = {}
    for name in args.rows.split(","):
        aug, kind, scale = ROWS[name]
        aug = get_augmentation(aug) if isinstance(aug, str) else aug
        side = round(args.size * scale)
        x, y = _batch(kind, args.batch, side, device)
        row = {"row": name, "input_px": side, "aug_ms": 0.0}
        if aug is not None:
            row["aug_ms"] = round(time_augment(aug, x, y, args.size, args.aug_steps, device), 2)
        if args.steps:
            if kind not in models:
                models[kind] = _model(args.arch, kind, args.size, device, speed)
            step = time_training(models[kind], aug, x, y, args.size, args.steps, device, speed)
            row.update(step_ms=round(step, 1), img_s=round(args.batch * 1000 / step, 1),
                       aug_share=round(row["aug_ms"] / step, 4))
        info["rows"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\n{info['device']}, torch {info['torch']}, {args.arch} (U-Net encoder for segmentation rows), "
          f"batch {args.batch}, {args.size} px, speed {speed.describe()}\n")
    print("| augmentation | input px | augmentation ms/batch | train step ms | train img/s | augmentation share |")
    print("|---|---|---|---|---|---|")
    for r in info["rows"]:
        share = f"{100 * r['aug_share']:.1f} %" if "aug_share" in r else "-"
        print(f"| {r['row']} | {r['input_px']} | {r['aug_ms']} | {r.get('step_ms', '-')} | {r.get('img_s', '-')} "
              f"| {share} |")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
