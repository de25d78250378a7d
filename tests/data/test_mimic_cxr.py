"""MIMIC-CXR-JPG in the catalog, on a miniature copy in the release's layout: its three CSV files (gzipped as
PhysioNet ships them, or not) with their real headers, and small JPEGs at files/p1X/p<subject>/s<study>/<dicom>.jpg.
The pixels are synthetic drawings; the layout and headers are the release's. ``mimic_cxr`` is the writer
(test_datasets.py uses it too)."""
from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import realdata as rd
from medbench_core.cli import main
from medbench_core.data import load_task_data
from medbench_core.datasets import MissingDataError, catalog, check, get_dataset, prepare, splits
from medbench_core.datasets.prepare import index_with_splits, read_meta
from medbench_core.tasks import create_task

LABEL_HEAD = ("subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,"
              "Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,"
              "Support Devices")
SPLIT_HEAD = "dicom_id,study_id,subject_id,split"
META_HEAD = ("dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,"
             "StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
             "PatientOrientationCodeSequence_CodeMeaning")
# subject -> official split: 6 train, 1 validate, 2 test (each subject has 2 studies of a PA and a lateral view)
SUBJECTS = {10000032: "train", 10000764: "train", 10000898: "train", 10000935: "train", 10000980: "train",
            11000011: "train", 12000022: "validate", 13000033: "test", 14000044: "test"}


def dicom_id(subject: int, study: int, k: int) -> str:
    h = hashlib.sha1(f"{subject}/{study}/{k}".encode()).hexdigest()
    return "-".join(h[i:i + 8] for i in range(0, 40, 8))  # 02aa804e-bde0afdd-112c0b34-7bc16630-4e384014


def image_path(root: Path, subject: int, study: int, dicom: str) -> Path:
    return root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"


def write_csv(path: Path, lines: list[str], gz: bool) -> None:
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


def mimic_cxr(root: Path, gz: bool = True, subjects: dict[int, str] = SUBJECTS) -> Path:
    """Write the copy; returns the --root (the folder holding files/ and the CSVs, as in physionet.org/files/
    mimic-cxr-jpg/2.0.0/). Labels cycle through 1.0, 0.0, -1.0 and blank."""
    labels, split, meta = [LABEL_HEAD], [SPLIT_HEAD], [META_HEAD]
    values = ["1.0", "0.0", "-1.0", ""]
    for n, (subject, official) in enumerate(subjects.items()):
        for j in range(2):
            study = 50000000 + n * 10 + j
            vals = [values[(n + j + c) % 4] for c in range(14)]
            labels.append(f"{subject},{study}," + ",".join(vals))
            for k, (view, code) in enumerate((("PA", "postero-anterior"), ("LATERAL", "lateral"))):
                d = dicom_id(subject, study, k)
                rd._save(rd._img(40, 36, seed=n * 4 + j * 2 + k), image_path(root, subject, study, d), format="JPEG")
                split.append(f"{d},{study},{subject},{official}")
                meta.append(f"{d},{subject},{study},CHEST (PA AND LAT),{view},3056,2544,21800506,213014.531,"
                            f"CHEST (PA AND LAT),{code},Erect")
    for name, lines in (("chexpert", labels), ("split", split), ("metadata", meta)):
        write_csv(root / f"mimic-cxr-2.0.0-{name}.csv", lines, gz)
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "splits"))
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_index_official_split_labels_and_views(env, gz):
    root = mimic_cxr(env / "mimic", gz=gz)
    index, manifest = index_with_splits("mimic_cxr", root)  # the shipped manifest: the official split as is
    assert manifest["split"] == {"method": "official", "seed": 0} and manifest["unit"] == "patient"
    assert len(index) == 9 * 2 * 2 and index["id"].is_unique
    by_subject = index.groupby("patient")["split"].agg(set).to_dict()
    assert by_subject == {str(s): {"val" if o == "validate" else o} for s, o in SUBJECTS.items()}
    assert splits.split_leaks(index, index["split"]) == []
    assert splits.counts(index["split"]) == {"train": 24, "val": 4, "test": 8}
    # labels: -1 kept for the task's policy, blank is 0, per study (both views of a study share them)
    first = index[index["study"] == "50000000"]
    cols = [catalog._col(c) for c in catalog.CHEXPERT_CLASSES]
    order = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
             "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
             "Pneumothorax", "Support Devices"]  # the file's column order; values 1.0, 0.0, -1.0, blank, ...
    written = {c: [1.0, 0.0, -1.0, 0.0][k % 4] for k, c in enumerate(order)}
    assert first[cols].values.tolist() == [[written[c] for c in catalog.CHEXPERT_CLASSES]] * 2
    assert set(np.unique(index[cols].values)) == {-1.0, 0.0, 1.0}
    assert dict(zip(first["view"], first["frontal"])) == {"PA": True, "LATERAL": False}
    assert index["path"].str.contains(r"/files/p1\d/p1\d{7}/s5\d{7}/[0-9a-f-]{44}\.jpg$").all()


