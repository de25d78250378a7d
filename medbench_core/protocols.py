"""The papers' fine-tuning protocols next to ours, and every difference between the original code and medbench.

Two registries feed the methods page: ``protocol_table`` (what each protocol of the ``paper`` profile does, read from
the task registry and the sections, so it cannot drift from what runs) and ``DEVIATIONS`` (each difference from the
original code that remains, with the reason). Differences in augmentation come from ``augment.DEVIATIONS``; the rest
are here. A difference not listed is a bug.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from .tasks import PAPER_SEG_V2, create_task


@dataclass(frozen=True)
class Deviation:
    aspect: str
    original: str  # what the original code (or the papers) did
    medbench: str  # what we do
    why: str
    profiles: str = "paper"  # where it applies


def _describe(p) -> dict:
    stop = (f"stop when epochs without a lower val loss exceed {p.patience}" if p.stop_rule == "original"
            else f"stop after {p.patience} epochs without a lower val loss")
    sched = (f"plateau (×{p.lr_factor} after {p.lr_patience})" if p.scheduler == "plateau" else
             f"{p.warmup_epochs} warm-up epochs, then cosine" if p.warmup_epochs else "cosine")
    stored = p.stored_size
    evaluation = (f"resize {stored} → centre crop {p.image_size}" if stored != p.image_size else f"{p.image_size} px")
    if p.test_crops == 10:
        evaluation += f"; test: ten crops of {p.image_size}" + (f" from {stored}" if stored != p.image_size else "")
    return {"optimizer": f"{p.optimizer}, lr {p.lr:g}" + (f", wd {p.weight_decay:g}" if p.weight_decay else ""),
            "batch": p.batch_size, "schedule": sched, "epochs (at most)": p.max_epochs, "early stopping": stop,
            "loss": p.loss, "training augmentation": p.augment, "evaluation": evaluation, "runs per cell": p.num_runs}


def protocol_table() -> pd.DataFrame:
    """One row per protocol the ``paper`` profile runs: DART 2021 classification and segmentation (Version 1),
    MedIA 2025 segmentation (Version 2, the architectures and data-size sections), and the tasks whose own values
    differ (DRIVE)."""
    seg = create_task("siim_ptx", "paper").protocol
    rows = [("DART 2021 and MedIA 2025 classification (every classification task)",
             create_task("chestxray14", "paper").protocol),
            ("DART 2021 segmentation, Version 1 (U-Net, ResNet-50)", seg),
            ("DRIVE (the paper's own values: 512 px, batch 16, BCE, 10 runs)", create_task("drive", "paper").protocol),
            ("MedIA 2025 segmentation, Version 2 (UPerNet on ConvNeXt and Swin; architectures and data-size "
             "sections)", dataclasses.replace(seg, **PAPER_SEG_V2))]
    return pd.DataFrame([{"protocol": what, **_describe(p)} for what, p in rows])


# What the original code sets, field by field (Version1/ and Version2/ of the original repository, REPORTED.md §5);
# a test holds the paper profile's protocols to these values, so a change to either is a listed deviation or a bug.
ORIGINAL = {
    "chestxray14": dict(optimizer="adam", lr=2e-4, batch_size=32, scheduler="plateau", lr_factor=0.5, lr_patience=5,
                        patience=10, max_epochs=1000, stop_rule="original", test_crops=10, eval_crop=224 / 256,
                        image_size=224, augment="paper_cls", loss="bce", warmup_epochs=0),
    "siim_ptx": dict(optimizer="adam", lr=1e-3, batch_size=32, scheduler="cosine", patience=20, max_epochs=200,
                     stop_rule="original", eval_crop=1.0, image_size=224, augment="paper_seg", loss="dice",
                     warmup_epochs=0),
    "drive": dict(optimizer="adam", lr=1e-3, batch_size=16, scheduler="cosine", patience=20, max_epochs=200,
                  stop_rule="original", image_size=512, augment="paper_seg", loss="bce", num_runs=10),
    "media_segmentation": dict(PAPER_SEG_V2),
}

DEVIATIONS = (
    Deviation("random-resized crop source",
              "RandomResizedCrop(224) from the full-size image (1024 px for ChestX-ray14)",
              "RandomResizedCrop(224) from the image stored at 256 px",
              "the prepared cache holds every image once at 256 px (the resize the original's evaluation uses); "
              "full-size images would not fit in memory for a batched device pipeline. Crops keep the same field of "
              "view and are upsampled from fewer source pixels when small."),
    Deviation("validation augmentation (segmentation)",
              "the training augmentations were also applied to the validation set (a bug)",
              "validation and test images are never augmented",
              "early stopping on augmented validation loss is noisy and not what the papers describe"),
    Deviation("CheXpert uncertain labels (LSR-Ones)",
              "uniform 0.55–0.85 drawn anew every time an image is loaded (every epoch)",
              "drawn once per image, seeded by its id",
              "labels are part of the prepared data, so every run and epoch sees the same targets; the mean and range "
              "are the original's"),
    Deviation("Dice on DRIVE", "over the whole image (the field-of-view mask is not used)",
              "only pixels inside the field of view count, in the loss and in Dice",
              "the black border outside the fundus is trivially background and inflates Dice"),
    Deviation("which Dice", "the logs hold a global pixel Dice and a per-image mean Dice; the papers do not say "
                            "which they report", "per-image mean Dice (threshold 0.5)",
              "the per-image mean weights every patient equally; the choice is stated on every page"),
    Deviation("std across runs", "np.std: the population std (ddof = 0)", "the sample std (ddof = 1)",
              "the sample std is what a t-test uses; re-derivations from the papers' numbers try both"),
    Deviation("significance test", "p-values printed; no test in the code",
              "Student's two-sample t-test on the runs of each cell (and, against the papers' summaries, a t-test "
              "from mean ± std with a stated number of runs)", "the papers do not say which test they used"),
    Deviation("runs per cell", "not printed except for DRIVE (10)", "10 (the maintainers' figure), `--seeds N` "
              "changes it", "a cell with fewer runs has less power; the count is stated with every table"),
    Deviation("mixed precision (DART 2021 protocols)", "fp32 (Version 1 has no autocast)",
              "bf16 autocast on a GPU that supports it (fp16 with loss scaling otherwise); fp32 on a CPU",
              "about twice the throughput; `--set amp=off` restores fp32 and is part of the run's hash"),
    Deviation("ChestX-ray14 validation list", "the authors' own 75,312 / 11,212 split of train_val_list.txt "
              "(their file is in the repository but not the split rule)",
              "13 % of the train_val_list.txt patients, stratified, seeded (`medbench data splits`)",
              "the same size and a patient-level rule; a lab may install the authors' lists as a listed manifest "
              "($MEDBENCH_SPLITS)"),
    Deviation("segmentation and RSNA PE splits", "no split files published", "patient-level seeded, stratified "
              "cuts frozen in `medbench_core/splits/`", "deterministic on every complete copy"),
    Deviation("granularity figure: training from scratch", "drawn in the Result I figure, no number printed",
              "run as a cell of the paper grid", "the figure shows it; the comparison it gives is part of the "
              "section's table"),
    Deviation("data size: Swin vs ConvNeXt size", "not printed in the table", "Swin-B and ConvNeXt-B",
              "the Base models are the MedIA 2025 release's domain-adapted ones; an assumption, stated here"),
    Deviation("MIMIC-CXR labels", "not printed (the table says MIMIC-II)", "MIMIC-CXR-JPG, 14 CheXpert-labeller "
              "findings, uncertain = negative (U-Zeros), official split",
              "the public release closest to the table's 368K images; the uncertainty policy is an assumption"),
    Deviation("light profiles (smoke, demo, colab)", "the paper's augmentation, resize-and-crop, counter > patience",
              "a random flip and a shift, no resize-and-crop (ten crops of 7/8 of the side, resized back), stop "
              "after `patience` epochs", "minutes on a laptop CPU or a free GPU; `--set augment=paper_cls` and the "
              "other protocol fields restore the original's on any profile", profiles="smoke, demo, colab"),
)


def deviations_table() -> pd.DataFrame:
    """Every difference from the original code: ours (this module) and the augmentations' (``augment``)."""
    from .augment import DEVIATIONS as AUGMENT

    rows = [d.__dict__ for d in DEVIATIONS]
    rows += [{"profiles": "paper", **d} for d in AUGMENT]
    return pd.DataFrame(rows)[["aspect", "original", "medbench", "why", "profiles"]]
