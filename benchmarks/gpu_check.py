"""The GPU figures the plan and the teachers' page need, measured in one short run on a machine with an NVIDIA GPU
and no internet (nothing is downloaded: random weights, SYNTHETIC images of the real shapes).

1. Paper protocol training steps: images per second of ResNet-50, ConvNeXt-B and Swin-B fine-tuning on ChestX-ray14
   (14 labels) at 224 px from 256 px stored images with the paper_cls augmentation, through medbench's own loader
   and ``engine.train_one_epoch`` with the device's speed options (bf16, channels-last), and the loader's wait as a
   share of the step time.
2. The colab profile's section times: for every (task, architecture) of each section's colab grid, the seconds of a
   training epoch and of an evaluation pass at the MedMNIST+ split sizes, measured over a few batches and scaled to
   the split; a section's time is then every run's expected epochs (the plan's stated assumption:
   ``plan.expected_epochs``) times its epoch, plus its test pass. Measured epoch times, assumed epoch counts.

It writes ``medbench_core/data/gpu_throughput.json`` (``--out``), where ``medbench sweep --plan`` reads measured
throughputs (``plan.throughputs``), and prints a Markdown table for ``benchmarks/README.md``.

    benchmarks/gpu.sh                                    # on the GPU machine: the whole check, under 8 minutes
    .venv/bin/python benchmarks/gpu_check.py --device cpu --size 32 --stored 36 --batch 4 --steps 2 --warmup 1 \\
        --archs resnet50 --sections granularity --colab-size 32 --out /tmp/gpu.json     # the CPU test's tiny size
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core import plan  # noqa: E402
from medbench_core.data import BatchLoader, SplitData  # noqa: E402
from medbench_core.datasets.catalog import get_dataset  # noqa: E402
from medbench_core.datasets.splits import load_manifest  # noqa: E402
from medbench_core.engine import (evaluate, make_loss, make_optimizer, resolve_device, resolve_speed,  # noqa: E402
                                  train_one_epoch)
from medbench_core.models import create_model  # noqa: E402
from medbench_core.sections import list_sections  # noqa: E402
from medbench_core.sections.grid import validate_section_params  # noqa: E402
from medbench_core.tasks import create_task  # noqa: E402

PAPER_TASK = "chestxray14"  # the paper protocol's classification (paper_cls, 256 -> 224)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _split(n: int, channels: int, side: int, n_labels: int, seed: int) -> SplitData:
    """``n`` SYNTHETIC uint8 images of the real shape, with random multi-label targets."""
    g = np.random.default_rng(seed)
    return SplitData(g.integers(0, 256, (n, channels, side, side), dtype=np.uint8),
                     g.integers(0, 2, (n, n_labels)).astype(np.float32))


def _channels(task) -> int:
    """Channels as the dataset stores them (grey images are repeated to 3 by the loader, on the device)."""
    return 1 if task.synthetic else min(3, get_dataset(task.source).channels)


def _train_rate(arch, task, *, device, speed, side, out_size, batch, steps, warmup, augment, lr=1e-4):
    """(training images/s, loader wait share) over ``steps`` batches after ``warmup`` batches."""
    model = create_model(arch, task).to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer("adam", model.parameters(), lr, 0.0)
    loss_fn = make_loss(task.protocol.loss)
    channels = _channels(task)
    n_labels = max(1, len(task.classes))
    out = {}
    for phase, n in (("warmup", warmup), ("measure", steps)):
        data = _split(n * batch, channels, side, n_labels, seed=len(out))
        loader = BatchLoader(data, batch, train=True, seed=0, device=device, augment=augment, out_size=out_size)
        _sync(device)
        out[phase] = train_one_epoch(model, loader, loss_fn, opt, device, speed=speed)
        _sync(device)
    m = out["measure"]
    return m["images"] / m["seconds"], m["data_seconds"] / m["seconds"], model, loss_fn


def _eval_rate(model, task, loss_fn, *, device, speed, side, batch, steps) -> float:
    n_labels = max(1, len(task.classes))
    data = _split(steps * batch, _channels(task), side, n_labels, seed=99)
    loader = BatchLoader(data, batch, train=False, device=device)
    _sync(device)
    t0 = time.perf_counter()
    evaluate(model, loader, loss_fn, task, device, speed=speed, input_size=side)
    _sync(device)
    return len(data) / (time.perf_counter() - t0)


def paper_steps(args, device, speed) -> list[dict]:
    task = create_task(PAPER_TASK, "paper")
    rows = []
    for arch in args.archs:
        t0 = time.perf_counter()
        rate, wait, *_ = _train_rate(arch, task, device=device, speed=speed, side=args.stored, out_size=args.size,
                                     batch=args.batch, steps=args.steps, warmup=args.warmup, augment="paper_cls")
        rows.append({"arch": arch, "size": args.size, "stored": args.stored, "batch": args.batch,
                     "augment": "paper_cls", "images_per_s": round(rate, 1), "loader_wait_share": round(wait, 4),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(f"paper step {arch}: {rate:,.0f} images/s, loader wait {wait:.1%}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _split_sizes(task) -> tuple[int, int, int]:
    m = load_manifest(task.source)
    e = m.get("expected", {})
    if {"train", "val", "test"} <= set(e):
        return int(e["train"]), int(e["val"]), int(e["test"])
    return task.sizes


def colab_sections(args, device, speed) -> list[dict]:
    rows, epoch_cache = [], {}
    for key in args.sections:
        grid = validate_section_params(key, profile="colab")
        total, runs = 0.0, 0
        for c in grid.configs:
            task = create_task(c.task, "colab")
            side = args.colab_size or c.image_size
            pair = (c.task, c.arch, side)
            if pair not in epoch_cache:
                train_rate, _, model, loss_fn = _train_rate(
                    c.arch, task, device=device, speed=speed, side=side, out_size=side, batch=c.batch_size,
                    steps=args.colab_steps, warmup=1, augment=c.augment)
                eval_rate = _eval_rate(model, task, loss_fn, device=device, speed=speed, side=side,
                                       batch=256, steps=max(1, args.colab_steps))
                n_train, n_val, n_test = _split_sizes(task)
                epoch_cache[pair] = (n_train / train_rate + n_val / eval_rate, n_test * c.test_crops / eval_rate)
                print(f"colab epoch {c.task} {c.arch} {side} px: {epoch_cache[pair][0]:.1f} s", flush=True)
                del model
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            epoch_s, test_s = epoch_cache[pair]
            total += epoch_s * c.fraction * plan.expected_epochs(c) + test_s
            runs += 1
        rows.append({"section": key, "runs": runs, "minutes": round(total / 60, 1),
                     "basis": "measured epoch and evaluation times x expected epochs (assumed: "
                              "plan.expected_epochs), MedMNIST+ split sizes, synthetic images"})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=224, help="training crop (px)")
    ap.add_argument("--stored", type=int, default=256, help="stored image side (px)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="measured batches per architecture")
    ap.add_argument("--warmup", type=int, default=8, help="batches before measuring (cuDNN autotuning, caches)")
    ap.add_argument("--archs", default="resnet50,convnext_base,swin_base")
    ap.add_argument("--sections", default=",".join(list_sections()), help="colab sections to time ('' for none)")
    ap.add_argument("--colab-steps", type=int, default=20, help="batches measured per (task, arch) of colab")
    ap.add_argument("--colab-size", type=int, default=None, help="override the colab image size (tests)")
    ap.add_argument("--out", default=str(plan.THROUGHPUT_FILE))
    args = ap.parse_args(argv)
    args.archs = [a for a in args.archs.split(",") if a]
    args.sections = [s for s in args.sections.split(",") if s]
    device = resolve_device(args.device)
    speed = resolve_speed(device, "auto", "auto")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    t0 = time.perf_counter()
    steps = paper_steps(args, device, speed)
    sections = colab_sections(args, device, speed)
    record = {"device": f"{device.type}: {name}", "torch": torch.__version__, "speed": speed.describe(),
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": round(time.perf_counter() - t0, 1), "paper_steps": steps, "colab_sections": sections}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    print(f"\n{record['device']}, torch {record['torch']}, {record['speed']}, {record['seconds']} s\n")
    print("| arch | px (stored) | batch | images/s | loader wait |\n|---|---|---|---|---|")
    for r in steps:
        print(f"| {r['arch']} | {r['size']} ({r['stored']}) | {r['batch']} | {r['images_per_s']:,.0f} | "
              f"{r['loader_wait_share']:.1%} |")
    print("\n| colab section | runs | minutes (estimated) |\n|---|---|---|")
    for r in sections:
        print(f"| {r['section']} | {r['runs']} | {r['minutes']} |")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