def test_loader_reads_grey_jpegs_and_the_labels_of_the_row(env):
    root = mimic_cxr(env / "mimic")
    ds = get_dataset("mimic_cxr")
    index = ds.index(root)
    img, y = ds.load(root, index.head(1), {})[0]
    assert img.dtype == np.uint8 and img.shape == (40, 36)  # grey, H x W
    assert y.tolist() == index[[catalog._col(c) for c in catalog.CHEXPERT_CLASSES]].iloc[0].tolist()


def test_doctor_names_a_missing_file(env):
    root = mimic_cxr(env / "mimic")
    (root / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    rep = check("mimic_cxr", root)
    assert not rep.ok
    text = str(rep)
    for words in ("split file: nothing matches mimic-cxr-2.*-split.csv.gz or mimic-cxr-2.*-split.csv",
                  "physionet.org/content/mimic-cxr-jpg", "files/p1X/p1XXXXXXX/sXXXXXXXX/<dicom_id>.jpg"):
        assert words in text, text
    root = mimic_cxr(env / "mimic2")
    gone = next((root / "files").rglob("*.jpg"))
    gone.unlink()
    with pytest.raises(MissingDataError, match=re.escape(f"1 of 36 images named in mimic-cxr-2.0.0-metadata.csv.gz "
                                                         f"not found, e.g. {gone}")):
        get_dataset("mimic_cxr").index(root)
    assert main(["data", "check", "mimic_cxr", "--root", str(root)]) == 1


def test_an_unknown_split_value_is_named(env):
    root = mimic_cxr(env / "mimic", subjects={**SUBJECTS, 15000055: "valid"})
    with pytest.raises(MissingDataError, match="has split value.s. 'valid'; the release has only train, validate"):
        get_dataset("mimic_cxr").index(root)


def test_studies_without_labels_are_left_out(env):
    root = mimic_cxr(env / "mimic", gz=False)
    path = root / "mimic-cxr-2.0.0-chexpert.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(l for l in lines if ",50000001," not in l) + "\n")
    index = get_dataset("mimic_cxr").index(root)
    assert len(index) == 34 and "50000001" not in set(index["study"])


def test_check_prepare_and_load(env):
    root = mimic_cxr(env / "mimic")
    rd.mini_manifest("mimic_cxr", env / "splits")
    rep = check("mimic_cxr", root)
    assert rep.ok, str(rep)
    assert "split rule: official train / val / test" in str(rep)
    folder = prepare("mimic_cxr", root, profile="smoke", workers=1, progress=False)
    meta = read_meta(folder)
    assert meta["counts"] == {"train": 24, "val": 4, "test": 8}
    spec = create_task("mimic_cxr", "smoke")
    data = load_task_data(spec)
    size = spec.protocol.image_size
    assert data["train"].images.shape == (24, 1, size, size)
    assert data["test"].targets.shape == (8, 14)
    assert set(np.unique(data["train"].targets)) == {0.0, 1.0}  # U-Zeros: uncertain mapped to 0 on loading
    raw = np.load(folder / "train_targets.npy")
    assert (raw == -1).any()  # the cache keeps -1, so the task's policy decides


def test_frontal_only_keeps_pa_and_ap(env):
    import dataclasses

    from medbench_core.tasks import get_task_spec

    root = mimic_cxr(env / "mimic")
    spec = dataclasses.replace(get_task_spec("mimic_cxr"), options={"uncertainty": "u_zeros", "frontal_only": True})
    index, _ = index_with_splits(spec, root)
    assert len(index) == 18 and set(index["view"]) == {"PA"}
