"""Checkpoints in each release's own layout, written by the tests from a randomly initialised timm model.

Key names, nesting, extra heads and tensor shapes follow each release (ResNet-50 sized, ConvNeXt-T, Swin-T, DeiT-T);
the values are random. Converters must turn them back into exactly the timm model's tensors.
"""
from __future__ import annotations

import argparse
import pickle
import re
import sys
import types
from pathlib import Path
from typing import NamedTuple

import numpy as np
import timm
import torch


def timm_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}


def backbone(state: dict, head: str = "fc.") -> dict:
    return {k: v for k, v in state.items() if not k.startswith(head)}


def write_torchvision(state: dict, path: Path) -> Path:
    torch.save(state, path)  # torchvision ResNet-50: plain state dict with fc (1000 classes)
    return path


def write_barlow(state: dict, path: Path) -> Path:
    torch.save(backbone(state), path)  # Barlow Twins' resnet50.pth: torchvision keys, no fc
    return path


def write_moco(state: dict, path: Path, *, v2: bool = True) -> Path:
    """MoCo / PCL: query and key encoders, the MLP head as fc.0/fc.2 (v2) or fc (v1), the queue, an optimiser."""
    sd = {}
    for enc in ("encoder_q", "encoder_k"):
        for k, v in backbone(state).items():
            sd[f"module.{enc}.{k}"] = v
        if v2:
            sd[f"module.{enc}.fc.0.weight"], sd[f"module.{enc}.fc.0.bias"] = torch.zeros(2048, 2048), torch.zeros(2048)
            sd[f"module.{enc}.fc.2.weight"], sd[f"module.{enc}.fc.2.bias"] = torch.zeros(128, 2048), torch.zeros(128)
        else:
            sd[f"module.{enc}.fc.weight"], sd[f"module.{enc}.fc.bias"] = torch.zeros(128, 2048), torch.zeros(128)
    sd["module.queue"], sd["module.queue_ptr"] = torch.zeros(128, 64), torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}},
               path)
    return path


def write_swav(state: dict, path: Path, *, prototypes: int = 1) -> Path:
    """SwAV / DeepCluster-v2 / SeLa-v2: plain dict under ``module.``, projection head, prototypes (several for
    DeepCluster-v2: prototypes0, prototypes1, ...)."""
    sd = {f"module.{k}": v for k, v in backbone(state).items()}
    sd["module.projection_head.0.weight"], sd["module.projection_head.0.bias"] = torch.zeros(2048, 2048), \
        torch.zeros(2048)
    for stat in ("weight", "bias", "running_mean", "running_var"):
        sd[f"module.projection_head.1.{stat}"] = torch.zeros(2048)
    sd["module.projection_head.3.weight"], sd["module.projection_head.3.bias"] = torch.zeros(128, 2048), \
        torch.zeros(128)
    if prototypes == 1:
        sd["module.prototypes.weight"] = torch.zeros(3000, 128)
    else:
        for i in range(prototypes):
            sd[f"module.prototypes{i}.weight"] = torch.zeros(3000, 128)
    torch.save(sd, path)
    return path


def write_pycontrast(state: dict, path: Path) -> Path:
    """InsDis / PIRL / InfoMin: ``model`` with ``module.encoder.``, heads, jigsaw head, and an argparse.Namespace
    of options (a class torch.load(weights_only=True) refuses unless allowed)."""
    sd = {f"module.encoder.{k}": v for k, v in backbone(state).items()}
    sd["module.head.mlp.0.weight"], sd["module.head.mlp.2.weight"] = torch.zeros(2048, 2048), torch.zeros(128, 2048)
    sd["module.head_jig.mlp.0.weight"] = torch.zeros(2048, 2048 * 9)
    torch.save({"model": sd, "epoch": 800, "opt": argparse.Namespace(method="InfoMin", arch="resnet50")}, path)
    return path


