"""The papers' fine-tuning protocols next to ours, and every difference between the original code and medbench.

Two registries feed the methods page: ``protocol_table`` (what each protocol of the ``paper`` profile does, read from
the task registry and the sections, so it cannot drift from what runs) and ``DEVIATIONS`` (each difference from the
original code that remains, with the reason). Differences in augmentation come from ``augment.DEVIATIONS``; the rest
are here. The original code's own values, with file and line, are in ``original`` (``data/original_protocol.csv``);
a deviation that covers a field there names it in ``fields`` (``scope.field``, wildcards allowed), and a test holds
every paper-profile run to those facts: a difference that is neither the original's value nor listed is a bug.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from .datasets.splits import describe_split, fraction_size
from .profiles import ORIGINAL
from .tasks import PAPER_SEG_V2, create_task


@dataclass(frozen=True)
class Deviation:
    aspect: str
    original: str  # what the original code (or the papers) did
    medbench: str  # what we do
    why: str
    profiles: str = "paper"  # where it applies
    fields: tuple[str, ...] = ()  # the facts of the original it covers: "scope.field", fnmatch wildcards allowed


def _describe(p) -> dict:
    stop = (f"stop when epochs without a lower val loss exceed {p.patience}" if p.stop_rule == "original"
            else f"stop after {p.patience} epochs without a lower val loss")
    cosine = "cosine, set per epoch as the original" if p.scheduler == "cosine_original" else "cosine"
    sched = (f"plateau (×{p.lr_factor} after {p.lr_patience})" if p.scheduler == "plateau" else
             f"{p.warmup_epochs} warm-up epochs (from 0), then {cosine}" if p.warmup_epochs else cosine)
    loss = {"dice_batch": "Dice over the whole batch", "dice": "Dice per image", "bce": "BCE"}.get(p.loss, p.loss)
    norm = {"init": "the initialisation's", "imagenet": "ImageNet's", "none": "none ([0, 1])"}[p.normalization]
    stored = p.stored_size
    evaluation = (f"resize {stored} → centre crop {p.image_size}" if stored != p.image_size else f"{p.image_size} px")
    if p.test_crops == 10:
        evaluation += f"; test: ten crops of {p.image_size}" + (f" from {stored}" if stored != p.image_size else "")
    return {"optimizer": f"{p.optimizer}, lr {p.lr:g}" + (f", wd {p.weight_decay:g}" if p.weight_decay else ""),
            "batch": p.batch_size, "schedule": sched, "epochs (at most)": p.max_epochs, "early stopping": stop,
            "loss": loss, "training augmentation": p.augment, "input normalisation": norm, "evaluation": evaluation,
            "head (ConvNeXt, Swin)": "the original's UPerNet" if p.upernet == "original" else "",
            "runs per cell": p.num_runs}


def protocol_table() -> pd.DataFrame:
    """One row per protocol the ``paper`` profile runs: DART 2021 classification and segmentation (Version 1),
    MedIA 2025 segmentation (Version 2, the architectures and data-size sections), and the tasks whose own values
    differ (DRIVE)."""
    seg = create_task("siim_ptx", ORIGINAL).protocol
    rows = [("DART 2021 and MedIA 2025 classification (every classification task)",
             create_task("chestxray14", ORIGINAL).protocol),
            ("DART 2021 segmentation, Version 1 (U-Net, ResNet-50)", seg),
            ("DRIVE (the paper's own values: 512 px, batch 16, BCE, 10 runs)", create_task("drive", ORIGINAL).protocol),
            ("MedIA 2025 segmentation, Version 2 (UPerNet on ConvNeXt and Swin; architectures and data-size "
             "sections)", dataclasses.replace(seg, **PAPER_SEG_V2))]
    return pd.DataFrame([{"protocol": what, **_describe(p)} for what, p in rows])


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
    Deviation("mixed precision", "fp32 (Version 1, and Version 2's classification: no autocast); Version 2's "
              "segmentation: fp16 autocast with a loss scaler",
              "bf16 autocast on a GPU that supports it (fp16 with loss scaling otherwise); fp32 on a CPU",
              "about twice the throughput, and bf16 needs no loss scaling; `--set amp=off` restores fp32 and "
              "`--set amp=fp16` Version 2's choice; the setting is part of the run's hash",
              fields=("*.amp",)),
    Deviation("DRIVE batch size", "the code's default, 32 (`--train_batch_size`; the README's DRIVE command passes "
              "none)", "16", "the DART 2021 paper prints 16 for DRIVE (REPORTED.md); we follow the paper's text where "
              "it names a value the code does not", fields=("drive.batch_size",)),
    Deviation("DRIVE training images", "SA-UNet's offline-augmented copy of the 20 training images (rotations, "
              "Gaussian noise, colour jitter and flips, per its README), no online augmentation",
              "the 20 training images without augmentation (`augment=none`, as the original trains)",
              "the augmented copy is SA-UNet's data, made by a script that is not published, and its draw cannot be "
              "rebuilt; a lab holding that copy can prepare it as the DRIVE training folder"),
    Deviation("Swin feature levels (UPerNet)", "taps after each stage's patch merging: strides 8, 16, 32 and 32, "
              "widths 2C, 4C, 8C and 8C", "each stage's output as timm's feature extractor gives it: strides 4 to "
              "32, widths C to 8C, with the original's head width (2C, 256 for Swin-B)",
              "timm's Swin merges patches at the start of a stage, so the original's taps are not among its "
              "features; the head (bins, width, dropout, stochastic depth) is the original's"),
    Deviation("image resizing", "PIL bilinear (classification), OpenCV nearest neighbour (segmentation images and "
              "masks), OpenCV bilinear (DRIVE)", "PIL's area-averaging (box) filter when an image is prepared at "
              "its stored size; masks by nearest neighbour", "images are prepared once and cached; box filtering "
              "does not alias when shrinking 1024 px radiographs to 256 px"),
    Deviation("classification head initialisation", "the new linear layer re-initialised N(0, 0.01), bias 0, after "
              "the weights are loaded (Version1/models.py 105-112)", "timm's own initialisation of the new head",
              "a change of the head's starting scale only; listed so that nothing differs silently"),
    Deviation("RSNA PE protocol", "no script or dataset class in Version1/ or Version2/ (only a link to the data)",
              "the DART 2021 classification protocol on slices (2.5-D input, lung window)",
              "an assumption: `sweep --plan` marks its cells and their share of the GPU-hours, and the book marks "
              "its reported numbers as resting on an assumed protocol"),
    Deviation("ChestX-ray14 and Shenzhen splits", "the authors' own lists in Version1/dataset/: ChestX-ray14 "
              "75,312 / 11,212 / 25,596 (their cut of train_val_list.txt, and the official test list), Shenzhen "
              "463 / 65 / 134", "by default, cuts of the same sizes: ChestX-ray14's validation is 13 % of the "
              "train_val_list.txt patients, Shenzhen's a patient-level cut, both stratified and seeded; after "
              "`medbench data splits --authors`, the authors' lists themselves",
              "the lists come under the original project's non-commercial licence, so medbench fetches them on "
              "request (checked by sha256) instead of shipping them; the manifest in use is recorded with every "
              "run"),
    Deviation("segmentation, CheXpert and RSNA PE splits", "no split files in the original repository (CheXpert: "
              "the official csv files, no validation list)", "patient-level seeded, stratified cuts frozen in "
              "`medbench_core/splits/`", "deterministic on every complete copy"),
    Deviation("granularity figure: training from scratch", "drawn in the Result I figure, no number printed",
              "run as a cell of the paper grid", "the figure shows it; the comparison it gives is part of the "
              "section's table"),
    Deviation("data size: Swin vs ConvNeXt size", "not printed in the table", "Swin-B and ConvNeXt-B",
              "the Base models are the MedIA 2025 release's domain-adapted ones; an assumption, stated here"),
    Deviation("MIMIC-CXR labels", "not printed (the table says MIMIC-II)", "MIMIC-CXR-JPG, 14 CheXpert-labeller "
              "findings, uncertain = negative (U-Zeros), official split",
              "the public release closest to the table's 368K images; the uncertainty policy is an assumption"),
    Deviation("light profiles (smoke, demo, colab)", "the paper's augmentation, resize-and-crop, counter > patience, "
              "ImageNet (or no) normalisation, batch-wide Dice, the original's cosine steps and UPerNet head",
              "a random flip and a shift, no resize-and-crop (ten crops of 7/8 of the side, resized back), stop "
              "after `patience` epochs, the normalisation each initialisation's weights expect, Dice per image, "
              "torch's cosine, segmentation-models-pytorch's UPerNet", "minutes on a laptop CPU or a free GPU, and "
              "the miniature backbones at 32-64 px have fewer than the original head's four feature levels; "
              "`--set augment=paper_cls` and the other protocol fields restore the original's on any profile",
              profiles="smoke, demo, colab"),
)


def covering_deviation(scope: str, field: str, arch: str = "") -> Deviation | None:
    """The listed deviation that covers ``field`` of ``scope`` (of ``arch``), if any.

    Example:
        >>> covering_deviation("drive", "batch_size").aspect
        'DRIVE batch size'
        >>> covering_deviation("drive", "lr") is None
        True
    """
    import fnmatch

    names = [f"{scope}.{field}", f"{scope}:{arch}.{field}"]
    return next((d for d in DEVIATIONS if any(fnmatch.fnmatchcase(n, pat) for pat in d.fields for n in names)), None)


def deviations_table() -> pd.DataFrame:
    """Every difference from the original code: ours (this module) and the augmentations' (``augment``)."""
    from .augment import DEVIATIONS as AUGMENT

    rows = [{f.name: getattr(d, f.name) for f in dataclasses.fields(d) if f.name != "fields"} for d in DEVIATIONS]
    rows += [{"profiles": "paper", **d} for d in AUGMENT]
    return pd.DataFrame(rows)[["aspect", "original", "medbench", "why", "profiles"]]


