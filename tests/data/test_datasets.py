"""The real datasets' loaders, manifests, preprocessing cache and doctor, on miniature copies in the real formats
(tests/realdata.py writes them; the pixels are synthetic drawings, the formats are the datasets' own)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import realdata as rd
from test_mimic_cxr import mimic_cxr
from medbench_core.cli import main
from medbench_core.data import load_task_data, train_subset
from medbench_core.datasets import (CorruptFileError, MissingDataError, apply_uncertainty, catalog, check, formats,
                                    get_dataset, list_datasets, prepare, splits)
from medbench_core.datasets.prepare import index_with_splits, read_meta
from medbench_core.tasks import IGNORE, create_task, get_task_spec, list_tasks

REAL_TASKS = [t for t in list_tasks() if not get_task_spec(t).synthetic]
WRITERS = {
    "chestxray14": rd.chestxray14, "chexpert": rd.chexpert, "chexpert_uones": rd.chexpert,
    "chexpert_uzeros": rd.chexpert, "chexpert_frontal": rd.chexpert, "mimic_cxr": mimic_cxr,
    "shenzhen": rd.shenzhen, "montgomery": rd.montgomery,
    "siim_ptx": lambda r: rd.siim_ptx(r)[0], "drive": rd.drive, "jsrt_clavicle": rd.jsrt, "jsrt_heart": rd.jsrt,
    "vindr_cxr": rd.vindr_cxr, "busi": rd.busi, "rsna_pe": rd.rsna_pe,
    **{f: (lambda r, f=f: rd.medmnist(r, f)) for f in catalog.MEDMNIST},
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty cache and a folder for miniature manifests."""
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "splits"))
    return tmp_path


def mini(task: str, env) -> str:
    """Write a miniature copy of ``task``'s dataset and a manifest that fits it; returns the --root."""
    root = WRITERS[task](env / "data" / task)
    if get_task_spec(task).source != "drive":  # DRIVE's copy holds all 40 ids: the shipped manifest applies
        rd.mini_manifest(get_task_spec(task).source, env / "splits")
    return str(root)


def test_every_real_task_has_a_writer_a_manifest_and_a_protocol():
    assert sorted(WRITERS) == sorted(REAL_TASKS)
    for t in REAL_TASKS:
        spec = get_task_spec(t)
        assert spec.source in list_datasets()
        assert splits.load_manifest(spec.source)["dataset"] == spec.source
    drive = create_task("drive", "paper").protocol
    assert (drive.batch_size, drive.image_size, drive.num_runs, drive.loss) == (16, 512, 10, "bce")
    cls = create_task("chestxray14", "paper").protocol
    assert (cls.optimizer, cls.lr, cls.batch_size, cls.lr_factor, cls.lr_patience, cls.patience) == \
        ("adam", 2e-4, 32, 0.5, 5, 10)
    colab = create_task("chestmnist", "colab").protocol
    assert colab.image_size == 64 and colab.max_epochs < cls.max_epochs


# -- formats --------------------------------------------------------------------------------------------------------

def test_run_length_decoder_against_hand_made_masks():
    # 4 x 3 image; column-major pixel numbers: column 0 holds 0-3, column 1 holds 4-7, column 2 holds 8-11
    expected = np.array([[0, 1, 0],
                         [1, 1, 0],
                         [1, 0, 0],
                         [0, 0, 1]], np.uint8)
    # runs: pixels 1-2 (start 1), pixels 4-5 (start 1 after the end 3), pixel 11 (start 5 after the end 6)
    assert (formats.rle_decode("1 2 1 2 5 1", 4, 3) == expected).all()
    assert formats.rle_encode(expected) == "1 2 1 2 5 1"
    assert not formats.rle_decode("-1", 4, 3).any() and formats.rle_decode(" -1", 4, 3).shape == (4, 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((17, 11)) > 0.6).astype(np.uint8)
        assert (formats.rle_decode(formats.rle_encode(m), 17, 11) == m).all()
    with pytest.raises(CorruptFileError, match="leaves the 4x3 image"):
        formats.rle_decode("10 5", 4, 3)
    with pytest.raises(CorruptFileError, match="odd number"):
        formats.rle_decode("1 2 3", 4, 3)