def write_authors(state: dict, path: Path, classes: int = 14) -> Path:
    """The authors' .pth.tar: ``state_dict`` under DataParallel's ``module.``, with the pre-training task's
    classifier (14 ChestX-ray14 labels)."""
    sd = {f"module.{k}": v for k, v in backbone(state).items()}
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.zeros(classes, 2048), torch.zeros(classes)
    torch.save({"epoch": 60, "lossMIN": 0.15, "state_dict": sd}, path)
    return path


# -- BYOL: Haiku trees pickled inside the experiment state ---------------------------------------------------------

_HAIKU_TOP = "res_net50/~/"


def _haiku_module(key: str) -> tuple[str, str] | None:
    """timm/torchvision key prefix -> (Haiku module path, kind)."""
    if key.startswith("conv1."):
        return "initial_conv", "conv"
    if key.startswith("bn1."):
        return "initial_batchnorm", "bn"
    m = re.match(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.", key)
    if m:
        g, b, kind, i = int(m.group(1)) - 1, m.group(2), m.group(3), int(m.group(4)) - 1
        leaf = f"conv_{i}" if kind == "conv" else f"batchnorm_{i}"
        return f"block_group_{g}/~/block_{b}/~/{leaf}", "conv" if kind == "conv" else "bn"
    m = re.match(r"layer(\d)\.(\d+)\.downsample\.(\d)\.", key)
    if m:
        g, b = int(m.group(1)) - 1, m.group(2)
        return (f"block_group_{g}/~/block_{b}/~/shortcut_conv", "conv") if m.group(3) == "0" else \
            (f"block_group_{g}/~/block_{b}/~/shortcut_batchnorm", "bn")
    return None


def write_byol(state: dict, path: Path) -> Path:
    """A pickle like BYOL's pretrain_res50x1.pkl: {'step', 'experiment_state': _ByolExperimentState(online_params,
    target_params, online_state, target_state, opt_state)} with Haiku module paths, HWIO kernels and (1,1,1,C)
    batch-norm leaves; written with a stand-in of the byol module that the reader does not import."""
    params, st = {}, {}
    for k, v in backbone(state).items():
        mod = _haiku_module(k)
        if mod is None:
            continue
        name, kind = _HAIKU_TOP + mod[0], mod[1]
        a = v.numpy()
        if kind == "conv":
            params[name] = {"w": a.transpose(2, 3, 1, 0).copy()}
        elif k.endswith(".weight"):
            params.setdefault(name, {})["scale"] = a.reshape(1, 1, 1, -1)
        elif k.endswith(".bias"):
            params.setdefault(name, {})["offset"] = a.reshape(1, 1, 1, -1)
        elif k.endswith("running_mean"):
            st[name + "/~/mean_ema"] = {"average": a.reshape(1, 1, 1, -1), "counter": np.array(5),
                                        "hidden": a.reshape(1, 1, 1, -1)}
        elif k.endswith("running_var"):
            st[name + "/~/var_ema"] = {"average": a.reshape(1, 1, 1, -1), "counter": np.array(5),
                                       "hidden": a.reshape(1, 1, 1, -1)}
    params["projector/~/linear"] = {"w": np.zeros((2048, 4096), np.float32), "b": np.zeros(4096, np.float32)}
    params["predictor/~/linear"] = {"w": np.zeros((256, 4096), np.float32), "b": np.zeros(4096, np.float32)}
    target = {k: {kk: vv + 1 for kk, vv in v.items()} for k, v in params.items()}  # the EMA network differs

    mod = types.ModuleType("byol.byol_experiment")

    class _ByolExperimentState(NamedTuple):
        online_params: dict
        target_params: dict
        online_state: dict
        target_state: dict
        opt_state: tuple

    _ByolExperimentState.__module__ = "byol.byol_experiment"
    _ByolExperimentState.__qualname__ = "_ByolExperimentState"
    mod._ByolExperimentState = _ByolExperimentState
    pkg = types.ModuleType("byol")
    pkg.byol_experiment = mod
    sys.modules["byol"], sys.modules["byol.byol_experiment"] = pkg, mod
    try:
        obj = {"step": 1000, "experiment_state": _ByolExperimentState(params, target, st, st, ())}
        with open(path, "wb") as f:
            pickle.dump(obj, f)
    finally:
        del sys.modules["byol"], sys.modules["byol.byol_experiment"]
    return path


# -- SimCLR: TensorFlow variables (as exported to .npz) ---------------------------------------------------------------

def write_simclr_npz(state: dict, path: Path) -> Path:
    """SimCLR's TF ResNet-50 variables: base_model/conv2d[_N]/kernel (HWIO) and batch_normalization[_N]/{gamma,beta,
    moving_mean,moving_variance} numbered in creation order (a block's projection shortcut before its convs), the
    projection head and the Momentum slots a training checkpoint carries."""
    order = [("conv1", "bn1")]
    for layer, blocks in enumerate((3, 4, 6, 3), 1):
        for b in range(blocks):
            base = f"layer{layer}.{b}"
            if b == 0:
                order.append((f"{base}.downsample.0", f"{base}.downsample.1"))
            order += [(f"{base}.conv{i}", f"{base}.bn{i}") for i in (1, 2, 3)]
    out = {}
    for n, (conv, bn) in enumerate(order):
        sfx = "" if n == 0 else f"_{n}"
        out[f"base_model/conv2d{sfx}/kernel"] = state[f"{conv}.weight"].numpy().transpose(2, 3, 1, 0)
        out[f"base_model/conv2d{sfx}/kernel/Momentum"] = np.zeros(1, np.float32)
        for tf_name, pt in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                            ("moving_variance", "running_var")):
            out[f"base_model/batch_normalization{sfx}/{tf_name}"] = state[f"{bn}.{pt}"].numpy()
    out["head_contrastive/nl_0/dense/kernel"] = np.zeros((2048, 2048), np.float32)
    out["global_step"] = np.array(100)
    np.savez(path, **out)
    return path


