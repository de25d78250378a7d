"""How many images each split of a task's dataset holds, and how sure that figure is: a prepared copy or a frozen
split list or count (exact), or the public release's size with the split manifest's rule (estimated). The GPU-hour
plan (``plan``) and the methods page's size table (``protocols.sizes_table``) read it."""
from __future__ import annotations

from .prepare import prepared_dir, read_meta
from .splits import load_manifest

# Images of each public release (all splits), for datasets not prepared here: "estimated" in the plan.
RELEASE_IMAGES = {"chestxray14": 112_120, "chexpert": 224_316, "mimic_cxr": 377_110, "shenzhen": 662,
                  "montgomery": 138, "drive": 40, "jsrt": 247, "siim_ptx": 12_089, "rsna_pe": 1_790_594,
                  "vindr_cxr": 18_000, "busi": 780}
# Training images the papers or releases state, where the split is official: used before a copy is prepared.
OFFICIAL_TRAIN = {"chestxray14": 75_312 + 11_212, "chexpert": 223_414, "mimic_cxr": 368_960, "vindr_cxr": 15_000}
TRAIN_SHARE_DEFAULT = 0.7  # a seeded cut whose manifest gives shares only (stated as an assumption)


def is_prepared(spec) -> bool:
    """A prepared copy of ``spec``'s dataset is in the cache at the size its runs read."""
    return (prepared_dir(spec, spec.protocol.stored_size) / "meta.json").is_file()


def split_images(spec) -> tuple[dict[str, int], str]:
    """Images in each split (train, val, test) of ``spec``'s dataset, and how sure the figures are: a prepared copy
    or a frozen list or count (exact), or the release's size with the manifest's rule (estimated). Generated data
    (the light profiles' synthetic tasks) has the profile's sizes."""
    if spec.synthetic:
        return dict(zip(("train", "val", "test"), spec.sizes)), "exact (generated)"
    if is_prepared(spec):
        meta = read_meta(prepared_dir(spec, spec.protocol.stored_size))
        return {k: int(v) for k, v in meta["counts"].items()}, "exact (prepared copy)"
    m = load_manifest(spec.source)
    rule = m["split"]
    if rule["method"] == "listed":
        return {k: len(v) for k, v in rule["lists"].items()}, "exact (frozen list)"
    if "counts" in rule:
        return {k: int(v) for k, v in rule["counts"].items()}, "exact (frozen counts)"
    total = RELEASE_IMAGES.get(spec.source, 0)
    if spec.source in OFFICIAL_TRAIN:
        pool, share = OFFICIAL_TRAIN[spec.source], rule.get("val", {}).get("share", 0)
        return ({"train": round(pool * (1 - share)), "val": round(pool * share), "test": total - pool},
                "estimated (release's official split)")
    shares = rule.get("shares", {"train": TRAIN_SHARE_DEFAULT, "val": (1 - TRAIN_SHARE_DEFAULT) / 2,
                                 "test": (1 - TRAIN_SHARE_DEFAULT) / 2})
    return {k: round(total * v) for k, v in shares.items()}, "estimated (release size x split shares)"
