import pickle

import pytest
import timm
import torch

import medbench_core as mb
from medbench_core.models import CheckpointAuditError, encoder_key_map, load_backbone, read_checkpoint


def _save(path, state, arch="test_resnet"):
    torch.save({"arch": arch, "state_dict": state}, path)
    return path


@pytest.fixture
def source_state():
    torch.manual_seed(0)
    return timm.create_model("test_resnet", num_classes=5).state_dict()


def test_classifier_load_fills_every_backbone_tensor(tmp_path, source_state):
    ckpt = _save(tmp_path / "a.pt", source_state)
    model = mb.create_model("test_resnet", mb.create_task("syn_txc", "smoke"), checkpoint=ckpt)
    rep = model.load_report
    assert rep.loaded == len(source_state) - 2 and rep.new_head == ["fc.weight", "fc.bias"]
    for k, v in model.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, source_state[k]), k


def test_missing_backbone_tensor_is_an_error_naming_it(tmp_path, source_state):
    state = dict(source_state)
    del state["layer2.0.conv1.weight"]
    with pytest.raises(CheckpointAuditError, match=r"missing.*layer2\.0\.conv1\.weight"):
        mb.create_model("test_resnet", mb.create_task("syn_dxc", "smoke"), checkpoint=_save(tmp_path / "m.pt", state))


def test_unexpected_and_misshaped_tensors_are_errors(source_state):
    model = timm.create_model("test_resnet", num_classes=5)
    with pytest.raises(CheckpointAuditError, match=r"unexpected.*projector\.weight"):
        load_backbone(model, {**source_state, "projector.weight": torch.zeros(3)}, head_prefixes=("fc.",))
    bad = dict(source_state)
    bad["conv1.0.weight"] = torch.zeros(1, 1, 1, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointAuditError, match=r"another shape.*conv1\.0\.weight"):
        load_backbone(model, bad, head_prefixes=("fc.",))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was loaded


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    other = timm.create_model("resnet18", num_classes=5).state_dict()
    with pytest.raises(CheckpointAuditError, match="resnet18"):
        mb.create_model("test_resnet", mb.create_task("syn_dxc", "smoke"),
                        checkpoint=_save(tmp_path / "r18.pt", other, arch="resnet18"))
    # the same tensors without the arch tag still fail the audit, by key names
    with pytest.raises(CheckpointAuditError, match="missing"):
        mb.create_model("test_resnet", mb.create_task("syn_dxc", "smoke"),
                        checkpoint=_save(tmp_path / "r18b.pt", other, arch=None))


def test_segmentation_encoder_gets_every_backbone_tensor(tmp_path, source_state):
    ckpt = _save(tmp_path / "s.pt", source_state)
    model = mb.create_model("test_resnet", mb.create_task("syn_pxs", "smoke"), checkpoint=ckpt)
    enc = model.encoder.state_dict()
    mapping, unused = encoder_key_map("test_resnet", enc.keys())
    assert set(mapping.values()) == set(enc) and unused == ["fc.weight", "fc.bias"]
    for src, dst in mapping.items():
        assert torch.equal(enc[dst], source_state[src]), dst
    assert model.load_report.loaded == len(enc) and model.load_report.dropped_head == ["fc.weight", "fc.bias"]


def test_segmentation_refuses_incomplete_checkpoint(tmp_path, source_state):
    state = {k: v for k, v in source_state.items() if not k.startswith("layer4.")}
    with pytest.raises(CheckpointAuditError, match="layer4"):
        mb.create_model("test_resnet", mb.create_task("syn_pxs", "smoke"), checkpoint=_save(tmp_path / "p.pt", state))


def test_checkpoints_are_read_without_unpickling_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"arch": "test_resnet", "state_dict": {}, "x": Evil()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        read_checkpoint(path)
    torch.save({"weights": {}}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointAuditError, match="not a medbench checkpoint"):
        read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.pt")


MINI = ["test_resnet", "mini_convnext", "mini_swin", "mini_vit"]


