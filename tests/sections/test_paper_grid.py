"""The paper profile is the papers: its grids are the reported cells, its protocols the original code's, and its
pages compare every printed cell with ours (on a FIXTURE results file made for the purpose)."""
from __future__ import annotations

import pytest
import torch

import medbench_core as mb
from medbench_core.cli import main
from medbench_core.papers import load_reported
from medbench_core.sections import Results, load_grid_results
from medbench_core.sections.cells import PAPER_TASKS, cells_of_row, paper_cells
from medbench_core.sections.reproduction import CONSISTENT, INCONSISTENT, counts, reproduction
from medbench_core.tasks import get_task_spec
from medbench_core.verdicts import OUTCOMES

import paper_fixture

SECTIONS = paper_fixture.SECTIONS
PAPER_RUNS = 1880  # 188 cells x 10 runs: the figure the README and the issue quote


def test_every_reported_cell_has_its_runs_and_nothing_else_runs():
    total = 0
    for s in SECTIONS:
        grid = mb.validate_section_params(s, profile="paper")
        keys = {(c.task, c.arch, c.init, c.fraction) for c in grid.configs}
        assert keys == {c.key for c in paper_cells(s)}, s  # nothing the papers did not report
        for _, r in load_reported(s).iterrows():
            if r["mark"] != "n/a":
                assert set(cells_of_row(r)) <= keys, (s, r["task"], r["init"])
        assert grid.seeds == tuple(range(10))
        total += len(grid.configs)
    assert total == PAPER_RUNS


def test_paper_grids_are_the_papers_shapes():
    g = {s: mb.validate_section_params(s, profile="paper") for s in SECTIONS}
    assert len(g["granularity"].tasks) == 7 and set(g["granularity"].inits) == {"scratch", "imagenet", "inat2021"}
    assert len(g["self-supervised"].inits) == 15 and len(g["self-supervised"].tasks) == 7
    da = {(c.task, c.init) for c in g["domain-adaptation"].configs}
    assert len(da) == 26 and ("chestxray14", "imagenet_chestxray14") not in da  # the n/a cells
    assert set(g["architectures"].archs) == {"convnext_tiny", "swin_tiny", "convnext_base", "swin_base"}
    ds = {(c.task, c.fraction) for c in g["data-size"].configs}
    assert ds == {("chestxray14", 0.1), ("chestxray14", 0.25), ("chestxray14", 1.0), ("chexpert", 1.0),
                  ("mimic_cxr", 1.0)}
    for code, task in PAPER_TASKS.items():  # our tasks stand for the codes the registry prints
        assert get_task_spec(task).analog_of == code
    # narrowing the tasks keeps the papers' cells; choosing models asks for exactly those
    assert len(mb.validate_section_params("domain-adaptation", profile="paper", tasks=["chestxray14"]).configs) == 40
    assert len(mb.validate_section_params("domain-adaptation", profile="paper", tasks=["shenzhen"],
                                          inits=["imagenet", "imagenet_chestxray14"], num_seeds=2).configs) == 4


def test_paper_protocols_are_the_original_codes():
    cls = mb.create_task("chestxray14", "paper").protocol
    assert (cls.augment, cls.stored_size, cls.image_size, cls.test_crops, cls.stop_rule, cls.max_epochs) == (
        "paper_cls", 256, 224, 10, "original", 1000)
    seg = mb.create_task("siim_ptx", "paper").protocol
    assert (seg.augment, seg.stop_rule, seg.optimizer, seg.max_epochs, seg.patience) == (
        "paper_seg", "original", "adam", 200, 20)
    media = [c for c in mb.validate_section_params("architectures", profile="paper").configs if c.task == "siim_ptx"]
    assert {(c.optimizer, c.lr, c.weight_decay, c.warmup_epochs, c.scheduler, c.max_epochs, c.patience, c.upernet)
            for c in media} == {("adamw", 2e-4, 0.01, 20, "cosine_original", 500, 50, "original")}
    for profile in ("smoke", "demo", "colab"):  # the light profiles keep their protocol (and their run hashes)
        p = mb.create_task("chestxray14", profile).protocol
        assert (p.augment, p.eval_crop, p.stop_rule, p.warmup_epochs, p.normalization) == (
            "light", 1.0, "patience", 0, "init")
        s = mb.create_task("siim_ptx", profile).protocol
        assert (s.loss, s.scheduler, s.upernet) == ("dice", "cosine", "smp")


