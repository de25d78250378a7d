"""Miniature copies of the papers' datasets in their real on-disk formats, written by the tests.

Each writer puts a few images with the dataset's real file names, CSV headers and file formats (PNG, JPEG, TIFF, GIF,
DICOM written with pydicom, JSRT raw 12-bit big-endian, SIIM run-length strings, MedMNIST npz) under ``root``. The
images are small drawings, SYNTHETIC; only the formats are real. ``mini_manifest`` turns a shipped manifest into one
that fits a miniature copy (same rule, shares instead of exact counts).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from medbench_core.datasets import catalog, formats, splits

RNG = np.random.default_rng(0)


def _img(h: int = 48, w: int = 40, seed: int = 0, rgb: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = (120 + 60 * np.sin(xx / 5 + seed) + rng.normal(0, 10, (h, w))).clip(0, 255).astype(np.uint8)
    return np.stack([base, base // 2, 255 - base], -1) if rgb else base


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.uint8)


def _save(arr: np.ndarray, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def _gif_mask(mask: np.ndarray, path: Path) -> None:
    _save((mask > 0).astype(np.uint8) * 255, path, format="GIF")


def write_dicom(path: Path, pixels: np.ndarray, *, patient: str = "P0", photometric: str = "MONOCHROME2",
                slope: float = 1.0, intercept: float = 0.0, z: float | None = None, window=None) -> None:
    """A real DICOM file (explicit VR little endian, uncompressed) holding ``pixels`` (uint8/uint16/int16)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.Modality = patient, "CT" if z is not None else "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if z is not None:
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def mini_manifest(dataset: str, folder: Path) -> Path:
    """The shipped manifest of ``dataset`` with its rule kept and the exact sizes replaced by shares, written to
    ``folder`` (use it as ``$MEDBENCH_SPLITS``)."""
    m = splits.load_manifest(dataset)
    m.pop("expected", None)
    rule = m["split"]
    if rule["method"] == "listed":
        rule = m["split"] = dict(rule["derived_from"])
        m["fractions"] = m["fractions"]["derived_from"]
    if "counts" in rule:
        total = sum(rule.pop("counts").values())
        rule["shares"] = {"train": 0.6, "val": 0.2, "test": 0.2} if total else {}
    if rule.get("val", {}).get("count"):
        rule["val"] = {"share": 0.25}
    m["notes"] = "miniature copy for tests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset}.json"
    path.write_text(json.dumps(m))
    return path


# -- writers: each returns the --root to pass -------------------------------------------------------------------------

def chestxray14(root: Path, patients: int = 12) -> Path:
    rows, test, trainval = [], [], []
    for p in range(1, patients + 1):
        for k in range(2):
            name = f"{p:08d}_{k:03d}.png"
            findings = ["No Finding"] if (p + k) % 3 == 0 else ["Effusion", "Mass"][: 1 + (p % 2)]
            rows.append(f"{name},{'|'.join(findings)},{k},{p},{40 + p:03d}Y,M,PA,2500,2048,0.143,0.143")
            _save(_img(seed=p * 10 + k), root / f"images_{1 + p // 7:03d}" / "images" / name)
            (test if p % 4 == 0 else trainval).append(name)
    head = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
            "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join([head] + rows) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(trainval) + "\n")
    return root


def chexpert(root: Path, patients: int = 10) -> Path:
    folder = root / "CheXpert-v1.0-small"
    head = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(catalog.CHEXPERT_CLASSES)
    for csv, first, n in (("train.csv", 1, patients), ("valid.csv", 64541, 4)):
        lines = [head]
        split = "train" if csv == "train.csv" else "valid"
        for p in range(first, first + n):
            for view in (("frontal", "Frontal", "AP"), ("lateral", "Lateral", "")):
                rel = f"CheXpert-v1.0-small/{split}/patient{p:05d}/study1/view1_{view[0]}.jpg"
                _save(_img(seed=p), root / rel, format="JPEG")
                vals = [RNG.choice(["1.0", "0.0", "", "-1.0"]) if split == "train" else
                        RNG.choice(["1.0", "0.0"]) for _ in catalog.CHEXPERT_CLASSES]
                lines.append(f"{rel},Female,{60 + p % 20},{view[1]},{view[2]}," + ",".join(vals))
        (folder / csv).write_text("\n".join(lines) + "\n")
    return folder


def _nlm(root: Path, prefix: str, n: int, masks: bool) -> Path:
    for i in range(1, n + 1):
        name = f"{prefix}_{i:04d}_{i % 2}.png"
        _save(_img(60, 50, seed=i), root / "CXR_png" / name)
        if masks:
            _save(_disc(60, 50, 30, 15, 10) * 255, root / "ManualMask" / "leftMask" / name)
            _save(_disc(60, 50, 30, 36, 9) * 255, root / "ManualMask" / "rightMask" / name)
    return root


def shenzhen(root: Path, n: int = 12) -> Path:
    return _nlm(root, "CHNCXR", n, masks=False)


def montgomery(root: Path, n: int = 12) -> Path:
    return _nlm(root, "MCUCXR", n, masks=True)


def siim_ptx(root: Path, n: int = 12, size: int = 64) -> tuple[Path, dict]:
    """Returns the root and the masks written (ImageId -> union mask) to check the decoder against."""
    lines, truth = ["ImageId, EncodedPixels"], {}
    for i in range(n):
        iid = f"1.2.276.0.7230010.3.1.4.{8323329 + i}.1517875{i:03d}.{100 + i}"
        write_dicom(root / "dicom-images-train" / f"study{i}" / f"series{i}" / f"{iid}.dcm", _img(size, size, i),
                    patient=f"patient{i // 2}")
        mask = np.zeros((size, size), np.uint8)
        if i % 2:
            a = _disc(size, size, 20, 20, 6)
            b = _disc(size, size, 40, 44, 4)
            lines += [f"{iid}, {formats.rle_encode(a)}", f"{iid}, {formats.rle_encode(b)}"]
            mask = a | b
        else:
            lines.append(f"{iid}, -1")
        truth[iid] = mask
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    return root, truth