def test_siim_masks_are_the_union_of_their_rows(env):
    root, truth = rd.siim_ptx(env / "siim")
    ds = get_dataset("siim_ptx")
    index = ds.index(root)
    assert (index.groupby("id").size() == 1).all() and len(index) == len(truth)
    for row in index.itertuples(index=False):
        _, mask = ds.load(root, pd.DataFrame([row._asdict()]), {})[0]
        assert (mask == truth[row.id]).all()
    assert set(index["stratum"]) == {"pneumothorax", "none"}
    assert index["patient"].str.startswith("patient").all()  # read from the DICOM header


def test_jsrt_raw_12_bit_is_inverted_to_8_bit(env):
    root = rd.jsrt(env / "jsrt", 1, 0)
    img = formats.read_jsrt(root / "All247images" / "JPCLN001.IMG")
    assert img.shape == (2048, 2048) and img.dtype == np.uint8
    assert img[0, 0] == 255 and img[0, -1] == 0  # raw 0 (left) is white, raw 4095 (right) black
    bad = root / "All247images" / "JPCLN002.IMG"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(CorruptFileError, match="JPCLN002.IMG"):
        formats.read_jsrt(bad)


def test_dicom_rescale_window_and_monochrome1(env):
    p = env / "a.dcm"
    rd.write_dicom(p, np.array([[0, 1000], [2000, 4000]], np.uint16), photometric="MONOCHROME1")
    img = formats.read_dicom(p)
    assert img[0, 0] == 255 and img[1, 1] == 0  # MONOCHROME1: low values are white
    rd.write_dicom(p, np.array([[0, 424], [1024, 2524]], np.int16), intercept=-1024.0, window=(-600, 1500))
    hu, _ = formats.read_ct_slice_hu(p)
    assert hu.tolist() == [[-1024, -600], [0, 1500]]
    assert formats.window(hu).tolist() == [[55, 128], [230, 255]]  # lung window: -1350 .. 150 HU
    (env / "broken.dcm").write_bytes(b"not a dicom")
    with pytest.raises(CorruptFileError, match="broken.dcm"):
        formats.read_dicom(env / "broken.dcm")


def test_rsna_slices_are_ordered_by_position_with_neighbours_as_channels(env):
    root = rd.rsna_pe(env / "rsna", studies=1, slices=5)
    ds = get_dataset("rsna_pe")
    index = ds.index(root)
    out = ds.load(root, index, {})
    # each slice's HU is -800 + 100 * its position: channels hold the positions z-1, z, z+1 (clamped)
    for (img, _), row in zip(out, index.itertuples()):
        centre = img[..., 1].mean()
        pos = round((float(formats.read_ct_slice_hu(row.path)[0].mean()) + 800) / 100)
        assert centre == formats.window(np.array([-800.0 + 100 * pos]))[0]
        below, above = max(pos - 1, 0), min(pos + 1, 4)
        assert img[..., 0].mean() == formats.window(np.array([-800.0 + 100 * below]))[0]
        assert img[..., 2].mean() == formats.window(np.array([-800.0 + 100 * above]))[0]


def test_chexpert_uncertainty_policies():
    labels = np.array([[-1, 1, 0, -1], [0, -1, 1, 0]], np.float32)
    assert apply_uncertainty(labels, "u_ones", ["a", "b"]).tolist() == [[1, 1, 0, 1], [0, 1, 1, 0]]
    assert apply_uncertainty(labels, "u_zeros", ["a", "b"]).tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]
    lsr = apply_uncertainty(labels, "lsr_ones", ["a", "b"])
    unc = labels < 0
    assert ((lsr[unc] >= 0.55) & (lsr[unc] <= 0.85)).all() and (lsr[~unc] == labels[~unc]).all()
    assert (lsr == apply_uncertainty(labels, "lsr_ones", ["a", "b"])).all()  # fixed per image: the same every run
    with pytest.raises(ValueError, match="valid: lsr_ones"):
        apply_uncertainty(labels, "u_maybe", ["a", "b"])


# -- manifests and splits -------------------------------------------------------------------------------------------

