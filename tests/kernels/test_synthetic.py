import numpy as np
import pytest

from medbench_core import synthetic as S


def test_chest_generator_is_deterministic_and_seed_sensitive():
    a = S.chest_xrays(40, 32, seed=5)
    b = S.chest_xrays(40, 32, seed=5)
    c = S.chest_xrays(40, 32, seed=6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["images"], c["images"])


def test_chunking_does_not_change_the_images(monkeypatch):
    whole = S.chest_xrays(20, 32, seed=1)
    monkeypatch.setattr(S, "_CHUNK", 7)
    chunked = S.chest_xrays(20, 32, seed=1)
    np.testing.assert_array_equal(whole["labels"], chunked["labels"])
    assert whole["images"].shape == chunked["images"].shape


def test_chest_shapes_labels_and_masks():
    out = S.chest_xrays(400, 32, seed=0, prevalence=0.3)
    assert out["images"].dtype == np.uint8 and out["images"].shape == (400, 32, 32)
    assert out["labels"].shape == (400, 6)
    prev = out["labels"].mean(0)
    assert np.all(np.abs(prev[:5] - 0.3) < 0.07) and prev[5] == 0  # cavity only when it is the target
    ptx = out["pneumothorax"].reshape(400, -1).any(1)
    np.testing.assert_array_equal(ptx, out["labels"][:, 4].astype(bool))  # a mask exactly where the label is
    assert out["lungs"].reshape(400, -1).mean(1).min() > 0.05  # every image has lungs


def test_findings_change_the_image_where_they_are():
    base = S.chest_xrays(200, 48, seed=3, prevalence=0.0)
    ptx = S.chest_xrays(200, 48, seed=3, prevalence=0.0, target="pneumothorax", target_prevalence=1.0)
    m = ptx["pneumothorax"].astype(bool)
    # a pneumothorax region is darker than the same lung without it (air, no markings)
    assert ptx["images"][m].mean() < base["images"][m].mean() - 5
    tb = S.chest_xrays(100, 48, seed=3, prevalence=0.0, target="cavity", target_prevalence=0.5)
    assert 0.3 < tb["labels"][:, 5].mean() < 0.7


def test_sites_differ():
    a = S.chest_xrays(100, 32, seed=2, site="A")["images"].astype(float)
    b = S.chest_xrays(100, 32, seed=2, site="B")["images"].astype(float)
    assert abs(a.mean() - b.mean()) > 3 or abs(a.std() - b.std()) > 3
    with pytest.raises(ValueError, match="valid sites"):
        S.chest_xrays(2, 32, seed=0, site="C")


def test_natural_images_have_nested_labels():
    out = S.natural_images(300, 32, seed=0)
    assert out["images"].shape == (300, 3, 32, 32) and out["images"].dtype == np.uint8
    np.testing.assert_array_equal(out["coarse"], out["fine"] // 4)
    assert set(np.unique(out["fine"])) == set(range(16))
    np.testing.assert_array_equal(out["images"], S.natural_images(300, 32, seed=0)["images"])


def test_fundus_vessels_lie_inside_the_field_of_view():
    a, b = S.fundus_images(3, 48, seed=5), S.fundus_images(3, 48, seed=5)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # deterministic
    assert a["images"].shape == (3, 3, 48, 48) and a["images"].dtype == np.uint8
    assert not (a["vessels"] & ~a["fov"].astype(bool)).any()
    assert 0.05 < a["vessels"].mean() < 0.3 and 0.5 < a["fov"].mean() < 0.8
    assert (a["images"][:, :, a["fov"][0] == 0] == 0).mean() > 0.95  # black outside the field of view
    inside = a["fov"] == 1
    v, bg = a["vessels"] == 1, inside & (a["vessels"] == 0)
    assert a["images"][:, 0][v].mean() < a["images"][:, 0][bg].mean() - 20  # vessels are darker


def test_outside_the_field_of_view_counts_for_neither_loss_nor_dice():
    import torch

    from medbench_core.data import load_task_data
    from medbench_core.engine import evaluate, make_loss
    from medbench_core.tasks import IGNORE, create_task

    task = create_task("syn_vxs", "smoke")
    test = load_task_data(task)["test"]
    assert set(np.unique(test.targets)) == {0, 1, IGNORE}
    y = torch.from_numpy(test.targets[:4]).float()
    inside = torch.where(y == 1, 20.0, -20.0)  # perfect inside the field of view
    outside = torch.where(y == IGNORE, 20.0, 0.0)  # and confidently wrong outside it
    for name in ("bce", "dice", "bce_dice"):
        assert make_loss(name)(inside + outside, y) < 0.01, name

    class Const(torch.nn.Module):
        def forward(self, x):
            return logits

    logits = inside + outside
    loader = [(torch.zeros(4, 3, 8, 8), y)]
    assert evaluate(Const(), loader, make_loss("bce"), task, torch.device("cpu"))["dice"] == pytest.approx(1.0)
