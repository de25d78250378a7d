"""Re-run one demo config per task into a fresh store and compare every stored value with the first run's.

Usage: python benchmarks/determinism.py RESULTS_DIR   (a store filled by `make book` or `medbench run ... demo`)
"""
import sys
import tempfile

import pandas as pd

import medbench_core as mb

store = mb.ResultsStore(sys.argv[1])
grid = mb.validate_section_params("domain-adaptation", profile="demo")
picked = {}
for cfg in grid.configs:  # the first seed of the domain-adapted init on each task
    if cfg.init == "synth_imagenet_chest" and cfg.task not in picked and store.has(cfg.config_hash()):
        picked[cfg.task] = cfg
with tempfile.TemporaryDirectory() as tmp:
    fresh = mb.ResultsStore(tmp)
    for task, cfg in picked.items():
        a = store.rows(cfg.config_hash())
        b, _ = mb.run_one(cfg, fresh, progress=False)
        cols = ["split", "metric", "value"]
        same = a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))
        main = a[(a.split == "test") & a.metric.isin(["mean_auc", "dice"])].iloc[0]
        print(f"{task}: {main.metric} {main.value:.6f}; {len(a)} values, identical on re-run: {same}")
        if not same:
            print(pd.concat([a[cols], b[["value"]].rename(columns={"value": "rerun"})], axis=1))