def test_shipped_manifests_are_valid():
    for name in list_datasets():
        m = splits.load_manifest(name)
        assert m["fractions"]["values"] == [0.01, 0.05, 0.1, 0.25, 0.5]
        rule = m["split"]
        if rule["method"] == "listed":
            lists = rule["lists"]
            ids = [i for s in splits.SPLITS for i in lists[s]]
            assert len(ids) == len(set(ids)), name  # disjoint
            assert {s: len(v) for s, v in lists.items()} == m["expected"]
            splits.check_nested(m["fractions"]["lists"], lists["train"])
        elif "counts" in rule:
            assert sum(rule["counts"].values()) == m["expected"]["total"]
    assert splits.load_manifest("shenzhen")["split"]["counts"] == {"train": 463, "val": 65, "test": 134}
    drive = splits.load_manifest("drive")["split"]["lists"]
    assert sorted(drive["test"]) == [f"{i:02d}_test" for i in range(1, 21)]  # the official test images


def test_patient_level_splits_and_nested_stratified_fractions(env):
    root = mini("chestxray14", env)
    index, manifest = index_with_splits("chestxray14", root)
    assert splits.patients_disjoint(index, index["split"])  # two images per patient, never split apart
    official_test = set((env / "data" / "chestxray14" / "test_list.txt").read_text().split())
    assert set(index.loc[index["split"] == "test", "id"]) == official_test
    # order of the files on disk does not matter: shuffled rows give the same assignment
    shuffled = index.sample(frac=1, random_state=3).reset_index(drop=True)
    again = splits.assign_splits(shuffled, manifest)
    assert dict(zip(shuffled["id"], again)) == dict(zip(index["id"], index["split"]))
    # fractions: nested, train-only, stratified (each stratum keeps about its share)
    train = pd.DataFrame({"id": [f"i{k}" for k in range(400)], "stratum": ["a"] * 300 + ["b"] * 100})
    fr = splits.fraction_ids(train, manifest)
    splits.check_nested(fr, train["id"])
    assert [len(fr[k]) for k in ("0.01", "0.05", "0.1", "0.25", "0.5")] == [4, 20, 40, 100, 200]
    b = set(train.loc[train["stratum"] == "b", "id"])
    assert [len(set(fr[k]) & b) for k in ("0.05", "0.25", "0.5")] == [5, 25, 50]
    with pytest.raises(splits.ManifestError, match="does not contain"):
        splits.check_nested({"0.1": ["i1"], "0.5": ["i2"]}, train["id"])


def test_exact_counts_refuse_an_incomplete_copy(env):
    root = rd.shenzhen(env / "shenzhen")  # 12 images; the shipped manifest cuts the authors' 662
    rep = check("shenzhen", root)
    assert not rep.ok
    text = str(rep)
    assert "cuts 662 patients (train 463, val 65, test 134); this copy has 12" in text
    assert "lhncbc.nlm.nih.gov" in text  # where to get it
    with pytest.raises(MissingDataError, match="this copy has 12"):
        prepare("shenzhen", root, profile="smoke")
    assert not (env / "cache" / "prepared").exists()  # refused before any decoding


def test_doctor_names_what_is_missing_and_where_to_get_it(env):
    empty = env / "nothing"
    empty.mkdir()
    for task, words in [("chestxray14", ["Data_Entry_2017*.csv", "test_list.txt", "nihcc.app.box.com"]),
                        ("chexpert", ["train.csv: not found", "valid.csv", "registration"]),
                        ("siim_ptx", ["train-rle.csv", "dicom-images-train", "kaggle"]),
                        ("drive", ["training images", "*_training.tif", "drive.grand-challenge.org"]),
                        ("jsrt_heart", ["JPCLN###.IMG", "db.jsrt.or.jp"]),
                        ("vindr_cxr", ["image_labels_train.csv", "physionet"]),
                        ("mimic_cxr", ["mimic-cxr-2.*-chexpert.csv.gz", "mimic-cxr-2.*-split.csv",
                                       "mimic-cxr-jpg"]),
                        ("busi", ["class folder benign/"]), ("rsna_pe", ["train.csv"]),
                        ("organamnist", ["organamnist_{64,128,224}.npz", "zenodo"])]:
        rep = check(task, empty)
        assert not rep.ok, task
        for w in words:
            assert w in str(rep), (task, w, str(rep))
    # one missing file of a complete layout is named with its path
    root = rd.montgomery(env / "mont")
    (root / "ManualMask" / "rightMask" / "MCUCXR_0003_1.png").unlink()
    rep = check("montgomery", root)
    assert "right lung mask of MCUCXR_0003_1: not found at" in str(rep)
    assert rep.ok is False and main(["data", "check", "montgomery", "--root", str(root)]) == 1


