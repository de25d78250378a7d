"""Dress rehearsal of the profiles researchers come for: every section notebook and the summary, executed by
papermill exactly as `medbench book` does, on the `paper` and `colab` profiles, on miniature copies of the real
datasets in their own formats (`tests/realdata.py`, prepared with `medbench data prepare`) and checkpoint files
written in each release's key layout and imported with `medbench weights import`. One epoch, 32 px, two seeds, and
narrowed grids (named below) keep it to minutes on a CPU; the architectures are the profiles' own (ConvNeXt-B and
Swin-B on `paper`, the tiny variants on `colab`)."""
from __future__ import annotations

import dataclasses
import re
import shutil
import time

import nbformat
import pytest

import medbench_core as mb
from medbench_core.cli import main
from medbench_core.pretrain import get_init
from medbench_core.sections import Results, load_grid_results
from medbench_core.tasks import get_task_spec
from medbench_core.zoo import records

import realdata as rd
import zoo_layouts as zl
from notebook_values import glued

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

COMMON = {"num_seeds": 2, "protocol": {"max_epochs": 1, "image_size": 32}}
REHEARSAL = {
    # segmentation (SIIM-ACR) where the claim is mostly about it; one classification task elsewhere
    "paper": {
        "granularity": {"tasks": ["shenzhen", "siim_ptx"]},
        "self-supervised": {"tasks": ["shenzhen"], "inits": ["imagenet", "simclr_v1", "moco_v2"]},
        "domain-adaptation": {"tasks": ["shenzhen"], "inits": ["scratch", "imagenet", "chestxray14",
                                                                "imagenet_chestxray14"]},
        "architectures": {"tasks": ["shenzhen"], "archs": ["convnext_base", "swin_base"],  # the paper's Base pair
                          "inits": ["imagenet"]},
        # ChestX-ray14 in miniature: labels with one value in a split give undefined AUCs (a stored missing value)
        "data-size": {"tasks": ["chestxray14"], "inits": ["imagenet"], "fractions": [0.1, 1.0]},
    },
    # MedMNIST+ has no segmentation sets: classification only, as the profile is
    "colab": {
        "granularity": {"tasks": ["pneumoniamnist"]},
        "self-supervised": {"tasks": ["pneumoniamnist"], "inits": ["imagenet", "moco_v2", "byol"]},
        "domain-adaptation": {"tasks": ["pneumoniamnist"]},
        "architectures": {"tasks": ["pneumoniamnist"], "inits": ["imagenet"]},
        "data-size": {"tasks": ["pneumoniamnist"], "inits": ["imagenet"], "fractions": [0.1, 1.0]},
    },
}
DATA = {"shenzhen": lambda root: rd.shenzhen(root, n=40), "siim_ptx": lambda root: rd.siim_ptx(root, n=24)[0],
        "chestxray14": lambda root: rd.chestxray14(root, patients=20),
        "pneumoniamnist": lambda root: rd.medmnist(root, "pneumoniamnist", n=(24, 12, 12))}
# the layout of each release, by its converter (tests/zoo_layouts.py writes them)
WRITERS = {"torchvision": zl.write_torchvision, "moco": zl.write_moco, "simclr_tf": zl.write_simclr_npz,
           "byol_haiku": zl.write_byol, "swav": zl.write_swav, "convnext_official": zl.write_convnext_official,
           "swin_official": zl.write_swin_official, "deit_official": zl.write_deit_official}
TIMM = {"resnet50": "resnet50", "convnext_base": "convnext_base", "convnext_tiny": "convnext_tiny",
        "swin_base": "swin_base_patch4_window7_224", "swin_tiny": "swin_tiny_patch4_window7_224",
        "deit_tiny": "deit_tiny_patch16_224"}


def _params(profile: str) -> dict:
    return {k: {**COMMON, **v} for k, v in REHEARSAL[profile].items()}


def _grids(profile: str) -> dict:
    return {k: mb.validate_section_params(k, profile=profile, **p) for k, p in _params(profile).items()}


