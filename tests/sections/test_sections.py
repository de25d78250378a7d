"""The five sections: grids, training-fraction manifests, and verdict rules on constructed results."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import medbench_core as mb
from medbench_core.data import fraction_indices, load_task_data, train_subset
from medbench_core.run_tables import pretraining_table
from medbench_core.scores import pair_differences
from medbench_core.sections import Results


def test_sections_in_the_papers_order_with_their_grids():
    assert mb.list_sections() == ["granularity", "self-supervised", "domain-adaptation", "architectures",
                                  "data-size"]
    arch = mb.validate_section_params("architectures", profile="smoke")
    # a plain ViT has no U-Net encoder: no segmentation runs for it, every other cell is there
    assert not [c for c in arch.configs if c.arch == "mini_vit" and c.task == "syn_lxs"]
    assert len(arch.configs) == (2 * 4 * 2 - 2) * len(arch.seeds)
    ds = mb.validate_section_params("data-size", profile="smoke")
    assert sorted({c.fraction for c in ds.configs}) == [0.01, 0.05, 0.1, 0.25, 0.5, 1.0]
    # runs are shared across sections through their hash: the granularity baseline is the domain-adaptation one
    gr, da = (set(mb.validate_section_params(s, profile="demo").hashes) for s in ("granularity",
                                                                                  "domain-adaptation"))
    assert len(gr & da) == 2 * 3 * mb.get_profile("demo").num_runs  # scratch, ImageNet-like; three shared tasks


def test_fraction_manifests_are_nested_train_only_and_used_by_runs(tmp_path):
    task = mb.create_task("syn_dxc", "smoke")
    fractions = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
    path = mb.write_fraction_manifest(task, fractions, tmp_path)
    man = json.loads(path.read_text())
    assert man["split"] == "train" and man["n_train"] == task.sizes[0]
    sets = [set(man["fractions"][f"{f:g}"]) for f in fractions]
    assert all(a <= b for a, b in zip(sets, sets[1:])) and len(sets[-1]) == task.sizes[0]
    assert all(i.startswith("train/") for i in sets[-1]) and len(sets[0]) >= 1
    # the run's subset is exactly the manifest's, and validation/test are untouched
    data = load_task_data(task)
    sub = train_subset(data["train"], 0.25)
    keep = sorted(int(i.split("/")[1]) for i in sets[3])
    assert np.array_equal(sub.images, data["train"].images[keep])
    assert np.array_equal(fraction_indices(task.sizes[0], 0.25), keep)
    with pytest.raises(ValueError, match="fraction"):
        fraction_indices(10, 0)


def _runs(scores: dict) -> pd.DataFrame:
    """Stored-run rows from {(group, task, fraction): [scores in percent per seed]}."""
    rows = []
    for (group, task, frac), vals in scores.items():
        arch, init = group.split("/") if "/" in group else ("test_resnet", group)
        metric = "dice" if mb.create_task(task, "smoke").kind != "multilabel_classification" else "mean_auc"
        for seed, v in enumerate(vals):
            h = f"{group}-{task}-{frac}-{seed}"
            base = dict(task=task, init=init, arch=arch, group=group, seed=seed, fraction=frac, config_hash=h)
            rows.append(base | dict(split="test", metric=metric, value=v / 100))
            rows.append(base | dict(split="train", metric="n_images", value=round(500 * frac)))
    return pd.DataFrame(rows)


TIGHT = [0.0, 0.1, -0.1]  # seed-to-seed spread in points


def _around(mean):
    return [mean + d for d in TIGHT]


def _verdict(section: str, df: pd.DataFrame, **grid) -> str:
    """The section plug-in's verdict on constructed runs, for its smoke grid narrowed to ``grid``."""
    g = dataclasses.replace(mb.validate_section_params(section, profile="smoke"), **grid)
    return Results(g, df).verdict.outcome


def test_granularity_verdict_follows_the_claimed_pattern():
    def verdict(seg_fine, cls_fine):
        df = _runs({("synth_imagenet", "syn_pxs", 1.0): _around(70), ("synth_inat", "syn_pxs", 1.0):
                    _around(seg_fine), ("synth_imagenet", "syn_txc", 1.0): _around(90),
                    ("synth_inat", "syn_txc", 1.0): _around(cls_fine)})
        return _verdict("granularity", df, tasks=("syn_txc", "syn_pxs"))

    assert verdict(seg_fine=72, cls_fine=88) == "agrees"
    assert verdict(seg_fine=68, cls_fine=88) == "does not agree"  # significantly against on segmentation
    assert verdict(seg_fine=70.05, cls_fine=89.95) == "inconclusive"  # right direction, nothing significant