def test_corrupt_image_is_named_and_leaves_no_partial_cache(env, capsys):
    root = mini("busi", env)
    (env / "data" / "busi" / "Dataset_BUSI_with_GT" / "normal" / "normal (3).png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CorruptFileError, match=r"normal \(3\).png"):
        prepare("busi", root, profile="smoke", workers=1)
    prepared = env / "cache" / "prepared" / "busi"
    assert not prepared.exists() or not any(prepared.iterdir())  # no half-written cache
    assert main(["data", "prepare", "busi", "--root", root, "--profile", "smoke"]) == 4  # a file's content
    assert "normal (3).png" in capsys.readouterr().err


# -- each dataset: check, prepare, load, train one step ------------------------------------------------------------

@pytest.mark.parametrize("task", REAL_TASKS)
def test_loader_prepare_and_load(task, env):
    root = mini(task, env)
    rep = check(task, root)
    assert rep.ok, str(rep)
    folder = prepare(task, root, profile="smoke", workers=2, progress=False)
    meta = read_meta(folder)
    spec = create_task(task, "smoke")
    data = load_task_data(spec)
    size = spec.protocol.image_size
    for s in splits.SPLITS:
        d = data[s]
        assert d.images.dtype == np.uint8 and d.images.shape[1:] == (get_dataset(spec.source).channels, size, size)
        assert len(d) == meta["counts"][s] > 0 and d.ids == meta["ids"][s]
        if spec.kind == "multilabel_classification":
            assert d.targets.shape == (len(d), len(spec.classes))
        else:
            assert d.targets.shape == (len(d), 1, size, size) and set(np.unique(d.targets)) <= {0, 1, IGNORE}
    assert not set(data["train"].ids) & (set(data["val"].ids) | set(data["test"].ids))
    splits.check_nested(meta["fractions"], meta["ids"]["train"])
    half = train_subset(data["train"], 0.5)
    assert set(half.ids) == set(meta["fractions"]["0.5"]) and len(half.targets) == len(half.ids)
    # prepare is idempotent: a second call reuses the cache
    assert prepare(task, root, profile="smoke") == folder and read_meta(folder)["prepared_at"] == meta["prepared_at"]


def test_chexpert_variants_frontal_views_and_policies(env):
    root = mini("chexpert", env)
    full, _ = index_with_splits("chexpert", root)
    frontal, _ = index_with_splits("chexpert_frontal", root)
    assert len(frontal) == len(full) // 2 and frontal["id"].str.endswith("frontal.jpg").all()
    for task in ("chexpert_uones", "chexpert_uzeros"):
        prepare(task, root, profile="smoke", workers=1, progress=False)
    ones = load_task_data(create_task("chexpert_uones", "smoke"))["train"].targets
    zeros = load_task_data(create_task("chexpert_uzeros", "smoke"))["train"].targets
    assert set(np.unique(ones)) == {0, 1} and set(np.unique(zeros)) == {0, 1} and ones.sum() > zeros.sum()
    from medbench_core.data import data_version
    versions = {data_version(create_task(t, "paper")) for t in ("chexpert", "chexpert_uones", "chexpert_frontal")}
    assert len(versions) == 3  # the policy and the views are part of every run's hash


def test_medmnist_picks_the_file_of_the_resolution(env):
    root = env / "mm"
    for size in (64, 128):
        rd.medmnist(root, "pneumoniamnist", size=size)
    assert catalog.medmnist_file(root, "pneumoniamnist", 48).name == "pneumoniamnist_64.npz"
    assert catalog.medmnist_file(root, "pneumoniamnist", 100).name == "pneumoniamnist_128.npz"
    assert catalog.medmnist_file(root, "pneumoniamnist", 224).name == "pneumoniamnist_128.npz"  # the largest there
    index = get_dataset("pneumoniamnist").index(root, {"size": 100})
    assert index["npz"].str.endswith("_128.npz").all()
    assert set(index["official_split"]) == {"train", "val", "test"}


def test_task_specific_targets(env):
    for task in ("drive", "montgomery", "busi", "vindr_cxr", "organamnist", "chexpert", "jsrt_clavicle"):
        prepare(task, mini(task, env), profile="smoke", workers=1, progress=False)
    drive = load_task_data(create_task("drive", "smoke"))["test"].targets
    assert (drive == IGNORE).any() and (drive == 1).any()  # outside the field of view: not scored
    assert (drive[:, :, 0, 0] == IGNORE).all()  # image corners lie outside the disc
    lungs = load_task_data(create_task("montgomery", "smoke"))["train"].targets
    assert lungs[:, :, 16, 8].all() and lungs[:, :, 16, 23].all()  # both lungs, left and right mask
    busi = load_task_data(create_task("busi", "smoke"))
    masks = {i: m for s in busi.values() for i, m in zip(s.ids, s.targets)}
    assert not masks["normal (1)"].any() and masks["benign (1)"].sum() > masks["benign (2)"].sum()  # _mask_1 united
    vindr = load_task_data(create_task("vindr_cxr", "smoke"))
    labels = {i: y for s in vindr.values() for i, y in zip(s.ids, s.targets)}
    assert labels["tr" + f"{1:030x}"][2] == 1  # pneumonia marked by two of three readers: positive
    organ = load_task_data(create_task("organamnist", "smoke"))["train"].targets
    assert (organ.sum(1) == 1).all() and organ.shape[1] == 11  # one-hot, trained with cross-entropy
    assert create_task("organamnist", "smoke").protocol.loss == "ce"
    chex = load_task_data(create_task("chexpert", "smoke"))
    assert ((chex["train"].targets >= 0.55) & (chex["train"].targets <= 0.85)).any()  # LSR-Ones applied
    assert set(np.unique(chex["test"].targets)) <= {0.0, 1.0}
    clav = load_task_data(create_task("jsrt_clavicle", "smoke"))["train"].targets
    assert clav[:, 0, 4, 9].all() and clav[:, 0, 4, 22].all() and not clav[:, 0, 18, 16].any()  # no heart


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:AUC undefined")  # a few images per split: some labels have one value only
@pytest.mark.parametrize("task", ["chexpert", "drive", "siim_ptx", "rsna_pe", "organamnist", "jsrt_heart",
                                  "shenzhen", "montgomery", "chestxray14", "vindr_cxr", "busi", "chestmnist",
                                  "pneumoniamnist", "breastmnist", "mimic_cxr"])
def test_one_training_run_per_dataset(task, env):
    from medbench_core.experiments import make_run_config, run_one
    from medbench_core.results import ResultsStore

    prepare(task, mini(task, env), profile="smoke", workers=1, progress=False)
    cfg = make_run_config("domain-adaptation", task, "scratch", "test_resnet", 0, "smoke", max_epochs=1)
    assert cfg.data_version.startswith(f"{get_task_spec(task).source}:manifest-")
    rows, cached = run_one(cfg, ResultsStore(env / "results"), progress=False)
    assert not cached
    main = rows[(rows.split == "test") & rows.metric.isin(["mean_auc", "dice"])]
    assert len(main) == 1 and (not main.synthetic.iloc[0])
    if task == "chexpert":  # trained on 14 labels, scored on the 5 test labels
        per_class = rows[(rows.split == "test") & rows.metric.str.startswith("auc_")]
        assert len(per_class) <= 5


def test_unprepared_real_task_stops_before_any_work(env, tmp_path, repo_root, capsys):
    results = tmp_path / "r"
    argv = ["run", "domain-adaptation", "--profile", "smoke", "--tasks", "shenzhen", "--results-dir", str(results),
            "--root", str(repo_root), "--cache-dir", str(env / "cache")]
    assert main(argv) == 3  # the prepared copy is missing: exit code 3
    err = capsys.readouterr().err
    assert "shenzhen: Shenzhen chest X-ray set at 32 px" in err and "medbench data prepare shenzhen" in err
    assert not results.exists() and not (env / "cache" / "checkpoints").exists()  # nothing trained or written


@pytest.mark.slow
@pytest.mark.notebooks
def test_section_runs_on_a_real_layout_with_data_root(env, tmp_path, smoke_cache, repo_root, capsys):
    """Pointing --data-root at a folder in the real layout is all it takes."""
    import nbformat

    from medbench_core import ResultsStore, validate_section_params

    root = mini("montgomery", env)
    results = tmp_path / "results"
    argv = ["run", "domain-adaptation", "--profile", "smoke", "--tasks", "montgomery", "--data-root", root,
            "--results-dir", str(results), "--cache-dir", str(smoke_cache), "--root", str(repo_root), "-q"]
    assert main(argv) == 0
    assert "prepared montgomery at 32 px" in capsys.readouterr().out
    grid = validate_section_params("domain-adaptation", profile="smoke", tasks=["montgomery"])
    store = ResultsStore(results)
    assert sorted(store.hashes()) == sorted(grid.hashes)
    df = store.load()
    assert set(df["task"]) == {"montgomery"} and not df["synthetic"].astype(str).str.lower().eq("true").any()
    nb = nbformat.read(results / "executed" / "smoke" / "03_domain_adaptation.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert "Montgomery" in html


def test_cli_data_check_prepare_and_list(env, capsys):
    root = mini("shenzhen", env)
    assert main(["data", "check", "shenzhen", "--root", root]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: task 'shenzhen'") and "split digest" in out
    assert main(["data", "prepare", "shenzhen", "--root", root, "--profile", "smoke", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "prepared shenzhen at 32 px: train" in out and "split digest" in out
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("chestxray14", "rsna_pe", "organamnist", "jsrt_clavicle,jsrt_heart"):
        assert name in out
    assert main(["data", "check", "no_such_task", "--root", root]) == 2
    assert "valid tasks" in capsys.readouterr().err
    json.dumps(read_meta(next((env / "cache" / "prepared" / "shenzhen").iterdir()))["counts"])


def test_medmnist_is_fetched_checked_and_prepared_from_a_server(env, monkeypatch, capsys):
    """The download path against a local HTTP server (no outside network): MD5 checked, then prepared."""
    import functools
    import hashlib
    import http.server
    import threading

    served = env / "srv"
    rd.medmnist(served, "pneumoniamnist", size=64)
    md5 = hashlib.md5((served / "pneumoniamnist_64.npz").read_bytes()).hexdigest()
    rd.mini_manifest("pneumoniamnist", env / "splits")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(catalog, "MEDMNIST_URL", f"http://127.0.0.1:{server.server_address[1]}/{{name}}")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert main(["data", "fetch", "pneumoniamnist", "--profile", "colab"]) == 3  # not in the cache
        assert "this session is offline" in capsys.readouterr().err
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setitem(catalog.MEDMNIST_MD5, ("pneumoniamnist", 64), "0" * 32)
        assert main(["data", "fetch", "pneumoniamnist", "--profile", "colab"]) == 4  # a wrong checksum: the content
        assert "pneumoniamnist_64.npz" in capsys.readouterr().err
        monkeypatch.setitem(catalog.MEDMNIST_MD5, ("pneumoniamnist", 64), md5)
        # a notebook's run fetches what medbench may download itself (a fresh Colab runtime needs no command)
        from medbench_core.experiments import make_run_config
        from medbench_core.inputs import check_inputs, fetch_downloadable

        cfg = make_run_config("granularity", "pneumoniamnist", "scratch", "resnet50", 0, "colab")
        check_inputs([cfg], fetchable=True)  # `medbench run` lets it through to the run ...
        with pytest.raises(MissingDataError, match="medbench data fetch pneumoniamnist --profile colab"):
            check_inputs([cfg])  # ... which is the only place that downloads
        fetch_downloadable([cfg])
        check_inputs([cfg])
        assert main(["data", "fetch", "pneumoniamnist", "--profile", "colab"]) == 0
        assert "prepared pneumoniamnist at 64 px" in capsys.readouterr().out
    finally:
        server.shutdown()
    assert len(load_task_data(create_task("pneumoniamnist", "colab"))["train"]) > 0
    assert main(["data", "fetch", "shenzhen"]) == 2
    assert "cannot be downloaded by medbench" in capsys.readouterr().err
