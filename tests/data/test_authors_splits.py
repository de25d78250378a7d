"""The authors' own ChestX-ray14 and Shenzhen lists (`medbench data splits --authors`), on list files the test
writes in the original repository's formats: refused when changed, installed from a downloaded folder, used by
`prepare`, and one clear line offline."""
from __future__ import annotations

import medbench_core as mb
from medbench_core import original


def _write_authors_lists(folder, shenzhen_ids):
    """The six list files in the original's formats: ChestX-ray14 (file and 14 labels) and Shenzhen (file,label)."""
    import hashlib

    from medbench_core.datasets import authors

    folder.mkdir(parents=True, exist_ok=True)
    cut = {"train": shenzhen_ids[:-4], "val": shenzhen_ids[-4:-2], "test": shenzhen_ids[-2:]}
    texts = {"chestxray14": {s: "".join(f"{i:08d}_000.png {' '.join('01'[(i + k) % 5 == 0] for k in range(14))}\n"
                                        for i in range(n0, n0 + 3)) for s, n0 in (("train", 0), ("val", 3),
                                                                                    ("test", 6))},
             "shenzhen": {s: "".join(f"{i}.png,{i[-1]}\n" for i in ids) for s, ids in cut.items()}}
    pins = {}
    for dataset, files in authors.AUTHORS_FILES.items():
        pins[dataset] = {}
        for split, (name, _) in files.items():
            data = texts[dataset][split].encode()
            (folder / name).write_bytes(data)
            pins[dataset][split] = (name, hashlib.sha256(data).hexdigest())
    return pins, cut


def test_the_authors_lists_install_from_a_downloaded_folder_and_are_used(tmp_path, monkeypatch, capsys):
    import realdata as rd

    from medbench_core.cli import main
    from medbench_core.datasets import authors, prepare
    from medbench_core.datasets.splits import describe_split, load_manifest

    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "splits"))
    root = rd.shenzhen(tmp_path / "shenzhen", n=12)
    ids = sorted(p.stem for p in root.rglob("CHNCXR_*.png"))
    pins, cut = _write_authors_lists(tmp_path / "lists", ids)
    # the real pins cannot match files a test writes: a changed file is refused, naming it, and nothing is written
    assert main(["data", "splits", "--authors", "--from", str(tmp_path / "lists")]) == 4  # a bad file
    err = capsys.readouterr().err
    assert "Xray14_train_official.txt has sha256" in err and "Traceback" not in err
    assert not (tmp_path / "splits").exists()
    monkeypatch.setattr(authors, "AUTHORS_FILES", pins)
    assert main(["data", "splits", "--authors", "--from", str(tmp_path / "lists")]) == 0
    out = capsys.readouterr().out
    assert "non-commercial" in out and original.ORIGINAL_COMMIT[:7] in out and "Prepare chestxray14 and shenzhen" in out
    m = load_manifest("shenzhen")
    assert m["split"]["method"] == "listed" and m["split"]["lists"]["val"] == cut["val"]
    assert m["source"]["commit"] == original.ORIGINAL_COMMIT and "non-commercial" in m["source"]["licence"]
    assert describe_split("shenzhen").startswith("the authors' lists")
    # used: a prepared copy splits exactly as the lists say
    folder = prepare("shenzhen", root, profile="smoke", workers=1, progress=False)
    import json

    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    from medbench_core.data import load_task_data

    data = load_task_data(mb.create_task("shenzhen", "smoke"))
    assert {s: len(d) for s, d in data.items()} == {s: len(v) for s, v in cut.items()}, meta
    # offline without a folder: one line saying what to download, nothing written
    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "other"))
    assert main(["data", "splits", "--authors"]) == 2
    err = capsys.readouterr().err
    assert "offline" in err and "--from FOLDER" in err and not (tmp_path / "other").exists()
