"""The paper profile against the original code (MR-HosseinzadehTaher/BenchmarkTransferLearning at a pinned commit):
every run of every section's paper grid, field by field, against the facts read from that code with file and line
(`medbench_core/data/original_protocol.csv`); and the parts of the original's protocol that medbench now follows
(batch-wide Dice, its cosine steps, its UPerNet head, its input normalisation, DRIVE without online augmentation)."""
from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest
import torch

import medbench_core as mb
from medbench_core import original
from medbench_core.engine import batch_dice_loss, fit, soft_dice_loss
from medbench_core.experiments import make_run_config
from medbench_core.protocols import DEVIATIONS, covering_deviation
from medbench_core.sections import list_sections

# the protocol fields every scope with a script in the original must state (plateau scopes also its factor and patience)
CHECKED = ("optimizer", "lr", "weight_decay", "batch_size", "max_epochs", "patience", "stop_rule", "scheduler",
           "warmup_epochs", "loss", "image_size", "eval_crop", "test_crops", "augment", "normalization", "amp")


@pytest.fixture(scope="module")
def paper_configs():
    return {c.config_hash(): c for s in list_sections() for c in mb.validate_section_params(s, profile="paper").configs}


def test_the_facts_table_is_well_formed():
    facts = original.facts()
    assert len(facts) > 90 and len(original.ORIGINAL_COMMIT) == 40
    for f in facts:
        assert f.scope.split(":")[0] in original.SCOPES, f
        assert f.file.startswith(("Version1/", "Version2/")) and re.fullmatch(r"\d+(-\d+)?", f.line), f
        assert f.value != "" and f.original != "", f
        assert f.url.startswith(f"https://github.com/{original.ORIGINAL_REPOSITORY}/blob/{original.ORIGINAL_COMMIT}/")
    pairs = Counter((f.scope, f.field) for f in facts)
    assert not [p for p, n in pairs.items() if n > 1], "one value per scope and field"
    for scope in set(original.SCOPES) - {"assumed"}:
        stated = {f.field for f in facts if f.scope == scope}
        assert set(CHECKED) <= stated, (scope, set(CHECKED) - stated)
        if any(f.field == "scheduler" and f.value == "plateau" for f in facts if f.scope == scope):
            assert {"lr_factor", "lr_patience"} <= stated, scope


def test_every_paper_run_is_the_original_or_a_listed_deviation(paper_configs):
    scopes, checked, used, bugs = Counter(), 0, set(), []
    for cfg in paper_configs.values():
        scope = original.scope_of(cfg)
        scopes[scope] += 1
        facts = original.facts_for(scope, cfg.arch)
        assert facts or scope == "assumed", cfg
        checked += len(facts)
        used.update(f.scope for f in facts)
        for diff in original.check_config(cfg):
            if diff.deviation is None:
                bugs.append(str(diff))
    assert not bugs, sorted(set(bugs))[:10]
    assert set(scopes) == set(original.SCOPES)  # every script of the original has runs of ours, and RSNA PE
    assert checked > 10_000
    # every scope-wide fact applies to some run; per-architecture facts to the architectures the grids use
    assert {f.scope for f in original.facts() if ":" not in f.scope} <= used
    assert {"segmentation_v2:convnext_base", "segmentation_v2:swin_base"} <= used


def test_a_wrong_value_in_the_paper_profile_fails_the_check(paper_configs):
    seg_v2 = next(c for c in paper_configs.values() if original.scope_of(c) == "segmentation_v2")
    cls = next(c for c in paper_configs.values() if original.scope_of(c) == "classification")
    for cfg, field, wrong in ((seg_v2, "weight_decay", 0.0), (seg_v2, "loss", "dice"), (cls, "lr", 1e-4),
                              (cls, "normalization", "init"), (seg_v2, "upernet", "smp")):
        diffs = [d for d in original.check_config(dataclasses.replace(cfg, **{field: wrong}))
                 if d.deviation is None]
        assert diffs, (field, wrong)
        assert field in " ".join(str(d) for d in diffs) or field == "upernet"  # the head's facts name it
    # and a listed deviation covers only the fields it names
    assert covering_deviation("drive", "batch_size") and covering_deviation("segmentation_v2", "amp", "swin_base")
    assert covering_deviation("drive", "lr") is None


def test_every_listed_field_deviation_covers_a_real_difference(paper_configs):
    covering = Counter()
    for cfg in paper_configs.values():
        covering.update(d.deviation for d in original.check_config(cfg))
    for dev in DEVIATIONS:
        if dev.fields:
            assert covering[dev.aspect], f"{dev.aspect} covers no difference: remove it or its fields"