_SIZE_DATASETS = {"ChestX-ray14": "chestxray14", "CheXpert": "chexpert", "MIMIC-II": "mimic_cxr"}


def sizes_table() -> pd.DataFrame:
    """Every training-set size the papers print (``reported.csv``'s ``labelled_images``) beside ours on the ``paper``
    profile (``datasets.sizes.split_images``: exact from a frozen list or count, else estimated from the release), and why
    they differ. The papers count labelled images, validation included; our fractions are drawn from the training
    split only (validation is never subsampled)."""
    import re

    from .papers import load_reported
    from .datasets.sizes import split_images
    from .tasks import get_task_spec, list_tasks

    rep = load_reported()
    rep = rep[rep["labelled_images"].notna()].drop_duplicates(["task", "dataset", "labelled_images"])
    rows = []
    for r in rep.itertuples():
        ds = str(r.dataset) if isinstance(r.dataset, str) else ""
        m = re.match(r"(.+?)\s*\((\d+)%\)", ds)
        fraction = int(m.group(2)) / 100 if m else 1.0
        name = _SIZE_DATASETS.get(m.group(1) if m else ds) or next(
            t for t in list_tasks() if get_task_spec(t).analog_of == r.task and not get_task_spec(t).synthetic)
        counts, how = split_images(create_task(name, ORIGINAL))
        train = fraction_size(fraction, counts["train"])
        labelled = counts["train"] + counts["val"]
        paper = int(float(r.labelled_images))
        place = 10 ** (len(str(paper)) - len(str(paper).rstrip("0")))  # the papers print rounded figures (86K)
        close = lambda a: abs(a - paper) <= max(place / 2, 0.005 * paper)  # noqa: E731
        if close(train):
            why = "the same, at the paper's rounding"
        elif fraction == 1 and close(labelled):
            why = (f"the paper counts training and validation images ({counts['train']:,} + {counts['val']:,} "
                   f"here); we train on {train:,} and stop on the rest")
        elif fraction < 1 and close(fraction_size(fraction, labelled)):
            why = (f"the paper's {fraction:.0%} is of training and validation images; ours is {fraction:.0%} of the "
                   "training split only (validation is never subsampled)")
        else:
            why = (f"the paper's split is not published; ours: {describe_split(get_task_spec(name).source)} "
                   f"(`medbench_core/splits/`)")
        rows.append({"the papers print": f"{paper:,} ({r.section}, {ds or r.task})", "task": f"`{name}`",
                     "our training images": f"{train:,}" + (f" ({fraction:.0%})" if fraction < 1 else ""),
                     "ours with validation": f"{labelled:,}" if fraction == 1 else "",
                     "how sure": how, "why they differ": why})
    return pd.DataFrame(rows)
