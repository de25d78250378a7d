"""Your model on the benchmark (issue 26): `medbench models add` reads every supported layout, refuses an ambiguous
or incomplete file with one line, records the file's sha256 in every run's hash, and a store exported with your
model's runs imports elsewhere only beside the same file."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import timm
import torch

from medbench_core.cli import main
from medbench_core.experiments import make_run_config
from medbench_core.pretrain import get_init, list_inits
from medbench_core.results import COLUMNS, ResultsStore
from medbench_core.user_models import registry_path, user_models

ARCH = "test_resnet"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry file and a cache of this test's own; the session's registries are left as they were."""
    from medbench_core import pretrain
    from medbench_core.zoo import records

    monkeypatch.setenv("MEDBENCH_MODELS", str(tmp_path / "config" / "models.json"))
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    yield tmp_path
    for name in [n for n in list_inits() if get_init(n).family == "yours"]:
        records.unregister_user(name)
        pretrain.unregister_user(name)


def _state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return timm.create_model(ARCH, num_classes=7).state_dict()


def _plain(path, s):
    torch.save(s, path)


def _lightning(path, s):
    torch.save({"state_dict": {f"model.{k}": v for k, v in s.items()}, "epoch": 3, "global_step": 10}, path)


def _data_parallel(path, s):
    torch.save({f"module.{k}": v for k, v in s.items()}, path)


def _safetensors(path, s):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in s.items()}, str(path))


def _moco(path, s):
    key = _state(1)
    torch.save({"state_dict": {**{f"module.encoder_q.{k}": v for k, v in s.items()},
                               **{f"module.encoder_k.{k}": v for k, v in key.items()}}, "arch": "resnet"}, path)


LAYOUTS = {  # name: (writer, file suffix, extra options, the prefix it is found under)
    "timm/torchvision keys": (_plain, ".pth", [], ""),
    "PyTorch Lightning state_dict": (_lightning, ".ckpt", [], "state_dict.model."),
    "DataParallel module.": (_data_parallel, ".pt", [], "module."),
    "safetensors": (_safetensors, ".safetensors", [], ""),
    "MoCo, the query encoder named": (_moco, ".pth.tar", ["--prefix", "state_dict.module.encoder_q."],
                                      "state_dict.module.encoder_q."),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_model_is_added_from_each_layout_audited_and_listed_as_yours(layout, registry, capsys):
    write, suffix, options, prefix = LAYOUTS[layout]
    path = registry / f"mine{suffix}"
    write(path, _state())
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path), *options]) == 0
    entry = user_models()["mine"]
    assert entry["prefix"] == prefix and entry["backbone_tensors"] > 50 and len(entry["sha256"]) == 64
    assert json.loads(registry_path().read_text())["models"]["mine"]["arch"] == ARCH  # readable, diff-able
    capsys.readouterr()
    assert main(["list", "inits"]) == 0
    assert any(line.startswith("mine ") and "yours" in line for line in capsys.readouterr().out.splitlines())
    cfg = make_run_config("granularity", "syn_txc", "mine", ARCH, 0, "smoke")
    assert cfg.init_checkpoint.endswith(entry["sha256"])  # the file's sha256 is part of the run's hash