# -- official ConvNeXt / Swin / DeiT releases ----------------------------------------------------------------------

def write_convnext_official(state: dict, path: Path) -> Path:
    """facebookresearch/ConvNeXt: downsample_layers.N, stages.N.M.{dwconv,norm,pwconv1,pwconv2,gamma}, norm, head."""
    sd = {}
    for k, v in state.items():
        k2 = k
        k2 = re.sub(r"^stem\.(\d)", r"downsample_layers.0.\1", k2)
        k2 = re.sub(r"^stages\.(\d)\.downsample\.(\d)", r"downsample_layers.\1.\2", k2)
        k2 = re.sub(r"^stages\.(\d)\.blocks\.(\d+)\.", r"stages.\1.\2.", k2)
        k2 = k2.replace("conv_dw", "dwconv").replace("mlp.fc1", "pwconv1").replace("mlp.fc2", "pwconv2")
        k2 = k2.replace("head.norm.", "norm.").replace("head.fc.", "head.")
        sd[k2] = v
    torch.save({"model": sd}, path)
    return path


def write_swin_official(state: dict, path: Path) -> Path:
    """microsoft/Swin-Transformer: a stage's patch merging at its end (timm: at the next stage's start), head,
    and the relative position index buffers."""
    sd = {}
    for k, v in state.items():
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
        if m:
            k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        k = k.replace("head.fc.", "head.")
        sd[k] = v
        if k.endswith("attn.relative_position_bias_table"):
            sd[k.replace("relative_position_bias_table", "relative_position_index")] = torch.zeros(49, 49,
                                                                                                dtype=torch.long)
    torch.save({"model": sd}, path)
    return path


def write_deit_official(state: dict, path: Path) -> Path:
    torch.save({"model": state}, path)  # DeiT was written with timm: same keys, under "model"
    return path
