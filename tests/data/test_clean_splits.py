"""Clean splits or a refusal: a copy whose official lists put a patient in two splits, or leave an image in none, is
refused by prepare, by the doctor and by `medbench data prepare`, naming the patients and their files, before any
decoding. Miniature copies in the real layouts (tests/realdata.py, tests/data/test_mimic_cxr.py)."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

import realdata as rd
from test_mimic_cxr import mimic_cxr
from medbench_core.cli import main
from medbench_core.data import load_task_data
from medbench_core.datasets import check, get_dataset, load_prepared, prepare, splits
from medbench_core.datasets.prepare import index_with_splits
from medbench_core.tasks import create_task


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "splits"))
    return tmp_path


def refused_everywhere(task: str, root, env, capsys, *words: str) -> str:
    """Assert that prepare, check and the CLI refuse the copy with ``words`` in the message, and nothing is cached."""
    with pytest.raises(splits.UncleanSplitError) as e:
        prepare(task, root, profile="smoke", workers=1, progress=False)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    rep = check(task, root)
    assert not rep.ok and all(w in str(rep) for w in words), str(rep)
    assert main(["data", "prepare", task, "--root", str(root), "--profile", "smoke", "--workers", "1"]) == 4  # the lists' content
    assert words[0] in capsys.readouterr().err
    assert not (env / "cache" / "prepared").exists()  # refused before any decoding
    return msg


def edit_lines(path, keep=lambda line: True, add=()):
    lines = [x for x in path.read_text().splitlines() if keep(x)]
    path.write_text("\n".join(lines + list(add)) + "\n")


# -- the function ---------------------------------------------------------------------------------------------------

def test_split_leaks_names_patients_and_their_files_per_split():
    index = pd.DataFrame({"id": ["a1", "a2", "a3", "b1", "c1", "c2"], "patient": ["A", "A", "A", "B", "C", "C"]})
    split = pd.Series(["train", "test", "val", "train", "test", "test"])
    assert splits.split_leaks(index, split) == [("A", {"train": ["a1"], "val": ["a3"], "test": ["a2"]})]
    assert splits.split_leaks(index, ["test"] * 6) == []


def test_the_message_shows_five_patients_then_a_count():
    n = 8
    index = pd.DataFrame({"id": [f"{p}_{k}.png" for p in range(n) for k in range(5)],
                          "patient": [str(p) for p in range(n) for _ in range(5)], "stratum": "x",
                          "official_split": ["train", "train", "train", "train", "test"] * n})
    manifest = {"dataset": "chestxray14", "unit": "patient", "split": {"method": "official", "seed": 0}}
    with pytest.raises(splits.UncleanSplitError) as e:
        splits.assign_splits(index, manifest, lists="train_val_list.txt and test_list.txt")
    assert str(e.value) == (
        "8 patient(s) in more than one split (evaluation would see patients that training saw):\n"
        "  patient 0: train 0_0.png, 0_1.png, 0_2.png (+1 more); test 0_4.png\n"
        "  patient 1: train 1_0.png, 1_1.png, 1_2.png (+1 more); test 1_4.png\n"
        "  patient 2: train 2_0.png, 2_1.png, 2_2.png (+1 more); test 2_4.png\n"
        "  patient 3: train 3_0.png, 3_1.png, 3_2.png (+1 more); test 3_4.png\n"
        "  patient 4: train 4_0.png, 4_1.png, 4_2.png (+1 more); test 4_4.png\n"
        "  and 3 more\n"
        "Restore train_val_list.txt and test_list.txt from the release (remove any edited copy), then run the "
        "command again")


# -- ChestX-ray14 ---------------------------------------------------------------------------------------------------

def cxr14(env):
    root = rd.chestxray14(env / "cxr14")
    rd.mini_manifest("chestxray14", env / "splits")
    return root


def test_chestxray14_patient_in_both_official_lists_is_refused(env, capsys):
    root = cxr14(env)  # patient 1: 00000001_000.png and 00000001_001.png in train_val_list.txt
    edit_lines(root / "train_val_list.txt", keep=lambda x: x != "00000001_001.png")
    edit_lines(root / "test_list.txt", add=["00000001_001.png"])
    msg = refused_everywhere("chestxray14", root, env, capsys, "1 patient(s) in more than one split",
                             "patient 1: train 00000001_000.png; test 00000001_001.png",
                             "Restore train_val_list.txt and test_list.txt from the release")
    assert "\n  and " not in msg


def test_chestxray14_image_in_both_lists_is_refused(env, capsys):
    root = cxr14(env)
    edit_lines(root / "test_list.txt", add=["00000001_000.png", "00000001_001.png"])  # also left in train_val
    refused_everywhere("chestxray14", root, env, capsys,
                       "patient 1: train 00000001_000.png, 00000001_001.png; test 00000001_000.png, 00000001_001.png")


def test_chestxray14_image_in_no_list_is_refused_not_put_in_train(env, capsys):
    root = cxr14(env)
    edit_lines(root / "train_val_list.txt", keep=lambda x: not x.startswith(("00000002_", "00000003_000")))
    refused_everywhere("chestxray14", root, env, capsys,
                       "3 image(s) of this copy are in no official split list, e.g. 00000002_000.png, "
                       "00000002_001.png, 00000003_000.png; medbench does not guess their split: restore "
                       "train_val_list.txt and test_list.txt")


def test_the_official_lists_as_released_pass(env):
    root = cxr14(env)
    index, _ = index_with_splits("chestxray14", root)
    assert splits.split_leaks(index, index["split"]) == [] and splits.patients_disjoint(index, index["split"])
    assert check("chestxray14", root).ok


# -- CheXpert, VinDr-CXR, MIMIC-CXR ---------------------------------------------------------------------------------

def test_chexpert_patient_in_train_and_valid_is_refused(env, capsys):
    root = rd.chexpert(env / "chexpert")
    rd.mini_manifest("chexpert", env / "splits")
    rel = "CheXpert-v1.0-small/valid/patient00003/study2/view1_frontal.jpg"  # a training patient in valid.csv
    rd._save(rd._img(seed=3), env / "chexpert" / rel, format="JPEG")
    row = next(x for x in (root / "train.csv").read_text().splitlines() if "patient00003" in x)
    edit_lines(root / "valid.csv", add=[rel + row[row.index(","):]])
    refused_everywhere("chexpert", root, env, capsys, "patient patient00003: train ",
                       "; test valid/patient00003/study2/view1_frontal.jpg", "Restore train.csv and valid.csv")


def test_vindr_image_in_both_label_files_is_refused(env, capsys):
    root = rd.vindr_cxr(env / "vindr")
    rd.mini_manifest("vindr_cxr", env / "splits")
    iid = "tr" + f"{1:030x}"
    (root / "test" / f"{iid}.dicom").write_bytes((root / "train" / f"{iid}.dicom").read_bytes())
    row = next(x for x in (root / "annotations" / "image_labels_train.csv").read_text().splitlines()
               if x.startswith(iid))
    edit_lines(root / "annotations" / "image_labels_test.csv", add=[row])
    refused_everywhere("vindr_cxr", root, env, capsys, "1 image(s) in more than one split",
                       f"image {iid}: train {iid}; test {iid}")


def test_mimic_subject_in_two_splits_is_refused(env, capsys):
    root = mimic_cxr(env / "mimic", gz=False)
    rd.mini_manifest("mimic_cxr", env / "splits")
    path = root / "mimic-cxr-2.0.0-split.csv"  # one study of train subject 10000764 moved to test
    path.write_text(re.sub(r"(,50000011,10000764,)train", r"\1test", path.read_text()))
    msg = refused_everywhere("mimic_cxr", root, env, capsys, "1 patient(s) in more than one split",
                             "patient 10000764: train ", "Restore mimic-cxr-2.0.0-split.csv.gz from the release")
    study = get_dataset("mimic_cxr").index(root).query("study == '50000011'")["id"]
    assert all(i in msg for i in study)  # the moved images are named under test


def test_mimic_image_missing_from_the_split_file_is_refused(env, capsys):
    root = mimic_cxr(env / "mimic", gz=False)
    rd.mini_manifest("mimic_cxr", env / "splits")
    lines = (root / "mimic-cxr-2.0.0-split.csv").read_text().splitlines()
    gone = lines[1].split(",")[0]
    edit_lines(root / "mimic-cxr-2.0.0-split.csv", keep=lambda x: not x.startswith(gone))
    refused_everywhere("mimic_cxr", root, env, capsys,
                       f"1 image(s) of this copy are in no official split list, e.g. {gone};")


# -- seeded cuts: disjoint by construction ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, write", [("rsna_pe", rd.rsna_pe), ("siim_ptx", lambda r: rd.siim_ptx(r)[0]),
                                         ("shenzhen", rd.shenzhen)])
def test_seeded_cuts_keep_each_unit_in_one_split(task, write, env):
    root = write(env / task)
    rd.mini_manifest(task, env / "splits")
    index, manifest = index_with_splits(task, root)
    assert splits.split_leaks(index, index["split"]) == [] and splits.patients_disjoint(index, index["split"])
    assert index.groupby("patient").size().max() > 1 or task == "shenzhen"  # units of several images stay together
    if task == "rsna_pe":
        assert manifest["unit"] == "study" and (index["patient"] == index["path"].str.split("/").str[-3]).all()


# -- a prepared copy -------------------------------------------------------------------------------------------------

def test_a_prepared_copy_with_an_image_in_two_splits_is_refused(env):
    root = rd.shenzhen(env / "shenzhen")
    rd.mini_manifest("shenzhen", env / "splits")
    folder = prepare("shenzhen", root, profile="smoke", workers=1, progress=False)
    spec = create_task("shenzhen", "smoke")
    assert len(load_task_data(spec)["test"]) > 0
    meta = json.loads((folder / "meta.json").read_text())
    leaked = meta["ids"]["train"][0]
    meta["ids"]["test"] = meta["ids"]["test"][:-1] + [leaked]  # as a cache prepared from edited lists would hold
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(splits.UncleanSplitError, match=rf"has 1 image\(s\) in two splits, e.g. {leaked}; restore "
                                                       r".* medbench data prepare shenzhen --root PATH --profile "
                                                       r"smoke --force"):
        load_prepared(spec)
