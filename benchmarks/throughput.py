"""Images per second of training and evaluation, medbench's way against the original code's way, in one run.

The original code's way (the baseline): a torch DataLoader whose dataset opens, decodes and resizes a PNG file for
every image in every epoch, fp32, channels-first. medbench's way: the prepared uint8 cache (`medbench data prepare`),
batches moved to the device as uint8 and normalised/augmented there, mixed precision and channels-last on a GPU
(`resolve_speed("auto")`), optional `torch.compile`. For each architecture and resolution it reports training and
evaluation images/s both ways, the data loaders alone, and the share of the training step spent waiting for data.

    .venv/bin/python benchmarks/throughput.py                        # CPU defaults (small models, 64/128 px)
    .venv/bin/python benchmarks/throughput.py --device cuda --archs resnet50 --sizes 224 --steps 30

The images are SYNTHETIC radiographs written as 1024 x 1024 PNG files (ChestX-ray14's size and format).
Results go to benchmarks/results/throughput-<device>.json and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import realdata as rd  # noqa: E402
from prepare_speedup import radiograph  # noqa: E402

from medbench_core.data import BatchLoader, load_task_data  # noqa: E402
from medbench_core.datasets import prepare  # noqa: E402
from medbench_core.engine import Speed, _forward, resolve_device, resolve_speed, train_step  # noqa: E402
from medbench_core.models import build_classifier  # noqa: E402
from medbench_core.tasks import create_task  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class PngDataset(torch.utils.data.Dataset):
    """The original code's input pipeline: open, decode, resize and normalise every image every time."""

    def __init__(self, files, labels, size):
        self.files, self.labels, self.size = files, labels, size
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            img = im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div_(255)
        if torch.rand(1).item() < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std, torch.tensor([float(self.labels[i])])


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def endless(batches):
    """The loader's batches, epoch after epoch."""
    while True:
        yield from batches


def time_loader(batches, steps: int, device) -> float:
    """Images per second of a loader alone (batches moved to the device)."""
    n, t0, it = 0, time.perf_counter(), endless(batches)
    for _ in range(steps):
        x, _ = next(it)
        x = x.to(device, non_blocking=True)
        n += len(x)
    _sync(device)
    return n / (time.perf_counter() - t0)


def time_training(model, batches, steps: int, device, speed: Speed, warmup: int = 2) -> tuple[float, float]:
    """Training images/s and the share of step time spent waiting for the next batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type) if speed.amp == torch.float16 else None
    fwd = torch.compile(model) if speed.compile else model
    model.train()
    it, n, waited, t0 = endless(batches), 0, 0.0, None
    for step in range(steps + warmup):
        if step == warmup:
            _sync(device)
            t0, n, waited = time.perf_counter(), 0, 0.0
        tw = time.perf_counter()
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        waited += time.perf_counter() - tw
        train_step(fwd, x, y, torch.nn.functional.binary_cross_entropy_with_logits, opt, speed=speed, scaler=scaler)
        n += len(x)
    _sync(device)
    total = time.perf_counter() - t0
    return n / total, waited / total


@torch.no_grad()
def time_eval(model, batches, steps: int, device, speed: Speed) -> float:
    model.eval()
    fwd = torch.compile(model) if speed.compile else model
    it, n, t0 = endless(batches), 0, time.perf_counter()
    for _ in range(steps):
        x, _ = next(it)
        _forward(fwd, x.to(device, non_blocking=True), speed)
        n += len(x)
    _sync(device)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--n-images", type=int, default=192)
    ap.add_argument("--workers", type=int, default=-1, help="loader processes for both pipelines (-1: auto)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--workdir", default="/tmp/mb-throughput")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    device = resolve_device(args.device)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.environ["MEDBENCH_CACHE"] = str(work / "cache")
    os.environ["MEDBENCH_SPLITS"] = str(work / "splits")
    root = work / "shenzhen"
    for i in range(1, args.n_images + 1):
        p = root / "CXR_png" / f"CHNCXR_{i:04d}_{i % 2}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(radiograph(1024, i)).save(p)
    rd.mini_manifest("shenzhen", work / "splits")
    cuda = device.type == "cuda"
    workers = (min(8, os.cpu_count() or 1) if cuda else 0) if args.workers < 0 else args.workers
    files = sorted((root / "CXR_png").glob("*.png"))
    labels = [int(f.stem[-1]) for f in files]
    info = {"device": torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores, "
            f"{platform.processor() or platform.machine()})", "torch": torch.__version__, "batch": args.batch,
            "steps": args.steps, "workers": workers, "png_px": 1024, "results": []}
    for size in [int(s) for s in args.sizes.split(",")]:
        prepare("shenzhen", root, size=size, profile="paper", progress=False)
        import dataclasses

        task = create_task("shenzhen", "paper")
        task = dataclasses.replace(task, protocol=dataclasses.replace(task.protocol, image_size=size))
        train = load_task_data(task)["train"]
        ours = BatchLoader(train, args.batch, train=True, seed=0, mean=MEAN, std=STD, device=device,
                           workers=workers)
        base = torch.utils.data.DataLoader(PngDataset(files, labels, size), batch_size=args.batch, shuffle=True,
                                           num_workers=workers, drop_last=True, persistent_workers=workers > 0)
        loader_ours, loader_base = time_loader(ours, args.steps, device), time_loader(base, args.steps, device)
        for arch in args.archs.split(","):
            speed = resolve_speed(device, "auto", "auto", args.compile)
            row = {"arch": arch, "size": size, "loader_png_img_s": round(loader_base, 1),
                   "loader_cache_img_s": round(loader_ours, 1), "speed": speed.describe()}
            torch.manual_seed(0)
            model = build_classifier(arch, 1, size).to(device)
            ips, wait = time_training(model, base, args.steps, device, Speed())
            row["train_baseline_img_s"], row["baseline_data_wait"] = round(ips, 1), round(wait, 3)
            row["eval_baseline_img_s"] = round(time_eval(model, base, args.steps, device, Speed()), 1)
            torch.manual_seed(0)
            model = build_classifier(arch, 1, size).to(device)
            if speed.channels_last:
                model = model.to(memory_format=torch.channels_last)
            ips, wait = time_training(model, ours, args.steps, device, speed)
            row["train_medbench_img_s"], row["medbench_data_wait"] = round(ips, 1), round(wait, 3)
            row["eval_medbench_img_s"] = round(time_eval(model, ours, args.steps, device, speed), 1)
            row["train_speedup"] = round(row["train_medbench_img_s"] / row["train_baseline_img_s"], 2)
            info["results"].append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out or Path(__file__).parent / "results" / f"throughput-{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=1))
    print(f"\n{info['device']}, torch {info['torch']}, batch {args.batch}, {workers} loader workers\n")
    print("| arch | px | loader PNG | loader cache | train baseline | train medbench | speed-up | eval baseline |"
          " eval medbench | data wait (medbench) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in info["results"]:
        print(f"| {r['arch']} | {r['size']} | {r['loader_png_img_s']} | {r['loader_cache_img_s']} | "
              f"{r['train_baseline_img_s']} | {r['train_medbench_img_s']} | {r['train_speedup']}x | "
              f"{r['eval_baseline_img_s']} | {r['eval_medbench_img_s']} | {100 * r['medbench_data_wait']:.1f} % |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