REFUSED = {
    "ambiguous: two whole encoders": (_moco, [], 2, "holds 2 different whole test_resnet backbones; say which is "
                                                    "the model: --prefix 'state_dict.module.encoder_k.' or --prefix "
                                                    "'state_dict.module.encoder_q.'"),
    "incomplete: a tensor missing": (lambda p, s: torch.save({k: v for k, v in s.items()
                                                              if k != "layer1.0.conv1.weight"}, p), [], 4,
                                     "does not hold a whole test_resnet backbone"),
    "another architecture": (lambda p, s: torch.save(timm.create_model("resnet10t").state_dict(), p), [], 4,
                             "does not hold a whole test_resnet backbone"),
    "a key that is not the model's": (lambda p, s: torch.save({**s, "layer9.weight": torch.zeros(1)}, p), [], 4,
                                      "layer9.weight"),
    "a prefix that is not there": (_plain, ["--prefix", "encoder."], 2, "no key of"),
    "a name medbench registers": (_plain, [], 2, "is an initialisation medbench registers"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_file_that_is_not_one_whole_backbone_is_refused_with_one_line(case, registry, capsys):
    write, options, code, needle = REFUSED[case]
    path = registry / "mine.pth"
    write(path, _state())
    name = "imagenet" if "registers" in case else "mine"
    assert main(["models", "add", name, "--arch", ARCH, "--file", str(path), *options]) == code
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert name not in user_models() and not (registry / "cache" / "weights" / f"{ARCH}.user_{name}.pt").exists()


def test_the_same_file_is_one_run_and_a_changed_file_a_new_one(registry):
    path = registry / "mine.pth"
    _plain(path, _state(0))
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 0
    first = make_run_config("granularity", "syn_txc", "mine", ARCH, 0, "smoke").config_hash()
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 0  # the same file again
    assert make_run_config("granularity", "syn_txc", "mine", ARCH, 0, "smoke").config_hash() == first
    _plain(path, _state(5))  # retrained: another file under the same name
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 0
    assert make_run_config("granularity", "syn_txc", "mine", ARCH, 0, "smoke").config_hash() != first
    assert main(["models", "remove", "mine"]) == 0
    assert "mine" not in list_inits() and "mine" not in user_models()


def test_an_exported_run_of_your_model_imports_only_beside_the_same_file(registry, capsys):
    path, other = registry / "mine.pth", registry / "other.pth"
    _plain(path, _state(0))
    _plain(other, _state(3))
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 0
    cfg = make_run_config("granularity", "syn_txc", "mine", ARCH, 0, "smoke")
    h = cfg.config_hash()
    row = {"section": "granularity", "task": "syn_txc", "init": "mine", "arch": ARCH, "seed": 0, "fraction": 1.0,
           "profile": "smoke", "split": "test", "metric": "mean_auc", "value": 0.7, "config_hash": h,
           "medbench_version": "test", "git_sha": "unknown", "torch_version": "-", "device": "cpu",
           "wall_seconds": 1.0, "finished_at": "2026-12-03T00:00:00+00:00", "synthetic": True}
    ResultsStore(registry / "here").write_run(h, pd.DataFrame([row])[COLUMNS], cfg.to_dict(), {})
    assert main(["results", "export", str(registry / "x.csv"), "--results-dir", str(registry / "here")]) == 0
    assert main(["models", "remove", "mine"]) == 0  # another machine: the model is not known there
    capsys.readouterr()
    assert main(["results", "import", str(registry / "x.csv"), "--results-dir", str(registry / "there")]) == 4
    assert "medbench models add NAME --arch ARCH --file CHECKPOINT" in capsys.readouterr().err
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(other)]) == 0  # another file, same name
    assert main(["results", "import", str(registry / "x.csv"), "--results-dir", str(registry / "there")]) == 4
    assert "another model under the same name" in capsys.readouterr().err
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 0  # the same file
    assert main(["results", "import", str(registry / "x.csv"), "--results-dir", str(registry / "there")]) == 0
    assert ResultsStore(registry / "there").hashes() == [h]


def test_a_registry_that_is_not_the_registry_is_named(registry, capsys):
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("not json")
    assert main(["models", "list"]) == 4
    assert str(registry_path()) in capsys.readouterr().err


def test_a_registry_path_that_is_a_folder_is_refused_before_reading_the_file(registry, monkeypatch, capsys):
    monkeypatch.setenv("MEDBENCH_MODELS", str(registry))
    path = registry / "mine.pth"
    _plain(path, _state())
    assert main(["models", "add", "mine", "--arch", ARCH, "--file", str(path)]) == 3
    assert "is a folder; $MEDBENCH_MODELS names the registry file" in capsys.readouterr().err
    assert not (registry / "cache" / "weights").exists()  # nothing converted