def test_original_stopping_rule_runs_one_epoch_longer():
    from medbench_core.engine import fit

    class Flat(torch.nn.Module):  # validation loss never improves after the first epoch
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return self.w.expand(len(x), 1) * 0

    task = mb.create_task("syn_txc", "smoke")
    x, y = torch.zeros(4, 3, 8, 8), torch.ones(4, 1)
    epochs = {}
    for rule in ("patience", "original"):
        r = fit(Flat(), [(x, y)], [(x, y)], task, device=torch.device("cpu"), optimizer="adam", lr=1e-3,
                weight_decay=0, max_epochs=20, patience=3, scheduler="cosine", lr_factor=0.5, lr_patience=1,
                loss="bce", progress=False, stop_rule=rule)
        epochs[rule] = r.epochs_run
    assert epochs == {"patience": 4, "original": 5}


def test_warmup_then_cosine():
    from medbench_core.engine import fit

    model = torch.nn.Linear(2, 1)
    task = mb.create_task("syn_txc", "smoke")
    x, y = torch.randn(8, 2), torch.ones(8, 1)
    r = fit(model, [(x, y)], [(x, y)], task, device=torch.device("cpu"), optimizer="adamw", lr=1e-3,
            weight_decay=0, max_epochs=8, patience=100, scheduler="cosine", lr_factor=0.5, lr_patience=1,
            loss="bce", progress=False, warmup_epochs=3)
    lrs = [h["lr"] for h in r.history]
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(1e-3) and lrs[3] > lrs[5] > lrs[7]


def test_evaluation_crops_at_the_input_size():
    from medbench_core.engine import centre_crop, ten_crop

    x = torch.arange(256.0).view(1, 1, 16, 16).expand(2, 3, 16, 16)
    c = centre_crop(x, 14)
    assert c.shape == (2, 3, 14, 14) and torch.equal(c, x[..., 1:15, 1:15])
    t = ten_crop(x, 14)
    assert t.shape == (20, 3, 14, 14) and torch.equal(t[0], x[0, :, :14, :14])  # crops as they are, no resize
    assert torch.equal(t[4], c[0]) and torch.equal(t[9], c[0].flip(-1))


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    """The FIXTURE results file, imported with `medbench results import` as a lab's file would be."""
    root = tmp_path_factory.mktemp("paper_fixture")
    path = root / "paper_results_FIXTURE.csv"
    n = paper_fixture.write(path)
    assert main(["results", "import", str(path), "--results-dir", str(root / "results")]) == 0
    return root / "results", n


def test_reproduced_vs_reported_cell_by_cell(fixture_store):
    results_dir, n = fixture_store
    assert n < PAPER_RUNS  # runs shared by two sections (same task, model and protocol) are stored once
    total = {"consistent": 0, "tested": 0}
    for s in SECTIONS:
        grid = mb.validate_section_params(s, profile="paper")
        df = load_grid_results(grid, results_dir)
        table = reproduction(s, df)
        c = counts(table)
        assert c["not_run"] == 0 and c["printed"] == (load_reported(s)["mark"] != "n/a").sum()
        if s == "domain-adaptation":  # the one cell the fixture shifts by 5 points is found, and only it
            bad = table[table["consistent"] == INCONSISTENT]
            assert list(bad["cell"]) == ["TXC · ImageNet"] and c["tested"] == 26 and c["consistent"] == 25
        else:
            assert c["consistent"] == c["tested"] > 0, table[table["consistent"] != CONSISTENT]
        total = {k: total[k] + c[k] for k in total}
    assert total == {"consistent": 148, "tested": 149}  # 152 printed; 3 figure values without a test


