"""The papers' datasets: where to get each, its on-disk layout, how to index it and how to decode one item.

An index is a DataFrame with one row per image: ``id`` (unique, stable), ``patient`` (the split unit), ``stratum``
(what splits and fractions are stratified by), optionally ``official_split`` and ``group`` (rows decoded together,
such as the slices of one CT series), and the dataset's own columns (paths, labels). ``load`` turns rows into
uint8 images (H x W, or H x W x 3) and targets (label vectors, or masks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .._registry import Registry
from ..labels import CHEXPERT_CLASSES, CHEXPERT_TEST, CXR14_CLASSES, MEDMNIST, VINDR_CLASSES  # noqa: F401 (re-exported)
from ..targets import IGNORE
from . import formats


class MissingDataError(FileNotFoundError):
    """A dataset's files are missing or incomplete. The message says what, where, and how to obtain it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    paper_code: str  # the papers' task code (DXC14, TXC, ...); "colab" for MedMNIST+
    obtain: str  # where users get it
    licence: str
    layout: tuple[str, ...]  # the expected files, relative to --root
    channels: int  # 1 grey, 3 colour or 2.5-D slices
    index: Callable[[Path, dict | None], pd.DataFrame] = field(repr=False)  # opts: size
    load: Callable[[Path, pd.DataFrame, dict], list] = field(repr=False)  # rows of one group -> [(image, target)]
    notes: str = ""
    split_files: str = ""  # the files holding an official split: named when an edited copy of them is refused

    def missing(self, problems: list[str]) -> MissingDataError:
        lines = [f"dataset {self.name!r} ({self.title}) is missing or incomplete:"]
        lines += [f"  - {p}" for p in problems]
        lines += ["expected layout under --root:"] + [f"    {x}" for x in self.layout]
        lines += [f"obtain it from: {self.obtain} ({self.licence})"]
        return MissingDataError("\n".join(lines))


_DATASETS: Registry[Dataset] = Registry("dataset")


def get_dataset(name: str) -> Dataset:
    return _DATASETS.get(name)


def list_datasets() -> list[str]:
    return _DATASETS.names()


def _register(ds: Dataset) -> Dataset:
    return _DATASETS.register(ds.name, ds)


# -- helpers --------------------------------------------------------------------------------------------------------

def _find_one(root: Path, patterns: tuple[str, ...], what: str, problems: list[str]) -> Path | None:
    for pat in patterns:
        hits = sorted(root.glob(pat))
        if hits:
            return hits[0]
    problems.append(f"{what}: nothing matches {' or '.join(patterns)} under {root}")
    return None


def _files_by_stem(root: Path, pattern: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted(root.glob(pattern))}


def _per_row(fn):
    """A ``load`` that decodes each row on its own."""
    def load(root: Path, rows: pd.DataFrame, opts: dict) -> list:
        return [fn(root, r, opts) for r in rows.itertuples(index=False)]
    return load


def _labels_of(row, classes) -> np.ndarray:
    return np.array([getattr(row, _col(c)) for c in classes], dtype=np.float32)


def _col(name: str) -> str:
    return "y_" + re.sub(r"\W+", "_", name).strip("_").lower()


def _csv(path: Path, columns: tuple[str, ...], problems: list[str]) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as e:  # noqa: BLE001
        problems.append(f"cannot read {path}: {e}")
        return None
    df.columns = [c.strip() for c in df.columns]
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        problems.append(f"{path} lacks column(s) {', '.join(lacking)} (has: {', '.join(df.columns[:8])}...)")
        return None
    return df


# -- NIH ChestX-ray14 (DXC14) ---------------------------------------------------------------------------------------

