"""Each self-supervised method (built from lightly) trains a backbone whose weights then load, audited, into a
fine-tuning model."""
import numpy as np
import pytest
import torch

from medbench_core import create_task
from medbench_core.models import build_classifier, create_model
from medbench_core.pretrain import checkpoint_meta, get_init, get_init_checkpoint, list_inits, stage_configs
from medbench_core.ssl import list_ssl_methods, pretrain_ssl
from medbench_core.synthetic import natural_images


def test_six_methods_span_the_papers_families():
    from medbench_core.ssl import get_ssl_method

    methods = list_ssl_methods()
    assert len(methods) >= 6
    families = {get_ssl_method(m).family for m in methods}
    assert {"instance discrimination", "clustering", "redundancy reduction"} <= families and len(families) >= 4
    assert {f"ssl_{m}" for m in methods} <= set(list_inits())


@pytest.mark.parametrize("method", list_ssl_methods())
def test_method_trains_the_backbone(method):
    torch.manual_seed(0)
    images = natural_images(64, 32, seed=1)["images"]
    backbone = build_classifier("test_resnet", 0, 32)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    history = pretrain_ssl(method, backbone, images, image_size=32, epochs=2, lr=1e-3, batch_size=32, seed=0,
                           device="cpu")
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    changed = [k for k, v in backbone.state_dict().items() if v.dtype.is_floating_point
               and not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2  # the backbone itself learned, not only the heads
    # only backbone tensors are kept: the same keys as a classifier without its head
    assert set(backbone.state_dict()) == set(build_classifier("test_resnet", 0, 32).state_dict())


def test_ssl_init_is_cached_and_loads_into_classifier_and_unet(smoke_cache):
    path = get_init_checkpoint("ssl_simclr", "test_resnet", "smoke", cache_dir=smoke_cache, progress=False)
    meta = checkpoint_meta(path)
    assert meta["source"] == "ssl:simclr" and 0 <= meta["val_knn_accuracy"] <= 1
    assert get_init_checkpoint("ssl_simclr", "test_resnet", "smoke", cache_dir=smoke_cache) == path  # cached
    cls = create_model("test_resnet", create_task("syn_txc", "smoke"), checkpoint=path)
    seg = create_model("test_resnet", create_task("syn_pxs", "smoke"), checkpoint=path)
    assert cls.load_report.loaded == seg.load_report.loaded > 50
    assert cls.load_report.new_head == ["fc.weight", "fc.bias"]


def test_supervised_and_ssl_stages_see_the_same_images():
    """Granularity and self-supervision are compared on the same pre-training images; only labels differ."""
    coarse, fine = stage_configs("synth_imagenet", "test_resnet", "demo")[0], \
        stage_configs("synth_inat", "test_resnet", "demo")[0]
    ssl = stage_configs("ssl_byol", "test_resnet", "demo")[0]
    assert (coarse.n_images, coarse.seed, coarse.epochs) == (fine.n_images, fine.seed, fine.epochs)
    assert (ssl.n_images, ssl.seed) == (coarse.n_images, coarse.seed)
    assert coarse.config_hash() != fine.config_hash() != ssl.config_hash()
    assert get_init("synth_inat").granularity == "fine" and get_init("synth_imagenet").granularity == "coarse"