def test_self_supervised_verdict():
    def verdict(seg_ssl, cls_ssl):
        df = _runs({("synth_imagenet", "syn_pxs", 1.0): _around(70), ("ssl_swav", "syn_pxs", 1.0): _around(seg_ssl),
                    ("ssl_byol", "syn_pxs", 1.0): _around(69.9), ("synth_imagenet", "syn_txc", 1.0): _around(90),
                    ("ssl_swav", "syn_txc", 1.0): _around(cls_ssl), ("ssl_byol", "syn_txc", 1.0): _around(90.05)})
        return _verdict("self-supervised", df, tasks=("syn_txc", "syn_pxs"),
                        inits=("synth_imagenet", "ssl_swav", "ssl_byol"))

    assert verdict(seg_ssl=73, cls_ssl=90) == "agrees"
    assert verdict(seg_ssl=65, cls_ssl=90) == "does not agree"  # no SSL model ahead on segmentation
    assert verdict(seg_ssl=70.05, cls_ssl=90) == "inconclusive"


def test_architecture_and_data_size_verdicts():
    conv, swin = "mini_convnext/synth_imagenet", "mini_swin/synth_imagenet"

    def arch(gap):
        df = _runs({(conv, "syn_txc", 1.0): _around(90), (swin, "syn_txc", 1.0): _around(90 - gap),
                    (conv, "syn_lxs", 1.0): _around(95), (swin, "syn_lxs", 1.0): _around(95 - gap)})
        return _verdict("architectures", df, tasks=("syn_txc", "syn_lxs"))

    assert arch(2) == "agrees" and arch(-2) == "does not agree" and arch(0.05) == "inconclusive"

    def size(gaps):
        fr = (0.05, 0.1, 1.0)
        df = _runs({**{(conv, "syn_dxc", f): _around(80) for f in fr},
                    **{(swin, "syn_dxc", f): _around(80 - g) for f, g in zip(fr, gaps)}})
        diffs = pair_differences(df, [("swin - conv", conv, swin)], "syn_dxc")
        assert list(diffs["labelled images"]) == [25, 50, 500]
        return _verdict("data-size", df, inits=("synth_imagenet",), fractions=fr)

    assert size([4, 3, 0.5]) == "agrees"  # behind with few labels, the gap closes
    assert size([-3, -2, 0]) == "does not agree"  # ahead with few labels
    assert size([4, 3, 5]) == "inconclusive"  # behind, but the gap does not close


# -- sections as plug-ins: selection by role and registry facts, on every profile ----------------------------------

def test_plugins_select_by_registry_facts_not_names():
    from medbench_core.sections.base import Results as R

    fourteen = {"insdis", "moco_v1", "pcl_v1", "pirl", "pcl_v2", "simclr_v1", "moco_v2", "simclr_v2", "sela_v2",
                "infomin", "byol", "deepcluster_v2", "swav", "barlow_twins"}  # DART 2021's, on the papers' grid
    for profile, expected in (("paper", fourteen),
                              ("demo", {"ssl_simclr", "ssl_moco_v2", "ssl_byol", "ssl_swav", "ssl_barlow_twins",
                                        "ssl_vicreg"})):
        grid = mb.validate_section_params("self-supervised", profile=profile)
        assert set(grid.section.ssl_inits(R(grid, pd.DataFrame()))) == expected, profile
    for profile, first, second in (("paper", ("convnext_base", "swin_base"), ("convnext_tiny", "swin_tiny")),
                                   ("colab", ("convnext_tiny", "swin_tiny"), ("resnet50", "deit_tiny")),
                                   ("demo", ("mini_convnext", "mini_swin"), ("test_resnet", "mini_vit"))):
        grid = mb.validate_section_params("architectures", profile=profile)
        pairs = grid.section.pairs(R(grid, pd.DataFrame()))
        got = [(b.split("/")[0], a.split("/")[0]) for _, a, b in pairs]
        assert got[:2] == [first, second], profile  # the candidate/rival pair first, then the others
    # the paper's row of the same size; the smallest pair, said as such, for the miniatures
    assert mb.get_section("architectures").for_profile("paper").paper_pair() == ("ConvNeXt-B vs Swin-B", True)
    assert mb.get_section("architectures").for_profile("colab").paper_pair() == ("ConvNeXt-T vs Swin-T", True)
    assert mb.get_section("architectures").paper_pair() == ("ConvNeXt-T vs Swin-T", False)


