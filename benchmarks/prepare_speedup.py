"""Images per second: decoding and resizing the original files every epoch (as the original code did) vs reading
the prepared uint8 cache (``medbench data prepare``), on this machine's CPU.

It writes a Shenzhen-layout copy (PNG radiographs at a realistic 2048 x 2048, grey, noisy so PNG compresses as a
radiograph does) and a SIIM-layout copy (1024 x 1024 DICOM with run-length masks), prepares each at 224 px, then times
one pass over the training split both ways. The pixels are SYNTHETIC; file sizes and formats are the real ones.

    .venv/bin/python benchmarks/prepare_speedup.py [--n 96] [--workdir /tmp/mb-prep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import realdata as rd  # noqa: E402

from medbench_core.data import BatchLoader, load_task_data  # noqa: E402
from medbench_core.datasets import formats, get_dataset, prepare  # noqa: E402
from medbench_core.datasets.prepare import index_with_splits, read_meta  # noqa: E402
from medbench_core.tasks import create_task  # noqa: E402


def radiograph(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    body = 150 + 60 * np.exp(-((xx - 0.5) ** 2) / 0.08) - 70 * (np.exp(-((xx - 0.3) ** 2 + (yy - 0.45) ** 2) / 0.02)
                                                               + np.exp(-((xx - 0.7) ** 2 + (yy - 0.45) ** 2) / 0.02))
    return np.clip(body + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8)


def write_shenzhen(root: Path, n: int) -> None:
    for i in range(1, n + 1):
        p = root / "CXR_png" / f"CHNCXR_{i:04d}_{i % 2}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(radiograph(2048, i)).save(p)


def write_siim(root: Path, n: int) -> None:
    lines = ["ImageId, EncodedPixels"]
    for i in range(n):
        iid = f"1.2.276.0.7230010.3.1.4.{i}"
        rd.write_dicom(root / "dicom-images-train" / f"s{i}" / f"r{i}" / f"{iid}.dcm", radiograph(1024, i),
                       patient=f"p{i}")
        lines.append(f"{iid}, {formats.rle_encode(rd._disc(1024, 1024, 300, 300, 80)) if i % 2 else '-1'}")
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")


def decode_every_epoch(task: str, root: Path, size: int) -> tuple[float, int]:
    """One pass over the training split the way the original code did it: open, decode, resize every image."""
    spec = create_task(task, "paper")
    ds = get_dataset(spec.source)
    index, _ = index_with_splits(spec, root, size)
    train = index[index["split"] == "train"]
    t0 = time.perf_counter()
    for _, row in train.iterrows():
        import pandas as pd

        img, target = ds.load(root, pd.DataFrame([row]), spec.options)[0]
        formats.resize(img, size)
        if np.asarray(target).ndim == 2:
            formats.resize(np.asarray(target, np.uint8), size, mask=True)
    return time.perf_counter() - t0, len(train)


def read_cache(task: str, size: int, batch: int = 32) -> tuple[float, int]:
    spec = create_task(task, "paper")
    data = load_task_data(spec)["train"]
    loader = BatchLoader(data, batch, train=True, seed=0)
    t0 = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--workdir", default="/tmp/mb-prep")
    args = ap.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.environ["MEDBENCH_CACHE"] = str(work / "cache")
    os.environ["MEDBENCH_SPLITS"] = str(work / "splits")
    args.size = 224  # the paper protocol's resolution of both tasks
    results = {"cpu_cores": os.cpu_count(), "n_images": args.n, "size": args.size}
    for task, writer in (("shenzhen", write_shenzhen), ("siim_ptx", write_siim)):
        root = work / task
        writer(root, args.n)
        rd.mini_manifest(create_task(task, "paper").source, work / "splits")
        files_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2 ** 20
        t0 = time.perf_counter()
        folder = prepare(task, root, profile="paper", size=args.size, progress=False)
        t_prep = time.perf_counter() - t0
        t_dec, n_dec = decode_every_epoch(task, root, args.size)
        read_cache(task, args.size)  # warm the page cache once, as every epoch after the first finds it
        t_cache, n_cache = read_cache(task, args.size)
        cache_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2 ** 20
        results[task] = {
            "files_MB": round(files_mb, 1), "cache_MB": round(cache_mb, 1),
            "prepare_s": round(t_prep, 2), "prepare_workers": min(8, os.cpu_count() or 1),
            "decode_every_epoch_img_per_s": round(n_dec / t_dec, 1),
            "cache_img_per_s": round(n_cache / t_cache, 1),
            "speedup": round((n_cache / t_cache) / (n_dec / t_dec), 1),
            "train_images": read_meta(folder)["counts"]["train"],
        }
        print(task, json.dumps(results[task]), flush=True)
    (work / "prepare_speedup.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
