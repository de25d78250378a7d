"""Re-run one demo config per section into a fresh store and compare every stored value with the first run's.

Usage: python benchmarks/determinism.py RESULTS_DIR [SECTION ...]
  RESULTS_DIR: a store filled by `make book` or `medbench run ... --profile demo`. With MEDBENCH_CACHE pointing at
  an empty folder, the pre-training stage behind each picked run is re-made too, so its determinism is covered.
"""
import sys
import tempfile

import pandas as pd

import medbench_core as mb

# per section, the run to repeat: (task, arch, init, fraction), seed 0 -- the section's distinctive ingredient
PICK = {
    "granularity": ("syn_vxs", "test_resnet", "synth_inat", 1.0),
    "self-supervised": ("syn_pxs", "test_resnet", "ssl_swav", 1.0),
    "domain-adaptation": ("syn_txc", "test_resnet", "synth_imagenet_chest", 1.0),
    "architectures": ("syn_lxs", "mini_swin", "synth_imagenet", 1.0),
    "data-size": ("syn_dxc", "mini_convnext", "synth_imagenet", 0.05),
}

store = mb.ResultsStore(sys.argv[1])
sections = sys.argv[2:] or list(PICK)
with tempfile.TemporaryDirectory() as tmp:
    fresh = mb.ResultsStore(tmp)
    for section in sections:
        task, arch, init, fraction = PICK[section]
        grid = mb.validate_section_params(section, profile="demo")
        cfg = next(c for c in grid.configs if (c.task, c.arch, c.init, c.fraction, c.seed) ==
                   (task, arch, init, fraction, 0))
        if not store.has(cfg.config_hash()):
            print(f"{section}: run {cfg.config_hash()} is not in {sys.argv[1]}; run the section first")
            continue
        a = store.rows(cfg.config_hash())
        b, _ = mb.run_one(cfg, fresh, progress=False)
        cols = ["split", "metric", "value"]
        same = a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))
        main = a[(a.split == "test") & a.metric.isin(["mean_auc", "dice"])].iloc[0]
        print(f"{section}: {task} {arch} {init} fraction {fraction:g}: {main.metric} {main.value:.6f}; "
              f"{len(a)} values, identical on re-run: {same}")
        if not same:
            print(pd.concat([a[cols], b[["value"]].rename(columns={"value": "rerun"})], axis=1))
