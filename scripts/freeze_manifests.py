"""Write the frozen split manifests shipped in medbench_core/splits/ (maintainers only; the files are committed).

Rule manifests fix how a complete copy of a dataset is split (see medbench_core/datasets/splits.py). Where the
dataset's image ids are public and fixed (DRIVE, JSRT), the rule is applied here once and the lists are written
out, so the split can be read without the data. Re-running this script must not change any committed file: a change
of split is a new manifest version, and results record the manifest's sha.

    python scripts/freeze_manifests.py
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medbench_core.datasets import splits

OUT = Path(__file__).resolve().parents[1] / "medbench_core" / "splits"
FRACTIONS = {"values": list(splits.FRACTIONS), "method": "stratified-prefix", "seed": 0}

RULES = {
    "chestxray14": dict(unit="patient", split={"method": "official", "seed": 0, "val": {"share": 0.13}},
                        expected={"total": 112120, "test": 25596},
                        notes="Test: the official test_list.txt. Validation: 13 % of the patients of "
                              "train_val_list.txt (the authors' 75,312 / 11,212 images is 13.0 %; their own list "
                              "is not public), stratified by any finding vs no finding."),
    "chexpert": dict(unit="patient", split={"method": "official", "seed": 0, "val": {"share": 0.1}},
                     expected={"test": 234},
                     notes="Test: the official validation set (valid.csv, 234 images, 5 scored labels). "
                           "Validation: 10 % of the training patients."),
    "shenzhen": dict(unit="patient", split={"method": "patient-cut", "seed": 0,
                                            "counts": {"train": 463, "val": 65, "test": 134}},
                     expected={"total": 662},
                     notes="The authors' sizes (463 / 65 / 134); their lists are not public. One image per "
                           "patient; stratified by tuberculosis label."),
    "montgomery": dict(unit="patient", split={"method": "patient-cut", "seed": 0,
                                              "counts": {"train": 96, "val": 14, "test": 28}},
                       expected={"total": 138},
                       notes="No split was published (70 / 10 / 20 %); one image per patient; stratified by "
                             "tuberculosis label."),
    "siim_ptx": dict(unit="patient", split={"method": "patient-cut", "seed": 0,
                                            "shares": {"train": 0.7, "val": 0.1, "test": 0.2}},
                     notes="No split with labels was published for the test images; 70 / 10 / 20 % of the "
                           "patients (DICOM PatientID), stratified by pneumothorax present or not."),
    "vindr_cxr": dict(unit="image", split={"method": "official", "seed": 0, "val": {"share": 0.1}},
                      expected={"total": 18000, "test": 3000},
                      notes="Test: the official test set (3,000 images, consensus labels). Validation: 10 % of "
                            "the training images (no patient ids are published)."),
    "busi": dict(unit="image", split={"method": "patient-cut", "seed": 0,
                                      "counts": {"train": 546, "val": 78, "test": 156}},
                 expected={"total": 780},
                 notes="No split was published (70 / 10 / 20 %); no patient ids are published, so the unit is the "
                       "image; stratified by benign / malignant / normal."),
    "rsna_pe": dict(unit="study", split={"method": "patient-cut", "seed": 0,
                                         "shares": {"train": 0.7, "val": 0.1, "test": 0.2}},
                    notes="Only the competition's training studies have labels; 70 / 10 / 20 % of the studies, "
                          "stratified by whether a study has any PE slice."),
}
MEDMNIST_SIZES = {"chestmnist": (78468, 11219, 22433), "pneumoniamnist": (4708, 524, 624),
                  "breastmnist": (546, 78, 156), "organamnist": (34561, 6491, 17778)}  # medmnist's INFO
for flag, (tr, va, te) in MEDMNIST_SIZES.items():
    RULES[flag] = dict(unit="image", split={"method": "official", "seed": 0},
                       expected={"train": tr, "val": va, "test": te},
                       notes="The official train / val / test arrays of the MedMNIST+ file.")


def listed(name: str, index: pd.DataFrame, rule: dict, notes: str, unit: str = "patient") -> dict:
    manifest = {"dataset": name, "version": 1, "unit": unit, "split": rule, "fractions": FRACTIONS}
    split = splits.assign_splits(index, manifest)
    lists = {s: sorted(index.loc[split == s, "id"]) for s in splits.SPLITS}
    train = index[split == "train"]
    fracs = splits.fraction_ids(train, manifest)
    return {"dataset": name, "version": 1, "unit": unit, "notes": notes,
            "split": {"method": "listed", "derived_from": rule, "lists": lists},
            "expected": {s: len(v) for s, v in lists.items()},
            "fractions": {"values": list(splits.FRACTIONS), "method": "listed", "derived_from": FRACTIONS,
                          "lists": fracs}}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    out = {name: {"dataset": name, "version": 1, **r, "fractions": FRACTIONS} for name, r in RULES.items()}
    drive = pd.DataFrame({"id": [f"{i:02d}_test" for i in range(1, 21)] + [f"{i}_training" for i in range(21, 41)]})
    drive["patient"], drive["stratum"] = drive["id"], "all"
    drive["official_split"] = ["test"] * 20 + ["train"] * 20
    out["drive"] = listed("drive", drive, {"method": "official", "seed": 0, "val": {"count": 4}},
                          "Test: the official 20 test images. Validation: 4 of the 20 training images.")
    jsrt = pd.DataFrame({"id": [f"JPCLN{i:03d}" for i in range(1, 155)] + [f"JPCNN{i:03d}" for i in range(1, 94)]})
    jsrt["patient"] = jsrt["id"]
    jsrt["stratum"] = ["nodule"] * 154 + ["no nodule"] * 93
    out["jsrt"] = listed("jsrt", jsrt, {"method": "patient-cut", "seed": 0,
                                        "counts": {"train": 173, "val": 25, "test": 49}},
                         "All 247 JSRT images (154 with a nodule, 93 without); 70 / 10 / 20 %, stratified by nodule.")
    for name, m in out.items():
        (OUT / f"{name}.json").write_text(json.dumps(m, indent=1) + "\n")
        print(name, m["split"]["method"], m.get("expected", ""))


if __name__ == "__main__":
    main()
