import pytest
import torch

import medbench_core as mb
from medbench_core.tasks import CLASSIFICATION


def test_registries_list_their_names():
    assert {"syn_dxc", "syn_txc", "syn_pxs", "syn_lxs"} <= set(mb.list_tasks())
    assert mb.list_inits()[:5] == ["scratch", "synth_imagenet", "synth_inat", "synth_chest", "synth_imagenet_chest"]
    assert [i for i in mb.list_inits() if i.startswith("ssl_")] == [f"ssl_{m}" for m in mb.list_ssl_methods()]
    assert mb.list_profiles() == ["smoke", "demo", "colab", "paper"]
    assert "domain-adaptation" in mb.list_sections()


@pytest.mark.parametrize("call,name", [(mb.create_task, "dxc99"), (mb.get_init, "imagenet21k"),
                                       (mb.get_section, "domain_adaption"), (mb.get_profile, "laptop")])
def test_unknown_name_lists_the_valid_ones(call, name):
    with pytest.raises(mb.UnknownNameError) as e:
        call(name)
    msg = str(e.value)
    assert repr(name) in msg and "valid" in msg
    valid = {mb.create_task: mb.list_tasks, mb.get_init: mb.list_inits, mb.get_section: mb.list_sections,
             mb.get_profile: mb.list_profiles}[call]()
    assert all(v in msg for v in valid)


def test_profile_scales_protocol_and_sizes():
    demo, smoke = mb.create_task("syn_dxc", "demo"), mb.create_task("syn_dxc", "smoke")
    assert demo.protocol.image_size == 48 and smoke.protocol.image_size == 32
    assert smoke.protocol.max_epochs == 2 and demo.protocol.max_epochs == 20
    assert demo.protocol.num_runs == 6  # two disjoint halves of three seeds: each verdict checked on both
    assert all(s < d for s, d in zip(smoke.sizes, demo.sizes))
    paper = mb.create_task("syn_dxc", "paper")
    assert paper.protocol == mb.tasks.get_task_spec("syn_dxc").protocol  # the paper profile changes nothing


@pytest.mark.parametrize("task", mb.list_tasks())
def test_every_task_builds_a_model_with_the_right_output(task):
    spec = mb.create_task(task, "smoke")
    model = mb.create_model("test_resnet", spec).eval()
    s = spec.protocol.image_size
    with torch.no_grad():
        out = model(torch.zeros(2, 3, s, s))
    expected = (2, len(spec.classes)) if spec.kind == CLASSIFICATION else (2, 1, s, s)
    assert tuple(out.shape) == expected


def test_validate_section_params_rejects_before_any_work():
    with pytest.raises(mb.UnknownNameError, match="valid tasks"):
        mb.validate_section_params("domain-adaptation", profile="smoke", tasks=["syn_dxc", "pxs_typo"])
    with pytest.raises(mb.UnknownNameError, match="valid inits"):
        mb.validate_section_params("domain-adaptation", profile="smoke", inits=["scratch", "imagenett"])
    with pytest.raises(ValueError, match="baseline"):
        mb.validate_section_params("domain-adaptation", profile="smoke", inits=["scratch", "synth_imagenet_chest"])
    with pytest.raises(ValueError, match="whole number from 2"):
        mb.validate_section_params("domain-adaptation", profile="smoke", num_seeds=1)
    grid = mb.validate_section_params("domain-adaptation", profile="smoke")
    assert len(grid.configs) == 3 * 4 * 2 and len(set(grid.hashes)) == len(grid.configs)
