"""What a cheaper demo protocol would save: one fine-tune of each of the demo's most frequent (task, architecture)
pairs (138 of its 198 cells' runs) at the demo protocol and at cheaper variants, timed in one process with one
thread (as a worker runs), on the generated data. Nothing is stored.

    .venv/bin/python benchmarks/demo_protocol_cost.py [--variants "image_size=32;max_epochs=10"]

Prints a Markdown table of seconds per run and the ratio to the demo protocol. It measures cost only: whether a
verdict survives the cheaper protocol needs the stability check on a whole build (benchmarks/verdict_stability.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.experiments import make_run_config, run_one  # noqa: E402
from medbench_core.inputs import prepare_inputs  # noqa: E402
from medbench_core.results import ResultsStore  # noqa: E402

PAIRS = [("syn_dxc", "mini_convnext"), ("syn_dxc", "mini_swin"), ("syn_txc", "test_resnet"),
         ("syn_pxs", "test_resnet")]


def _parse(variant: str) -> dict:
    out = {}
    for part in filter(None, variant.split(",")):
        k, v = part.split("=")
        out[k.strip()] = int(v) if v.strip().isdigit() else float(v)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="image_size=32;max_epochs=10;image_size=32,max_epochs=10")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    variants = [("demo", {})] + [(v, _parse(v)) for v in args.variants.split(";")]
    print("| task | arch | " + " | ".join(n for n, _ in variants) + " |\n|---|---|" + "---|" * len(variants))
    totals = [0.0] * len(variants)
    with tempfile.TemporaryDirectory() as tmp:
        for task, arch in PAIRS:
            cells = []
            for k, (_, over) in enumerate(variants):
                cfg = make_run_config("granularity", task, "scratch", arch, 0, "demo", **over)
                prepare_inputs([cfg], args.cache_dir)
                t0 = time.perf_counter()
                run_one(cfg, ResultsStore(Path(tmp) / f"{task}-{arch}-{k}"), cache_dir=args.cache_dir, progress=False)
                sec = time.perf_counter() - t0
                totals[k] += sec
                cells.append(f"{sec:.1f}" + ("" if k == 0 else f" ({sec / float(cells[0]):.2f}x)"))
            print(f"| {task} | {arch} | " + " | ".join(cells) + " |", flush=True)
    print("| all four | | " + " | ".join(f"{t:.1f}" + ("" if k == 0 else f" ({t / totals[0]:.2f}x)")
                                       for k, t in enumerate(totals)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