def test_the_original_cosine_steps_and_warm_up_drive_the_learning_rate():
    task = mb.create_task("syn_pxs", "smoke")
    from medbench_core.data import BatchLoader, load_task_data

    data = load_task_data(task)

    for warmup, expected in ((0, [1.0, 1.0, 0.854, 0.5]), (2, [0.0, 0.5, 1.0, 0.5])):
        torch.manual_seed(0)
        model = mb.create_model("test_resnet", task)
        out = fit(model, BatchLoader(data["train"], 8, train=True, seed=0), BatchLoader(data["val"], 8, train=False),
                  task,
                  device=torch.device("cpu"), optimizer="adam", lr=1e-3, weight_decay=0.0, max_epochs=4,
                  patience=10, scheduler="cosine_original", lr_factor=0.5, lr_patience=1, loss="dice_batch",
                  warmup_epochs=warmup)
        assert [round(h["lr"] / 1e-3, 3) for h in out.history] == expected, warmup


def test_batch_dice_pools_the_batch_and_per_image_dice_averages_it():
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, :4] = 1  # a large mask and an empty one
    logits = torch.where(target > 0, 10.0, -10.0)
    logits[1, 0, 0, 0] = 10.0  # one false positive on the empty image
    # pooled: the false pixel barely counts; per image: the empty image scores (0 + 1) / (1 + 1)
    assert float(batch_dice_loss(logits, target)) == pytest.approx(1 - (2 * 32 + 1) / (33 + 32 + 1), abs=1e-3)
    assert float(soft_dice_loss(logits, target)) == pytest.approx((0 + (1 - 1 / 2)) / 2, abs=1e-3)


def test_inputs_are_normalised_as_the_original_does():
    from medbench_core.inputs import input_normalisation
    from medbench_core.zoo.records import IMAGENET_MEAN

    seg1 = make_run_config("granularity", "siim_ptx", "simclr_v1", "resnet50", 0, "paper")
    cls = make_run_config("self-supervised", "shenzhen", "simclr_v1", "resnet50", 0, "paper")
    drive = make_run_config("granularity", "drive", "imagenet", "resnet50", 0, "paper")
    assert input_normalisation(seg1) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # Version 1 segmentation: none
    assert input_normalisation(cls)[0] == IMAGENET_MEAN  # SimCLR too, as the original
    assert input_normalisation(drive)[0] == IMAGENET_MEAN and drive.augment == "none"
    demo = make_run_config("self-supervised", "syn_pxs", "ssl_simclr", "test_resnet", 0, "demo")
    assert demo.normalization == "init" and demo.loss == "bce_dice"  # light: as before


def test_the_original_upernet_head():
    from medbench_core.upernet import UPerNet, build_upernet, head_spec

    torch.manual_seed(0)
    model = build_upernet("convnext_atto", "convnext_base", depth=5)  # ConvNeXt-B's head settings, a small backbone
    assert isinstance(model, UPerNet)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 64, 64)
    head = model.head
    assert [b[0].output_size for b in head.ppm.branches] == [1, 2, 4, 6]
    assert any(isinstance(m, torch.nn.Dropout2d) and m.p == 0.1 for m in head.ppm.modules())
    assert head.classifier.in_channels == 128 and head.classifier.kernel_size == (3, 3)  # ConvNeXt-B's width
    assert isinstance(head.smooth, torch.nn.Conv2d)  # one smoothing convolution for the three fused levels
    drop = [m.drop_prob for m in model.encoder.modules() if type(m).__name__ == "DropPath"]
    assert drop and max(drop) == pytest.approx(head_spec("convnext_base").drop_path_rate)
    # a MedIA 2025 segmentation run builds it; elsewhere ConvNeXt and Swin keep segmentation-models-pytorch's
    from medbench_core.inputs import task_of

    for arch in ("convnext_tiny", "swin_tiny"):
        cfg = make_run_config("architectures", "syn_pxs", "scratch", arch, 0, "smoke", upernet="original",
                              image_size=64)
        model = mb.create_model(arch, task_of(cfg))
        assert isinstance(model, UPerNet) and model(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 64, 64)
        assert model.head.classifier.in_channels == {"convnext_tiny": 96, "swin_tiny": 192}[arch]
        light = make_run_config("architectures", "syn_pxs", "scratch", arch, 0, "smoke", image_size=64)
        assert light.upernet == "smp" and not isinstance(mb.create_model(arch, task_of(light)), UPerNet)

