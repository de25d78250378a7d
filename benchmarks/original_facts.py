"""Print every fact of ``medbench_core/data/original_protocol.csv`` beside the original code's lines it cites, read
from a clone of the original repository at the pinned commit, so a reviewer can check the table line by line.

    git clone https://github.com/MR-HosseinzadehTaher/BenchmarkTransferLearning /tmp/btl
    .venv/bin/python benchmarks/original_facts.py /tmp/btl [--scope segmentation_v2]

Exits 1 if a cited file or line does not exist at the commit. Nothing of the original is copied anywhere.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.original import ORIGINAL_COMMIT, facts  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", help="a clone (or bare mirror) of the original repository")
    ap.add_argument("--scope", default=None)
    args = ap.parse_args(argv)
    git = ["git", "-C", args.clone] if (Path(args.clone) / ".git").exists() else ["git", f"--git-dir={args.clone}"]
    files, bad = {}, 0
    for f in facts():
        if args.scope and not f.scope.startswith(args.scope):
            continue
        if f.file not in files:
            out = subprocess.run(git + ["show", f"{ORIGINAL_COMMIT}:{f.file}"], capture_output=True, text=True)
            files[f.file] = out.stdout.splitlines() if out.returncode == 0 else None
        lines = files[f.file]
        a, _, b = f.line.partition("-")
        a, b = int(a), int(b or a)
        if lines is None or b > len(lines):
            print(f"MISSING {f.scope}.{f.field}: {f.source}")
            bad += 1
            continue
        print(f"{f.scope}.{f.field} = {f.value}  ({f.original})  {f.source}")
        for n in range(a, b + 1):
            print(f"    {n:5d} | {lines[n - 1]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