def _import_weights(grids, tmp_path, monkeypatch) -> list[str]:
    """Write a file in the release's layout for every real initialisation the grids use and import it with
    `medbench weights import`. Releases pinned to their real file's sha256 (torchvision's and DeiT's name prefix)
    cannot be matched by random weights: for those alone the pin is lifted for this import."""
    keys = sorted({f"{c.arch}.{get_init(c.init).weights}" for g in grids.values() for c in g.configs
                   if get_init(c.init).weights})
    for key in keys:
        rec = records.get_record(key)
        state = zl.timm_state(TIMM[rec.arch])
        if rec.converter == "authors":
            writer = lambda s, p: zl.write_authors(s, p, classes=10000 if "inat" in key else 14)  # noqa: E731
        else:
            writer = WRITERS[rec.converter]
        suffix = {"simclr_tf": ".npz", "byol_haiku": ".pkl"}.get(rec.converter, ".pth.tar")
        (tmp_path / "releases").mkdir(exist_ok=True)
        path = writer(state, tmp_path / "releases" / f"{key}{suffix}")
        with monkeypatch.context() as m:
            if rec.sha256 or rec.sha256_prefix:
                m.setitem(records._RECORDS._items, key, dataclasses.replace(rec, sha256="", sha256_prefix=""))
            assert main(["weights", "import", key, str(path)]) == 0, key
        path.unlink()
    return keys


def _outputs(nb) -> tuple[str, list[dict]]:
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = []
    for o in outs:
        data = o.get("data", {})
        for mime in ("text/html", "text/markdown", "text/plain"):
            if mime in data:
                text.append(re.sub(r"<style>.*?</style>", "", "".join(data[mime]), flags=re.S))
        text.append("".join(o.get("text", "")))
    return "\n".join(text), outs


@pytest.fixture
def big_files_removed(tmp_path):
    """Weights and fine-tuned checkpoints are 100-350 MB each (gigabytes in all): none is kept after the test."""
    yield
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.stat().st_size > 1_000_000:
            f.unlink()


def test_dress_rehearsal(book_copy, tmp_path, monkeypatch, capsys, big_files_removed):
    """Both profiles, one after the other, on one data and weights cache (each with its own book and store)."""
    from medbench_core.book import build_book

    t0 = time.perf_counter()
    cache, splits = tmp_path / "cache", tmp_path / "splits"
    monkeypatch.setenv("MEDBENCH_CACHE", str(cache))
    monkeypatch.setenv("MEDBENCH_SPLITS", str(splits))  # the kernels inherit both
    grids = {p: _grids(p) for p in REHEARSAL}
    for profile, gs in grids.items():
        for task in sorted({t for g in gs.values() for t in g.tasks}):  # in their own formats, prepared as a user would
            root = DATA[task](tmp_path / "data" / task)
            if task != "pneumoniamnist":
                rd.mini_manifest(get_task_spec(task).source, splits)
            size = round(32 / mb.create_task(task, profile).protocol.eval_crop)  # paper: resize-and-crop, 37 -> 32
            assert main(["data", "prepare", task, "--root", str(root), "--profile", profile, "--size", str(size)]) == 0
    keys = _import_weights({f"{p}/{k}": g for p, gs in grids.items() for k, g in gs.items()}, tmp_path, monkeypatch)
    capsys.readouterr()
    times = [f"data and weights {time.perf_counter() - t0:.0f} s"]
    for profile in REHEARSAL:
        t1 = time.perf_counter()
        root = shutil.copytree(book_copy, tmp_path / f"book-{profile}")
        results = tmp_path / f"results-{profile}"
        build_book(profile, root=root, results_dir=results, cache_dir=cache, section_parameters=_params(profile),
                   render=False, papers=False)  # the papers' own pages do not depend on the profile
        # as the notebooks saw them: the copies' manifests are in the grids' data versions
        _check_profile(profile, _grids(profile), keys, root, results)
        times.append(f"{profile} {time.perf_counter() - t1:.0f} s")
    t1 = time.perf_counter()
    _run_with_data_root_and_set(tmp_path, book_copy, capsys)
    times.append(f"--data-root with --set {time.perf_counter() - t1:.0f} s")
    print("\ndress rehearsal: " + ", ".join(times))