def test_section_pages_render_on_the_papers_grids(fixture_store):
    """Every view of every section page works on the papers' sparse grids (n/a cells, fractions on one task)."""
    import matplotlib.pyplot as plt

    from medbench_core.sections import summary

    results_dir, _ = fixture_store
    for s in SECTIONS:
        grid = mb.validate_section_params(s, profile="paper")
        res = Results(grid, load_grid_results(grid, results_dir), results_dir=str(results_dir))
        sec = grid.section
        assert len(sec.table(res).text)
        plt.close(sec.figure(res))
        v = sec.judge(res)
        assert v.outcome in OUTCOMES and v.reasons
        h = sec.headlines(res)
        assert h[f"{sec.prefix}_runs"] == len(grid.configs) and " of " in h[f"{sec.prefix}_reproduced"]
        assert "consistent" in sec.reproduction(res).text.columns
    items = summary.statuses("paper", results_dir)
    assert all(i.state == summary.RAN for i in items)
    heads = summary.headlines(items)
    a, b = map(int, heads["summary_reproduced"].split(" of "))
    assert (a, b) == (148, 149)


def test_plan_prints_the_budget_and_what_is_missing(tmp_path, monkeypatch, capsys):
    """`medbench sweep SECTION --profile paper --plan`: runs, images, epochs, GPU-hours, disk, and every missing
    dataset and weight file with the command that fixes it; nothing runs."""
    from medbench_core.plan import plan_grid

    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))  # an empty cache: nothing present
    assert main(["sweep", "domain-adaptation", "--profile", "paper", "--plan", "--results-dir",
                 str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "plan: domain-adaptation on paper: 260 runs (10 per cell)" in out
    assert "medbench data prepare shenzhen --root PATH --profile paper" in out
    assert "resnet50.imagenet_chexpert: missing: `medbench weights fetch resnet50.imagenet_chexpert`" in out
    assert f"whole study on paper: 1690 runs ({PAPER_RUNS} section runs" in out
    assert not (tmp_path / "results").exists()  # nothing ran, nothing was written
    plans = {p.task: p for p in plan_grid(mb.validate_section_params("domain-adaptation", profile="paper"))}
    assert plans["shenzhen"].train_images == 463 and plans["shenzhen"].images_source.startswith("exact")
    assert plans["shenzhen"].max_epochs == 1000 and plans["montgomery"].max_epochs == 200
    assert 0 < plans["shenzhen"].gpu_hours < plans["shenzhen"].gpu_hours_max


def test_readme_quotes_the_paper_grid_as_it_is():
    from medbench_core.paths import find_root

    distinct = {c.config_hash() for s in SECTIONS for c in mb.validate_section_params(s, profile="paper").configs}
    cells = sum(len(paper_cells(s)) for s in SECTIONS)
    text = (find_root() / "README.md").read_text()
    assert f"{cells} cells,\n{PAPER_RUNS:,} runs at ten per cell ({len(distinct):,} distinct" in text


def test_protocol_and_deviation_tables_for_the_methods_page():
    # the runs themselves are held to the original code in tests/sections/test_original.py
    from medbench_core.protocols import deviations_table, protocol_table

    assert len(protocol_table()) == 4
    dev = deviations_table()
    assert dev.notna().all().all() and (dev != "").all().all() and dev["aspect"].is_unique
    for aspect in ("validation augmentation (segmentation)", "CheXpert uncertain labels (LSR-Ones)", "Dice on DRIVE",
                   "which Dice", "GridDistortion, OpticalDistortion"):
        assert aspect in set(dev["aspect"])
