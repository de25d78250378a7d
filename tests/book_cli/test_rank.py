"""Your model beside the papers' initialisations, end to end (issue 26): a checkpoint made in miniature is added,
a section notebook runs it beside the registered inits (papermill, as `medbench run` does), and `medbench rank`
writes its page, which reads right in Chromium."""
from __future__ import annotations

import nbformat
import pytest

from medbench_core.cli import main
from medbench_core.pretrain import get_init, get_init_checkpoint, list_inits

from browser import CHROMIUM, new_browser

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]
GRID = ["--profile", "smoke", "--tasks", "syn_txc"]


@pytest.fixture
def registry(tmp_path, monkeypatch):
    from medbench_core import pretrain
    from medbench_core.zoo import records

    monkeypatch.setenv("MEDBENCH_MODELS", str(tmp_path / "models.json"))  # the notebook's kernel inherits it
    yield tmp_path
    for name in [n for n in list_inits() if get_init(n).family == "yours"]:
        records.unregister_user(name)
        pretrain.unregister_user(name)


def test_your_model_runs_beside_the_registered_inits_and_its_rank_page_reads_right(registry, capsys):
    # a model in miniature, as the README says: the demo's own pre-training stage checkpoint of test_resnet
    ckpt = get_init_checkpoint("synth_imagenet", "test_resnet", "smoke")
    assert main(["models", "add", "mine", "--arch", "test_resnet", "--file", str(ckpt)]) == 0
    results = registry / "results"
    inits = "scratch,synth_imagenet,synth_chest,synth_imagenet_chest,mine"
    assert main(["run", "domain-adaptation", *GRID, "--inits", inits, "--results-dir", str(results)]) == 0
    nb = nbformat.read(results / "executed" / "smoke" / "03_domain_adaptation.ipynb", as_version=4)
    outputs = " ".join(str(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "mine" in outputs and "error" not in {o.get("output_type") for c in nb.cells for o in c.get("outputs", [])}
    capsys.readouterr()
    assert main(["rank", "mine", "--section", "domain-adaptation", *GRID, "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "mine: " in out and ("better than the best" in out or "equivalent to the best" in out
                                or "worse than the best" in out)
    page = results / "rank" / "mine-domain-adaptation-smoke.html"
    assert page.is_file()
    if CHROMIUM is None:
        pytest.skip("no chromium here; `make test` installs Debian's chromium when run as root")
    browser = new_browser()
    try:
        browser.open(page.as_uri())
        seen = browser.inspect()
    finally:
        browser.close()
    assert seen["title"] == "Where mine ranks" and any(n > 5 for n in seen["tables"])
    assert seen["imgs"] and all(i["ok"] and i["shown"] for i in seen["imgs"])
    assert not seen["clipped"] and "Verdict." in seen["text"] and "(synthetic)" in seen["text"]


def test_rank_names_what_is_missing_and_how_to_train_it(registry, capsys):
    ckpt = get_init_checkpoint("synth_imagenet", "test_resnet", "smoke")
    assert main(["models", "add", "mine", "--arch", "test_resnet", "--file", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["rank", "mine", *GRID, "--results-dir", str(registry / "empty")]) == 2
    err = capsys.readouterr().err
    assert "runs of this grid are not in" in err and "the same command with --train" in err and err.count("\n") == 1
    assert main(["rank", "imagenet", *GRID]) == 2
    assert "is not one of your models" in capsys.readouterr().err
    assert main(["rank", "mine", "--profile", "paper"]) == 2  # the papers' grids train resnet50, not test_resnet
    assert "your model mine is a test_resnet; the self-supervised section trains resnet50" in capsys.readouterr().err