def _run_with_data_root_and_set(tmp_path, book_copy, capsys):
    """`medbench run` given the raw files (`--data-root`) and another MedMNIST+ resolution (`--set image_size`):
    the copy is prepared at the size the runs read, and they train on it."""
    raw = rd.medmnist(tmp_path / "data" / "pneumoniamnist-64", "pneumoniamnist", n=(24, 12, 12))
    results = tmp_path / "results-data-root"
    argv = ["run", "data-size", "--profile", "colab", "--tasks", "pneumoniamnist", "--inits", "imagenet",
            "--fractions", "1.0", "--seeds", "2", "--data-root", str(raw), "--set", "image_size=64",
            "--set", "max_epochs=1", "--results-dir", str(results), "--root", str(book_copy)]
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    grid = mb.validate_section_params("data-size", profile="colab", tasks=["pneumoniamnist"], inits=["imagenet"],
                                      fractions=[1.0], num_seeds=2, protocol={"image_size": 64, "max_epochs": 1})
    assert mb.ResultsStore(results).hashes() == sorted(grid.hashes)  # every run of the grid, trained at 64 px
    assert all(mb.ResultsStore(results).config(h)["image_size"] == 64 for h in grid.hashes)


def _check_profile(profile, grids, keys, book_copy, results):
    executed = book_copy / "book" / "executed"
    summary = glued(nbformat.read(executed / "summary.ipynb", as_version=4))
    assert (" of " in summary["summary_reproduced"]) == (profile == "paper")  # printed cells reproduced: paper only
    for key, grid in grids.items():
        sec = grid.section
        nb = nbformat.read(executed / sec.notebook, as_version=4)
        text, outs = _outputs(nb)
        assert not [o for o in outs if o.get("output_type") == "error"], key
        assert "synthetic" not in text.lower(), key  # real data: nothing on the page says synthetic
        for t in grid.tasks:
            assert get_task_spec(t).display_name in text, (key, t)
        for a in grid.archs:
            assert (mb.get_arch(a).label or a) in text, (key, a)
        for k in keys:
            if any(f"{c.arch}.{get_init(c.init).weights}" == k for c in grid.configs):
                assert f"real weights {k}" in text, (key, k)  # the pre-training table names the release
        res = Results(grid, load_grid_results(grid, results), results_dir=str(results))
        values = glued(nb)
        assert values[f"{sec.prefix}_verdict"] == res.verdict.outcome, key
        assert values[f"{sec.prefix}_profile"] == profile
        assert summary[f"summary_{key.replace('-', '_')}"] == res.verdict.outcome, key
        if profile == "colab" and key in ("granularity", "self-supervised", "domain-adaptation"):
            assert "segmentation" in res.verdict.scope  # a verdict from part of the claim says which part
        if profile == "paper":  # the page shows every printed cell with ours next to it, and counts them
            assert "every cell the papers print" in text, key
            assert " of " in values[f"{sec.prefix}_reproduced"], key
        # reproduced vs reported: the paper's cell next to ours for every reported cell that ran
        rep = sec.directions(res).text
        if key == "domain-adaptation" and profile == "paper":
            cells = rep.set_index("ours")["paper (mean ± std)"]
            assert (cells != "not reported").sum() == len(grid.tasks) * len(grid.inits)  # all are reported
            assert "TXC / ImageNet→ChestX-ray14" in set(rep["paper"])
        if key == "granularity":  # every task whose counterpart the paper reports has the paper's cell
            reported = set(sec.reported()["task"])
            assert (rep["paper: higher"] != "not reported").sum() == sum(get_task_spec(t).analog_of in reported
                                                                       for t in grid.tasks)
        if key == "architectures" and profile == "paper":
            assert any("ConvNeXt-B − Swin-B" in c for c in rep.columns)  # the paper's row of the same size
        if key == "self-supervised" and profile == "paper":
            assert set(rep["paper vs supervised"]) - {"–"}  # SimCLR-v1 and MoCo-v2 carry the paper's marks
    if profile == "paper":  # an AUC a split cannot define is stored as a missing value, read by every page
        df = load_grid_results(grids["data-size"], results)
        assert df["value"].isna().any() and df["metric"].str.startswith("auc:").any()
    # run records carry the real split sizes
    cfg = next(iter(grids["granularity"].configs))
    stored = mb.ResultsStore(results).config(cfg.config_hash())
    assert stored["n_train"] > 0 and stored["n_test"] > 0
    assert len(mb.ResultsStore(results).hashes()) == len({h for g in grids.values() for h in g.hashes})