def _index_cxr14(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems: list[str] = []
    entry = _find_one(root, ("Data_Entry_2017*.csv",), "label file", problems)
    test_list = _find_one(root, ("test_list.txt",), "official test list", problems)
    trainval = _find_one(root, ("train_val_list.txt",), "official train/val list", problems)
    images = _files_by_stem(root, "images*/**/*.png") or _files_by_stem(root, "images*/*.png")
    if not images:
        problems.append(f"images: no PNG files in {root}/images*/ (the NIH release unpacks to images_001/images/...)")
    if problems:
        raise get_dataset("chestxray14").missing(problems)
    df = _csv(entry, ("Image Index", "Finding Labels", "Patient ID"), problems)
    if df is None:
        raise get_dataset("chestxray14").missing(problems)
    test = set(test_list.read_text().split())
    train = set(trainval.read_text().split())
    out = pd.DataFrame({"id": df["Image Index"].str.strip(), "patient": df["Patient ID"].str.strip()})
    out["official_split"] = ["test" if i in test else "train" if i in train else "" for i in out["id"]]  # "": neither
    both = out["id"].isin(test & train)  # an edited list: one row per list, so the split check names the image
    out = pd.concat([out, out[both].assign(official_split="train")], ignore_index=True)
    df = pd.concat([df, df[both.values]], ignore_index=True)
    findings = df["Finding Labels"].str.split("|")
    for c in CXR14_CLASSES:
        out[_col(c)] = [float(c in f) for f in findings]
    out["stratum"] = np.where(out[[_col(c) for c in CXR14_CLASSES]].sum(axis=1) > 0, "finding", "no finding")
    out["path"] = [str(images[Path(i).stem]) if Path(i).stem in images else "" for i in out["id"]]
    return out


def _load_cxr14(root, row, opts):
    return formats.read_image(row.path), _labels_of(row, CXR14_CLASSES)


# -- CheXpert (DXC5) -----------------------------------------------------------------------------------------------

def _chexpert_path(root: Path, rel: str) -> Path:
    """CSV paths start with the release folder ("CheXpert-v1.0-small/train/..."); --root may be that folder or its
    parent."""
    p = root.parent / rel
    if p.exists():
        return p
    parts = Path(rel).parts
    return root / Path(*parts[1:]) if len(parts) > 1 else root / rel


def _index_chexpert(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems: list[str] = []
    cols = ("Path", "Frontal/Lateral") + CHEXPERT_CLASSES
    frames = []
    for name, official in (("train.csv", "train"), ("valid.csv", "test")):
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: not found at {path}")
            continue
        df = _csv(path, cols, problems)
        if df is not None:
            df["official_split"] = official
            frames.append(df)
    if problems:
        raise get_dataset("chexpert").missing(problems)
    df = pd.concat(frames, ignore_index=True)
    out = pd.DataFrame({"id": df["Path"].str.split("/", n=1).str[1], "official_split": df["official_split"]})
    out["patient"] = df["Path"].str.extract(r"(patient\d+)")[0].fillna(out["id"])
    out["frontal"] = df["Frontal/Lateral"].str.lower().eq("frontal")
    for c in CHEXPERT_CLASSES:  # 1 positive, 0 negative, -1 uncertain, blank not mentioned (0)
        out[_col(c)] = pd.to_numeric(df[c].replace("", "0"), errors="coerce").fillna(0.0).astype(np.float32)
    out["stratum"] = np.where(out[_col("No Finding")] == 1, "no finding", "finding")
    out["path"] = [str(_chexpert_path(root, p)) for p in df["Path"]]
    return out


def _load_chexpert(root, row, opts):
    return formats.read_image(row.path), _labels_of(row, CHEXPERT_CLASSES)


UNCERTAINTY_POLICIES = ("lsr_ones", "u_ones", "u_zeros")


def apply_uncertainty(labels: np.ndarray, policy: str, ids) -> np.ndarray:
    """Map CheXpert's uncertain labels (-1): U-Ones to 1, U-Zeros to 0, LSR-Ones (the paper's default) to a value
    drawn uniformly from [0.55, 0.85], fixed per image and label by a hash of the image id (the same every run).

    Example:
        >>> apply_uncertainty(np.array([[-1.0, 1.0, 0.0]]), "u_zeros", ["a"]).tolist()
        [[0.0, 1.0, 0.0]]
    """
    labels = np.asarray(labels, np.float32).copy()
    unc = labels < 0
    if policy == "u_ones":
        labels[unc] = 1.0
    elif policy == "u_zeros":
        labels[unc] = 0.0
    elif policy == "lsr_ones":
        import hashlib

        for i, ident in enumerate(ids):
            if unc[i].any():
                seed = int(hashlib.sha256(f"lsr|{ident}".encode()).hexdigest()[:8], 16)
                draws = np.random.default_rng(seed).uniform(0.55, 0.85, labels.shape[1]).astype(np.float32)
                labels[i, unc[i]] = draws[unc[i]]
    else:
        raise ValueError(f"unknown uncertainty policy {policy!r}; valid: {', '.join(UNCERTAINTY_POLICIES)}")
    return labels


# -- Shenzhen (TXC) and Montgomery (LXS) -----------------------------------------------------------------------------

def _index_nlm(root: Path, prefix: str, dataset: str, masks: bool) -> pd.DataFrame:
    problems: list[str] = []
    images = sorted((root / "CXR_png").glob(f"{prefix}_*.png"))
    if not images:
        problems.append(f"images: no {prefix}_####_{{0,1}}.png files in {root / 'CXR_png'}")
    rows = []
    for p in images:
        m = re.fullmatch(rf"{prefix}_(\d+)_([01])", p.stem)
        if not m:
            continue
        row = {"id": p.stem, "patient": p.stem, "stratum": m.group(2), "y_tb": float(m.group(2)), "path": str(p)}
        if masks:
            for side in ("left", "right"):
                mp = root / "ManualMask" / f"{side}Mask" / p.name
                if not mp.is_file():
                    problems.append(f"{side} lung mask of {p.stem}: not found at {mp}")
                row[f"{side}_mask"] = str(mp)
        rows.append(row)
    if problems:
        raise get_dataset(dataset).missing(problems[:20] + ([f"... and {len(problems) - 20} more"]
                                                           if len(problems) > 20 else []))
    return pd.DataFrame(rows)


def _load_shenzhen(root, row, opts):
    return formats.read_image(row.path), np.array([row.y_tb], np.float32)


def _load_montgomery(root, row, opts):
    img = formats.read_image(row.path)
    mask = formats.read_mask(row.left_mask) | formats.read_mask(row.right_mask)  # lungs = left union right
    if mask.shape != img.shape:
        raise formats.CorruptFileError(f"lung masks of {row.id} are {mask.shape}, the image is {img.shape}")
    return img, mask


# -- SIIM-ACR pneumothorax (PXS) -----------------------------------------------------------------------------------

def _index_siim(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems: list[str] = []
    rle = _find_one(root, ("train-rle.csv", "stage_2_train.csv", "*/train-rle.csv"), "run-length masks", problems)
    dicoms = _files_by_stem(root, "**/*.dcm")
    if not dicoms:
        problems.append(f"images: no .dcm files under {root} (dicom-images-train/<study>/<series>/<ImageId>.dcm)")
    if problems:
        raise get_dataset("siim_ptx").missing(problems)
    df = _csv(rle, ("ImageId", "EncodedPixels"), problems)
    if df is None:
        raise get_dataset("siim_ptx").missing(problems)
    rles = df.groupby("ImageId")["EncodedPixels"].agg(list)  # several rows per image: one per pneumothorax
    lacking = [i for i in rles.index if i not in dicoms]
    if lacking:
        raise get_dataset("siim_ptx").missing([f"{len(lacking)} DICOM file(s) named in {rle.name} not found, e.g. "
                                              f"{', '.join(lacking[:3])}"])
    import pydicom

    patients = []
    for i in rles.index:
        try:
            patients.append(str(pydicom.dcmread(dicoms[i], stop_before_pixels=True, specific_tags=["PatientID"])
                                .get("PatientID", i)) or i)
        except Exception as e:  # noqa: BLE001
            raise formats.CorruptFileError(f"cannot read the DICOM header of {dicoms[i]}: {e}") from None
    positive = [any(str(r).strip() not in ("-1", "") for r in v) for v in rles.values]
    return pd.DataFrame({"id": rles.index, "patient": patients, "stratum": np.where(positive, "pneumothorax", "none"),
                         "path": [str(dicoms[i]) for i in rles.index], "rle": ["|".join(v) for v in rles.values]})


def _load_siim(root, row, opts):
    img = formats.read_dicom(row.path)
    mask = np.zeros(img.shape, np.uint8)
    for r in row.rle.split("|"):
        mask |= formats.rle_decode(r, *img.shape)
    return img, mask


# -- DRIVE (VFS) ---------------------------------------------------------------------------------------------------

def _index_drive(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems, rows = [], []
    for folder, tag, official in (("training", "training", "train"), ("test", "test", "test")):
        images = sorted((root / folder / "images").glob(f"*_{tag}.tif"))
        if not images:
            problems.append(f"{folder} images: no *_{tag}.tif files in {root / folder / 'images'}")
        for p in images:
            num = p.stem.split("_")[0]
            manual = root / folder / "1st_manual" / f"{num}_manual1.gif"
            fov = root / folder / "mask" / f"{num}_{tag}_mask.gif"
            for what, q in (("vessel annotation", manual), ("field-of-view mask", fov)):
                if not q.is_file():
                    problems.append(f"{what} of image {num}: not found at {q}")
            rows.append({"id": p.stem, "patient": p.stem, "stratum": "all", "official_split": official,
                         "path": str(p), "manual": str(manual), "fov": str(fov)})
    if problems:
        raise get_dataset("drive").missing(problems)
    return pd.DataFrame(rows)


def _load_drive(root, row, opts):

    img = formats.read_image(row.path, "RGB")
    vessels, fov = formats.read_mask(row.manual), formats.read_mask(row.fov)
    return img, np.where(fov > 0, vessels, IGNORE).astype(np.uint8)  # outside the field of view: not scored


# -- JSRT + SCR (CXS, HXS) -----------------------------------------------------------------------------------------

SCR_ORGANS = {"heart": ("heart",), "clavicles": ("left clavicle", "right clavicle"),
              "lungs": ("left lung", "right lung")}


def _index_jsrt(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems, rows = [], []
    images = _files_by_stem(root, "**/*.IMG") or _files_by_stem(root, "**/*.img")
    if not images:
        problems.append(f"images: no JSRT .IMG files (JPCLN###.IMG, JPCNN###.IMG) under {root}")
    masks: dict[tuple[str, str], Path] = {}
    for organ in {o for v in SCR_ORGANS.values() for o in v}:
        for p in root.glob(f"**/masks/{organ}/*.gif"):
            masks[(organ, p.stem)] = p
    if images and not masks:
        problems.append(f"SCR masks: no scr/masks/<organ>/<id>.gif files under {root} (SCR is a separate download)")
    for stem, p in sorted(images.items()):
        row = {"id": stem, "patient": stem, "stratum": "nodule" if stem.upper().startswith("JPCLN") else "no nodule",
               "path": str(p)}
        for organ in ("heart", "left clavicle", "right clavicle"):
            q = masks.get((organ, stem))
            if q is None and masks:
                problems.append(f"SCR {organ} mask of {stem}: not found (expected .../masks/{organ}/{stem}.gif)")
            row[organ.replace(" ", "_")] = str(q or "")
        rows.append(row)
    if problems:
        raise get_dataset("jsrt").missing(problems[:20])
    return pd.DataFrame(rows)


def _load_jsrt(root, row, opts):
    img = formats.read_jsrt(row.path)
    organs = SCR_ORGANS[opts.get("target", "heart")]
    mask = None
    for organ in organs:
        m = formats.read_mask(getattr(row, organ.replace(" ", "_")))
        mask = m if mask is None else mask | m
    # SCR masks are drawn at 1024 x 1024, the JSRT image is 2048 x 2048: bring the image to the mask's grid
    if mask.shape != img.shape:
        img = formats.resize(img, mask.shape[0]) if mask.shape[0] == mask.shape[1] else img
    return img, mask


# -- VinDr-CXR (MedIA 2025) ----------------------------------------------------------------------------------------

def _vindr_labels(df: pd.DataFrame, problems: list[str], path: Path) -> pd.DataFrame | None:
    cols = {c.lower().rstrip("s"): c for c in df.columns}
    names = {}
    for c in VINDR_CLASSES:
        key = c.lower().rstrip("s")
        if key not in cols:
            problems.append(f"{path} lacks the label column {c!r}")
            return None
        names[c] = cols[key]
    vals = df[["image_id"]].copy()
    for c, src in names.items():
        vals[_col(c)] = pd.to_numeric(df[src], errors="coerce").fillna(0.0)
    # the training set has three readers per image: a label is positive when most readers marked it
    return vals.groupby("image_id").mean().ge(0.5).astype(np.float32).reset_index()


def _index_vindr(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems, frames = [], []
    for split in ("train", "test"):
        csv = _find_one(root, (f"image_labels_{split}.csv", f"annotations/image_labels_{split}.csv"),
                        f"{split} labels", problems)
        if csv is None:
            continue
        df = _csv(csv, ("image_id",), problems)
        lab = _vindr_labels(df, problems, csv) if df is not None else None
        if lab is None:
            continue
        files = _files_by_stem(root / split, "*.dicom") or _files_by_stem(root / split, "*.dcm")
        lacking = [i for i in lab["image_id"] if i not in files]
        if lacking:
            problems.append(f"{len(lacking)} {split} DICOM file(s) not found in {root / split}, e.g. {lacking[0]}")
            continue
        lab["path"] = [str(files[i]) for i in lab["image_id"]]
        lab["official_split"] = split
        frames.append(lab)
    if problems:
        raise get_dataset("vindr_cxr").missing(problems)
    out = pd.concat(frames, ignore_index=True).rename(columns={"image_id": "id"})
    out["patient"] = out["id"]  # VinDr-CXR is de-identified per image: no patient id is published
    out["stratum"] = np.where(out[_col("No finding")] == 1, "no finding", "finding")
    return out


def _load_vindr(root, row, opts):
    return formats.read_dicom(row.path), _labels_of(row, VINDR_CLASSES)


# -- MIMIC-CXR-JPG (MedIA 2025 data size) ---------------------------------------------------------------------------

MIMIC_SPLITS = {"train": "train", "validate": "val", "test": "test"}
FRONTAL_VIEWS = ("PA", "AP")


def _index_mimic(root: Path, opts: dict | None = None) -> pd.DataFrame:
    """One row per image of the metadata file (and of the split file): the official split (validate = val), the
    study's 14 CheXpert-labeller labels (-1 uncertain kept for the task's policy, blank 0) and the view. Images of
    studies without a label row are left out; an image in no split keeps ``official_split`` "" and is refused."""
    ds, problems = get_dataset("mimic_cxr"), []
    files = {k: _find_one(root, (f"mimic-cxr-2.*-{k}.csv.gz", f"mimic-cxr-2.*-{k}.csv"), f"{k} file", problems)
             for k in ("chexpert", "split", "metadata")}
    if problems:
        raise ds.missing(problems)
    keys = ("dicom_id", "subject_id", "study_id")
    labels = _csv(files["chexpert"], ("subject_id", "study_id") + CHEXPERT_CLASSES, problems)
    split = _csv(files["split"], keys + ("split",), problems)
    meta = _csv(files["metadata"], keys + ("ViewPosition",), problems)
    if problems:
        raise ds.missing(problems)
    odd = sorted(set(split["split"]) - set(MIMIC_SPLITS))
    if odd:
        raise ds.missing([f"{files['split']} has split value(s) {', '.join(map(repr, odd[:5]))}; the release "
                          f"has only {', '.join(MIMIC_SPLITS)}"])
    # outer: an image listed in one file only is kept, so an edited split file is refused rather than followed
    df = meta[list(keys) + ["ViewPosition"]].merge(split[list(keys) + ["split"]], on=list(keys), how="outer")
    df = df.fillna("").merge(labels[["subject_id", "study_id", *CHEXPERT_CLASSES]], on=["subject_id", "study_id"])
    paths = [root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{st}" / f"{d}.jpg"
             for d, s, st in zip(df["dicom_id"], df["subject_id"], df["study_id"])]
    lacking = [p for p in paths if not p.is_file()]
    if lacking:
        raise ds.missing([f"{len(lacking)} of {len(paths)} images named in {files['metadata'].name} not found, "
                          f"e.g. {lacking[0]}"])
    out = pd.DataFrame({"id": df["dicom_id"], "patient": df["subject_id"], "study": df["study_id"],
                        "official_split": df["split"].map(MIMIC_SPLITS).fillna(""), "view": df["ViewPosition"]})
    out["frontal"] = out["view"].isin(FRONTAL_VIEWS)
    for c in CHEXPERT_CLASSES:  # 1 positive, 0 negative, -1 uncertain, blank not mentioned (0)
        out[_col(c)] = pd.to_numeric(df[c].replace("", "0"), errors="coerce").fillna(0.0).astype(np.float32)
    out["stratum"] = np.where(out[_col("No Finding")] == 1, "no finding", "finding")
    out["path"] = [str(p) for p in paths]
    return out


# -- Breast ultrasound (BUSI) ----------------------------------------------------------------------------------------

def _index_busi(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems, rows = [], []
    for cls in ("benign", "malignant", "normal"):
        folder = next((p for p in (root / cls, root / "Dataset_BUSI_with_GT" / cls) if p.is_dir()), None)
        if folder is None:
            problems.append(f"class folder {cls}/: not found under {root}")
            continue
        for p in sorted(folder.glob("*.png")):
            if "_mask" in p.stem:
                continue
            masks = sorted(folder.glob(f"{glob_escape(p.stem)}_mask*.png"))
            if not masks:
                problems.append(f"mask of {p.name}: no {p.stem}_mask.png in {folder}")
            rows.append({"id": p.stem, "patient": p.stem, "stratum": cls, "path": str(p),
                         "masks": "|".join(str(m) for m in masks)})
    if problems:
        raise get_dataset("busi").missing(problems[:20])
    return pd.DataFrame(rows)


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def _load_busi(root, row, opts):
    img = formats.read_image(row.path)
    mask = np.zeros(img.shape, np.uint8)
    for m in row.masks.split("|"):  # some lesions have a second mask file (_mask_1): union
        mask |= formats.read_mask(m)
    return img, mask


# -- RSNA PE (ECC) -------------------------------------------------------------------------------------------------

def _index_rsna_pe(root: Path, opts: dict | None = None) -> pd.DataFrame:
    problems: list[str] = []
    csv = _find_one(root, ("train.csv",), "labels", problems)
    if csv is None:
        raise get_dataset("rsna_pe").missing(problems)
    df = _csv(csv, ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "pe_present_on_image"), problems)
    if df is None:
        raise get_dataset("rsna_pe").missing(problems)
    paths = [root / "train" / s / se / f"{so}.dcm" for s, se, so in
             zip(df["StudyInstanceUID"], df["SeriesInstanceUID"], df["SOPInstanceUID"])]
    lacking = [p for p in paths if not p.is_file()]
    if lacking:
        raise get_dataset("rsna_pe").missing([f"{len(lacking)} of {len(paths)} slices named in train.csv not found, "
                                             f"e.g. {lacking[0]}"])
    y = pd.to_numeric(df["pe_present_on_image"]).astype(np.float32)
    return pd.DataFrame({"id": df["SOPInstanceUID"], "patient": df["StudyInstanceUID"],
                         "group": df["SeriesInstanceUID"], "y_pe": y.values,
                         "stratum": np.where(y.groupby(df["StudyInstanceUID"]).transform("max") > 0, "pe", "no pe"),
                         "path": [str(p) for p in paths]})


def _load_rsna_pe(root, rows: pd.DataFrame, opts) -> list:
    """All requested slices of one series: slices sorted along the patient axis, each slice with its neighbours
    above and below as the three channels (2.5-D, edge slices repeat themselves), lung window."""
    series_dir = Path(rows["path"].iloc[0]).parent
    slices = []
    for p in sorted(series_dir.glob("*.dcm")):
        hu, z = formats.read_ct_slice_hu(p)
        slices.append((z, p.stem, formats.window(hu)))
    slices.sort(key=lambda t: t[0])
    pos = {s[1]: i for i, s in enumerate(slices)}
    out = []
    for r in rows.itertuples(index=False):
        i = pos[r.id]
        chans = [slices[max(i - 1, 0)][2], slices[i][2], slices[min(i + 1, len(slices) - 1)][2]]
        out.append((np.stack(chans, -1), np.array([r.y_pe], np.float32)))
    return out


# -- MedMNIST+ -----------------------------------------------------------------------------------------------------

MEDMNIST_SIZES = (28, 64, 128, 224)
MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{name}?download=1"  # MedMNIST+ (v3)
# MD5 of each file, as the medmnist package (v3) lists them
MEDMNIST_MD5 = {
    ("chestmnist", 28): "02c8a6516a18b556561a56cbdd36c4a8", ("chestmnist", 64): "9de6cd0b934ebb5b7426cfba5efbae16",
    ("chestmnist", 128): "db107e5590b27930b62dbaf558aebee3", ("chestmnist", 224): "45bd33e6f06c3e8cdb481c74a89152aa",
    ("pneumoniamnist", 28): "28209eda62fecd6e6a2d98b1501bb15f",
    ("pneumoniamnist", 64): "8f4eceb4ccffa70c672198ea285246c6",
    ("pneumoniamnist", 128): "05b46931834c231683c68f40c47b2971",
    ("pneumoniamnist", 224): "d6a3c71de1b945ea11211b03746c1fe1",
    ("breastmnist", 28): "750601b1f35ba3300ea97c75c52ff8f6", ("breastmnist", 64): "742edef2a1fd1524b2efff4bd7ba9364",
    ("breastmnist", 128): "363e4b3f8d712e9b5de15470a2aaadf1", ("breastmnist", 224): "b56378a6eefa9fed602bb16d192d4c8b",
    ("organamnist", 28): "68e3f8846a6bd62f0c9bf841c0d9eacc", ("organamnist", 64): "2dcccc29b88e6da5a01161ef20cda288",
    ("organamnist", 128): "eeae80d0a227a8d099027e1b3cfd3b60", ("organamnist", 224): "50747347e05c87dd3aaf92c49f9f3170",
}


def medmnist_filename(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def fetch_medmnist(flag: str, size: int, cache_dir=None) -> Path:
    """Download the MedMNIST+ file of ``flag`` at the smallest published size >= ``size`` into
    ``$MEDBENCH_CACHE/downloads/medmnist`` (MD5-checked by pooch); returns the folder (a ``--root``). Offline it fails
    at once with the URL."""
    from ..paths import get_cache_dir, offline

    size = min([s for s in MEDMNIST_SIZES if s >= size] or [max(MEDMNIST_SIZES)])
    folder = get_cache_dir(cache_dir) / "downloads" / "medmnist"
    name = medmnist_filename(flag, size)
    if (folder / name).is_file():
        return folder
    url = MEDMNIST_URL.format(name=name)
    if offline():
        raise get_dataset(flag).missing([f"{name} is not downloaded and this session is offline "
                                         "(HF_HUB_OFFLINE / MEDBENCH_OFFLINE)", f"download {url} into a folder, "
                                         f"then: medbench data prepare {flag} --root FOLDER"])
    import pooch

    try:
        pooch.retrieve(url, known_hash=f"md5:{MEDMNIST_MD5[(flag, size)]}", fname=name, path=folder,
                       progressbar=True)
    except ValueError as e:  # a checksum mismatch
        raise formats.CorruptFileError(f"download of {name} from {url}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise get_dataset(flag).missing([f"downloading {url} failed ({type(e).__name__}: {e})"]) from None
    return folder


def medmnist_file(root: Path, flag: str, size: int) -> Path | None:
    """The npz of ``flag`` whose resolution is the smallest at least ``size`` (else the largest present)."""
    present = {s: root / (f"{flag}.npz" if s == 28 else f"{flag}_{s}.npz") for s in MEDMNIST_SIZES}
    present = {s: p for s, p in present.items() if p.is_file()}
    if not present:
        return None
    fitting = [s for s in present if s >= size]
    return present[min(fitting) if fitting else max(present)]


def _index_medmnist(flag: str):
    def index(root: Path, opts: dict | None = None) -> pd.DataFrame:
        size = int((opts or {}).get("size", 64))
        path = medmnist_file(root, flag, size)
        ds = get_dataset(flag)
        if path is None:
            raise ds.missing([f"no {flag}_{{64,128,224}}.npz (or {flag}.npz at 28 px) in {root}"])
        try:
            with np.load(path) as z:
                labels = {s: z[f"{s}_labels"] for s in ("train", "val", "test")}
        except Exception as e:  # noqa: BLE001
            raise formats.CorruptFileError(f"cannot read {path}: {e} (re-download it)") from None
        rows = []
        for s, lab in labels.items():
            lab = lab.reshape(len(lab), -1)
            for i in range(len(lab)):
                rows.append({"id": f"{s}/{i:06d}", "patient": f"{s}/{i:06d}", "official_split": s,
                             "stratum": ",".join(map(str, lab[i][:1])) if MEDMNIST[flag][2] != "multilabel"
                             else ("finding" if lab[i].any() else "no finding"),
                             "npz": str(path), "split_key": s, "row": i, "group": s})
        return pd.DataFrame(rows)
    return index


def _load_medmnist(flag: str):
    def load(root: Path, rows: pd.DataFrame, opts: dict) -> list:
        kind, n_classes = MEDMNIST[flag][2], len(MEDMNIST[flag][1])
        split = rows["split_key"].iloc[0]
        with np.load(rows["npz"].iloc[0]) as z:
            images, labels = z[f"{split}_images"], z[f"{split}_labels"].reshape(len(z[f"{split}_labels"]), -1)
        out = []
        for i in rows["row"]:
            y = labels[i].astype(np.float32)
            if kind == "multiclass":  # one-hot: trained with cross-entropy, scored with one-vs-rest AUCs
                y = np.eye(n_classes, dtype=np.float32)[int(labels[i][0])]
            out.append((images[i], y[:n_classes]))
        return out
    return load


# -- the registry --------------------------------------------------------------------------------------------------

for _ds in (
    Dataset(name="chestxray14", title="NIH ChestX-ray14", paper_code="DXC14",
            obtain="https://nihcc.app.box.com/v/ChestXray-NIHCC (or Kaggle 'NIH Chest X-rays')",
            licence="open, NIH terms",
            layout=("Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv)", "train_val_list.txt, test_list.txt",
                    "images_001/images/*.png ... (or images/*.png)"),
            channels=1, index=_index_cxr14, load=_per_row(_load_cxr14),
            notes="official test list (25,596 images); validation: patients drawn from train_val_list",
            split_files="train_val_list.txt and test_list.txt"),
    Dataset(name="chexpert", title="CheXpert", paper_code="DXC5",
            obtain="https://stanfordaimi.azurewebsites.net/datasets (registration)",
            licence="Stanford University Dataset Research Use Agreement",
            layout=("train.csv, valid.csv (the folder CheXpert-v1.0 or CheXpert-v1.0-small)",
                    "train/patient#####/study#/view#_frontal.jpg"),
            channels=1, index=_index_chexpert, load=_per_row(_load_chexpert),
            notes="trained on 14 labels, tested on 5 with the official validation set as test set",
            split_files="train.csv and valid.csv"),
    Dataset(name="mimic_cxr", title="MIMIC-CXR-JPG", paper_code="MIMIC",
            obtain="https://physionet.org/content/mimic-cxr-jpg/ (credentialed access)",
            licence="PhysioNet Credentialed Health Data License 1.5.0",
            layout=("mimic-cxr-2.0.0-chexpert.csv.gz, mimic-cxr-2.0.0-split.csv.gz, mimic-cxr-2.0.0-metadata.csv.gz "
                    "(gzipped or not; v2.0.0 or v2.1.0)", "files/p1X/p1XXXXXXX/sXXXXXXXX/<dicom_id>.jpg"),
            channels=1, index=_index_mimic, load=_per_row(_load_chexpert),
            notes="the MedIA 2025 data-size table calls it MIMIC-II; 14 CheXpert-labeller labels (-1 uncertain, "
                  "mapped by the task's policy); official split, validate = val; images of studies without labels "
                  "left out",
            split_files="mimic-cxr-2.0.0-split.csv.gz"),
    Dataset(name="shenzhen", title="Shenzhen chest X-ray set", paper_code="TXC",
            obtain="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets",
            licence="open (NLM)", layout=("CXR_png/CHNCXR_####_{0,1}.png (last digit: 1 tuberculosis)",), channels=1,
            index=lambda root, opts=None: _index_nlm(root, "CHNCXR", "shenzhen", masks=False),
            load=_per_row(_load_shenzhen)),
    Dataset(name="montgomery", title="Montgomery County chest X-ray set", paper_code="LXS",
            obtain="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets",
            licence="open (NLM)",
            layout=("CXR_png/MCUCXR_####_{0,1}.png", "ManualMask/leftMask/MCUCXR_####_{0,1}.png",
                    "ManualMask/rightMask/MCUCXR_####_{0,1}.png"),
            channels=1, index=lambda root, opts=None: _index_nlm(root, "MCUCXR", "montgomery", masks=True),
            load=_per_row(_load_montgomery), notes="lungs = left mask union right mask"),
    Dataset(name="siim_ptx", title="SIIM-ACR Pneumothorax", paper_code="PXS",
            obtain="https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation (registration)",
            licence="Kaggle competition rules",
            layout=("train-rle.csv (or stage_2_train.csv): ImageId, EncodedPixels",
                    "dicom-images-train/<study>/<series>/<ImageId>.dcm"),
            channels=1, index=_index_siim, load=_per_row(_load_siim),
            notes="several rows per image are united; '-1' is an empty mask"),
    Dataset(name="drive", title="DRIVE retinal vessels", paper_code="VFS",
            obtain="https://drive.grand-challenge.org (registration)", licence="research use",
            layout=("training/images/NN_training.tif, training/1st_manual/NN_manual1.gif, "
                    "training/mask/NN_training_mask.gif", "test/images/NN_test.tif, test/1st_manual/"
                    "NN_manual1.gif, test/mask/NN_test_mask.gif"),
            channels=3, index=_index_drive, load=_per_row(_load_drive),
            notes="pixels outside the field-of-view mask are neither trained on nor scored"),
    Dataset(name="jsrt", title="JSRT radiographs with SCR masks", paper_code="CXS/HXS",
            obtain="http://db.jsrt.or.jp/eng.php (registration) + https://www.isi.uu.nl/Research/Databases/SCR/",
            licence="JSRT terms of use; SCR research use",
            layout=("All247images/JPCLN###.IMG, JPCNN###.IMG (raw 2048x2048, "
                    "12-bit big-endian)",
                    "scr/masks/{heart,left clavicle,right clavicle}/JPC*.gif"),
            channels=1, index=_index_jsrt, load=_per_row(_load_jsrt),
            notes="clavicles = left union right; images brought to the masks' 1024 px"),
    Dataset(name="vindr_cxr", title="VinDr-CXR", paper_code="VinDr",
            obtain="https://physionet.org/content/vindr-cxr/ (credentialed access)",
            licence="PhysioNet Credentialed Health Data License",
            layout=("annotations/image_labels_{train,test}.csv",
                    "train/<image_id>.dicom, test/<image_id>.dicom"),
            channels=1, index=_index_vindr, load=_per_row(_load_vindr),
            notes="six image-level diagnoses; training labels by majority of readers",
            split_files="image_labels_train.csv and image_labels_test.csv"),
    Dataset(name="busi", title="Breast ultrasound images (BUSI)", paper_code="BUS",
            obtain="https://scholar.cu.edu.eg/?q=afahmy/pages/dataset", licence="CC BY 4.0",
            layout=("Dataset_BUSI_with_GT/{benign,malignant,normal}/<name>.png and <name>_mask.png",), channels=1,
            index=_index_busi, load=_per_row(_load_busi), notes="second lesion masks (_mask_1) are united"),
    Dataset(name="rsna_pe", title="RSNA STR Pulmonary Embolism", paper_code="ECC",
            obtain="https://www.kaggle.com/c/rsna-str-pulmonary-embolism-detection (registration)",
            licence="Kaggle competition rules",
            layout=("train.csv (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, "
                    "pe_present_on_image, ...)", "train/<study>/<series>/<SOP>.dcm"),
            channels=3, index=_index_rsna_pe, load=_load_rsna_pe,
            notes="slice-level PE: each slice with its two neighbours as channels (2.5-D), lung window -600/1500 HU"),
):
    _register(_ds)

for _flag, (_title, _classes, _kind, _ch) in MEDMNIST.items():
    _register(Dataset(name=_flag, title=f"MedMNIST+ {_title}", paper_code="colab",
                      obtain="https://zenodo.org/records/10519652 (or `pip install medmnist` and its download command)",
                      licence="CC BY 4.0 (per source dataset)",
                      layout=(f"{_flag}_64.npz, {_flag}_128.npz or {_flag}_224.npz "
                              f"({_flag}.npz at 28 px)",),
                      channels=_ch, index=_index_medmnist(_flag), load=_load_medmnist(_flag),
                      notes="official train/val/test splits of the file", split_files=f"{_flag}_<size>.npz"))