def drive(root: Path) -> Path:
    """All 40 DRIVE images with their real names (small drawings)."""
    for folder, nums, tag in (("training", range(21, 41), "training"), ("test", range(1, 21), "test")):
        for k in nums:
            img = _img(36, 34, seed=k, rgb=True)
            _save(img, root / folder / "images" / f"{k:02d}_{tag}.tif", format="TIFF")
            fov = _disc(36, 34, 18, 17, 15)
            vessels = np.zeros((36, 34), np.uint8)
            vessels[:, 16:18] = 1
            vessels[18, :] = 1
            _gif_mask(vessels, root / folder / "1st_manual" / f"{k:02d}_manual1.gif")
            _gif_mask(fov, root / folder / "mask" / f"{k:02d}_{tag}_mask.gif")
    return root


def jsrt(root: Path, n_nodule: int = 5, n_normal: int = 4) -> Path:
    ids = [f"JPCLN{i:03d}" for i in range(1, n_nodule + 1)] + [f"JPCNN{i:03d}" for i in range(1, n_normal + 1)]
    for k, ident in enumerate(ids):
        raw = (np.linspace(0, 4095, 2048, dtype=np.float32)[None, :].repeat(2048, 0) + k).clip(0, 4095)
        path = root / "All247images" / f"{ident}.IMG"
        path.parent.mkdir(parents=True, exist_ok=True)
        raw.astype(">u2").tofile(path)
        for organ, disc in (("heart", (600, 520, 150)), ("left clavicle", (150, 300, 40)),
                            ("right clavicle", (150, 720, 40))):
            _gif_mask(_disc(1024, 1024, *disc), root / "scr" / "masks" / organ / f"{ident}.gif")
    return root


VINDR_HEAD = ["image_id", "rad_id", "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly",
              "Clavicle fracture", "Consolidation", "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration",
              "Lung Opacity", "Lung cavity", "Lung cyst", "Mediastinal shift", "Nodule/Mass", "Pleural effusion",
              "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD",
              "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding"]


def vindr_cxr(root: Path, n_train: int = 10, n_test: int = 4) -> Path:
    for split, n, readers in (("train", n_train, ("R8", "R9", "R10")), ("test", n_test, ("R11",))):
        lines = [",".join(VINDR_HEAD)]
        for i in range(n):
            iid = f"{split[:2]}{i:030x}"
            write_dicom(root / split / f"{iid}.dicom", (_img(40, 40, i).astype(np.uint16) * 16),
                        photometric="MONOCHROME1")
            for r, reader in enumerate(readers):
                vals = [0] * (len(VINDR_HEAD) - 2)
                vals[-1] = int(i % 3 == 0)
                vals[-4] = int(i % 3 == 1 and r < 2)  # pneumonia by two of three readers
                lines.append(f"{iid},{reader}," + ",".join(map(str, vals)))
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"image_labels_{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def busi(root: Path, per_class: int = 4) -> Path:
    base = root / "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        for i in range(1, per_class + 1):
            _save(_img(44, 52, seed=i), base / cls / f"{cls} ({i}).png")
            mask = _disc(44, 52, 20, 20, 8) if cls != "normal" else np.zeros((44, 52), np.uint8)
            _save(mask * 255, base / cls / f"{cls} ({i})_mask.png")
            if cls == "benign" and i == 1:
                _save(_disc(44, 52, 30, 40, 5) * 255, base / cls / f"{cls} ({i})_mask_1.png")
    return root


RSNA_HEAD = ("StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,pe_present_on_image,negative_exam_for_pe,qa_motion,"
             "qa_contrast,flow_artifact,rv_lv_ratio_gte_1,rv_lv_ratio_lt_1,leftsided_pe,chronic_pe,"
             "true_filling_defect_not_pe,rightsided_pe,acute_and_chronic_pe,central_pe,indeterminate")


def rsna_pe(root: Path, studies: int = 6, slices: int = 5) -> Path:
    lines = [RSNA_HEAD]
    for s in range(studies):
        study, series = f"6897fa9de{s:03d}", f"43e7c2b3c{s:03d}"
        order = RNG.permutation(slices)  # file names in a different order than the slices' positions
        for k in range(slices):
            sop = f"c0f3cb03{s:03d}{k:03d}"
            hu = np.full((32, 32), -800 + 100 * order[k], np.int16)
            write_dicom(root / "train" / study / series / f"{sop}.dcm", (hu + 1024).astype(np.int16),
                        intercept=-1024.0, z=float(order[k]) * 2.5, patient=study)
            pe = int(s % 2 == 1 and order[k] >= 2)
            lines.append(f"{study},{series},{sop},{pe},{int(s % 2 == 0)}" + ",0" * 12)
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def medmnist(root: Path, flag: str, size: int = 64, n=(20, 8, 8)) -> Path:
    title, classes, kind, channels = catalog.MEDMNIST[flag]
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, size, size) + ((3,) if channels == 3 else ())
        arrays[f"{split}_images"] = RNG.integers(0, 255, shape, dtype=np.uint8)
        if kind == "multilabel":
            arrays[f"{split}_labels"] = RNG.integers(0, 2, (count, len(classes)), dtype=np.uint8)
        else:
            k = 2 if kind == "binary" else len(classes)
            arrays[f"{split}_labels"] = (np.arange(count) % k).astype(np.uint8)[:, None]
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / f"{flag}_{size}.npz", **arrays)
    return root