@pytest.mark.parametrize("arch", MINI)
@pytest.mark.parametrize("size", [32, 48])
def test_architecture_classifies_segments_and_takes_its_pretrained_weights(arch, size, tmp_path):
    """Every architecture of the comparison: a classifier and (where it has a feature pyramid) a U-Net at the
    profile's image size, both filled completely from one pre-training checkpoint of that architecture."""
    import dataclasses

    from medbench_core.models import build_classifier, get_arch

    def at(task):
        t = mb.create_task(task, "smoke")
        return dataclasses.replace(t, protocol=dataclasses.replace(t.protocol, image_size=size))

    torch.manual_seed(0)
    source = build_classifier(arch, 4, size)
    assert 0.3e6 < sum(p.numel() for p in source.parameters()) < 0.8e6  # same size class: designs, not sizes
    ckpt = _save(tmp_path / "p.pt", source.state_dict(), arch=arch)
    x = torch.randn(2, 3, size, size)
    cls = mb.create_model(arch, at("syn_dxc"), checkpoint=ckpt)
    for k, v in cls.state_dict().items():
        if k in source.state_dict() and not k.startswith(tuple(cls.load_report.new_head)):
            assert torch.equal(v, source.state_dict()[k]), k
    assert cls(x).shape == (2, 5) and cls.load_report.loaded > 10
    if get_arch(arch).segmentation:
        seg = mb.create_model(arch, at("syn_pxs"), checkpoint=ckpt)
        assert seg(x).shape == (2, 1, size, size)
        # every tensor of the encoder comes from the checkpoint; unused are the head and, at 48 px (a 4-level
        # U-Net), the deepest stage
        assert seg.load_report.loaded == len(seg.encoder.state_dict())
        assert all(k in source.state_dict() for k in seg.load_report.dropped_head)
    else:
        with pytest.raises(ValueError, match="cannot be a U-Net encoder"):
            mb.create_model(arch, at("syn_pxs"))


def test_swin_checkpoint_of_another_image_size_is_resampled_and_said(tmp_path):
    """Swin's relative-position tables depend on the window, hence on the image size: an audited load resamples
    them as timm does and its report names them."""
    from medbench_core.models import build_classifier

    ckpt = _save(tmp_path / "s.pt", build_classifier("mini_swin", 4, 32).state_dict(), arch="mini_swin")
    t = mb.create_task("syn_txc", "demo")  # 48 px: window 3 instead of 2
    report = mb.create_model("mini_swin", t, checkpoint=ckpt).load_report
    assert len(report.resampled) == 4 and all(k.endswith("relative_position_bias_table") for k in report.resampled)


def test_released_transformer_weights_load_at_a_smaller_image_size(tmp_path):
    """Swin's window-7 relative-position tables and DeiT's 14x14 position embedding are resampled (as timm does)
    when the profile's images are smaller than the release's 224 px; every other tensor is still audited."""
    import timm

    from medbench_core.models import CheckpointAuditError, create_model
    from medbench_core.tasks import create_task

    task = create_task("chestmnist", "colab")  # 64 px
    for arch, name, n in (("swin_tiny", "swin_tiny_patch4_window7_224", 8), ("deit_tiny", "deit_tiny_patch16_224", 1)):
        state = timm.create_model(name, num_classes=0).state_dict()
        torch.save({"arch": arch, "state_dict": state}, tmp_path / f"{arch}.pt")
        model = create_model(arch, task, checkpoint=tmp_path / f"{arch}.pt")
        assert len(model.load_report.resampled) == n and "resampled" in str(model.load_report), arch
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, len(task.classes))
        kept = next(k for k in state if k.endswith("qkv.weight"))
        assert torch.equal(model.state_dict()[kept], state[kept])  # the rest is the release's, unchanged
    bad = dict(state)
    bad["blocks.0.attn.qkv.weight"] = bad["blocks.0.attn.qkv.weight"][:10]  # not a position table: still refused
    torch.save({"arch": "deit_tiny", "state_dict": bad}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointAuditError, match="another shape"):
        create_model("deit_tiny", task, checkpoint=tmp_path / "bad.pt")