def test_nothing_outside_the_plugins_branches_on_a_section_key(repo_root):
    import re

    for path in (repo_root / "medbench_core").rglob("*.py"):
        if "sections" in path.parts:
            continue
        text = path.read_text()
        assert not re.search(r"(key|section)\s*==\s*[\"'](granularity|self-supervised|domain-adaptation|"
                             r"architectures|data-size)", text), path
        assert not re.search(r"startswith\([\"'](ssl_|mini_|synth_)", text), path


def test_a_verdict_from_part_of_the_claim_says_which_part():
    df = _runs({("synth_imagenet", "syn_txc", 1.0): _around(90), ("synth_inat", "syn_txc", 1.0): _around(88)})
    g = dataclasses.replace(mb.validate_section_params("granularity", profile="smoke"), tasks=("syn_txc",))
    v = Results(g, df).verdict
    assert "classification tasks only" in v.scope and "segmentation" in v.scope
    assert v.scope in str(v) and v.scope in v._repr_markdown_()
    both = dataclasses.replace(g, tasks=("syn_txc", "syn_pxs"))
    df2 = pd.concat([df, _runs({("synth_imagenet", "syn_pxs", 1.0): _around(70),
                                ("synth_inat", "syn_pxs", 1.0): _around(72)})])
    assert Results(both, df2).verdict.scope == ""


@pytest.mark.slow
def test_summary_tells_ran_failed_and_not_run_apart(tmp_path, built_book):
    import nbformat

    from medbench_core.sections import summary

    results, executed = tmp_path / "results", tmp_path / "executed"
    executed.mkdir()
    items = summary.statuses("smoke", results, executed)
    assert [s.state for s in items] == ["not run"] * 5
    assert items[0].label == f"not run (0 of {len(items[0].grid.hashes)} runs stored)"
    results = built_book[2]  # every smoke run stored
    da = summary.section_status("domain-adaptation", "smoke", results, executed)
    assert da.state == "ran" and da.label.split(";")[0] in ("agrees", "does not agree", "inconclusive")
    assert da.label.endswith("; not measured (2 seeds)")  # the verdict's stability, in a few words
    # its notebook failed in its third code cell (its runs are stored all the same): failed, with the cell
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2"),
                                         nbformat.v4.new_code_cell("x")])
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="KeyError", evalue="'difference'", traceback=[])]
    nbformat.write(nb, executed / "03_domain_adaptation.failed.ipynb")
    da = summary.section_status("domain-adaptation", "smoke", results, executed)
    assert da.state == "failed" and "failed in cell 3" in da.label and da.verdict is None
    assert summary.headlines([da])["summary_domain_adaptation"] == "failed"


def test_the_report_never_trains_or_fetches(tmp_path):
    

    empty = tmp_path / "cache"
    for profile, section in (("smoke", "domain-adaptation"), ("paper", "self-supervised")):
        grid = mb.validate_section_params(section, profile=profile)
        text = pretraining_table(grid, cache_dir=empty).text
        assert (text["check (last stage)"] == "not in this machine's cache (runs made elsewhere)").all(), profile
    assert not list(empty.rglob("*.pt"))


def test_architecture_headline_is_the_claims_pair():
    """The headline gap is the candidate minus the rival (ImageNet-pre-trained ConvNeXt − Swin), not the first
    pair in the grid's order (which starts from scratch)."""
    conv, swin = "mini_convnext/synth_imagenet", "mini_swin/synth_imagenet"
    df = _runs({(conv, "syn_txc", 1.0): _around(90), (swin, "syn_txc", 1.0): _around(87),
                ("mini_convnext/scratch", "syn_txc", 1.0): _around(70),
                ("mini_swin/scratch", "syn_txc", 1.0): _around(75)})
    g = dataclasses.replace(mb.validate_section_params("architectures", profile="smoke"), tasks=("syn_txc",))
    gaps = g.section.headlines(Results(g, df))["arch_main_gaps"]
    assert gaps.startswith("+3.00 (") and "-5.00" not in gaps
