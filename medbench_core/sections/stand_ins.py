"""What a section becomes where a profile runs real data and weights (``Profile.runs_on``): its generated tasks,
miniature architectures and synthetic initialisations replaced by real ones (``real_stand_ins``), or its grid
replaced by the papers' own experiments (``papers_grid``). ``Section.for_profile`` calls these."""
from __future__ import annotations

import dataclasses

from ..pretrain import get_init
from ..profiles import MEDMNIST, PAPERS
from .cells import paper_cells

# What a section's stand-ins become where a profile runs real data and weights (``Profile.runs_on``).
REAL_TASKS = {
    PAPERS: {"syn_dxc": "chexpert", "syn_txc": "shenzhen", "syn_pxs": "siim_ptx", "syn_lxs": "jsrt_clavicle",
              "syn_vxs": "drive"},
    MEDMNIST: {"syn_dxc": "chestmnist", "syn_txc": "pneumoniamnist"},  # MedMNIST+ has no segmentation sets
}
REAL_INITS = {"scratch": "scratch", "synth_imagenet": "imagenet", "synth_inat": "inat2021",
              "synth_chest": "chestxray14", "synth_imagenet_chest": "imagenet_chestxray14", "ssl_simclr": "simclr_v1",
              "ssl_moco_v2": "moco_v2", "ssl_byol": "byol", "ssl_swav": "swav", "ssl_barlow_twins": "barlow_twins"}
REAL_ARCHS = {
    PAPERS: {"test_resnet": "resnet50", "mini_convnext": "convnext_base", "mini_swin": "swin_base",
              "mini_vit": "deit_base"},
    MEDMNIST: {"test_resnet": "resnet50", "mini_convnext": "convnext_tiny", "mini_swin": "swin_tiny",
              "mini_vit": "deit_tiny"},
}


def _manual_weights(init: str, arch: str) -> bool:
    from ..zoo import get_record, list_records

    spec = get_init(init)
    if not spec.weights:
        return False
    key = f"{arch}.{spec.weights}"
    return key not in list_records() or get_record(key).source == "manual"


def real_stand_ins(section, runs_on: str, *, manual_downloads: bool = True):
    """``section`` with its stand-ins replaced by what ``runs_on`` uses (``REAL_TASKS``, ``REAL_ARCHS``,
    ``REAL_INITS``)."""
    tasks_map, archs_map = REAL_TASKS[runs_on], REAL_ARCHS[runs_on]
    roles = {g.split("/")[-1] for g in (section.baseline, section.candidate, section.rival) if g}

    def init(i: str) -> str | None:
        real = REAL_INITS.get(i)
        if real is None:
            return None
        if not manual_downloads and i not in roles and any(_manual_weights(real, archs_map[a])
                                                           for a in section.all_archs):
            return None  # an extra candidate that needs a manual download: left out
        return real

    def group(g: str) -> str:
        if g in ("", "ssl"):
            return g
        if "/" in g:
            a, i = g.split("/")
            return f"{archs_map[a]}/{init(i)}"
        return init(g) or ""

    tasks = tuple(dict.fromkeys(tasks_map[t] for t in section.tasks if tasks_map.get(t)))
    return dataclasses.replace(
        section, tasks=tasks, inits=tuple(dict.fromkeys(x for x in map(init, section.inits) if x)),
        arch=archs_map[section.arch], archs=tuple(archs_map[a] for a in section.archs), baseline=group(section.baseline),
        candidate=group(section.candidate), rival=group(section.rival),
        paper_tasks=tuple((tasks_map[t], p) for t, p in section.paper_tasks if tasks_map.get(t)))


def papers_grid(section):
    """``section`` as the papers ran it: the tasks, models, initialisations and training fractions of every cell
    they print (``cells.paper_cells``), with its roles in our names."""
    cells = paper_cells(section.key)
    mapped = real_stand_ins(dataclasses.replace(section, cells=()), PAPERS)  # the roles, in our names
    order = {i: k for k, i in enumerate(mapped.inits)}  # the section's own order of inits first
    inits = sorted(dict.fromkeys(c.init for c in cells), key=lambda i: order.get(i, len(order)))
    archs = tuple(dict.fromkeys(c.arch for c in cells))
    groups = {c.init if section.compare == "init" else f"{c.arch}/{c.init}" for c in cells}
    roles = {r: getattr(mapped, r) for r in ("baseline", "candidate", "rival")}
    if roles["baseline"] not in groups | {"ssl"} and roles["rival"] in groups:
        roles["baseline"] = roles["rival"]  # the papers compare the pair only (ConvNeXt vs Swin)
    return dataclasses.replace(
        mapped, tasks=tuple(dict.fromkeys(c.task for c in cells)), inits=tuple(inits),
        arch=archs[0], archs=archs if section.compare == "arch" else (),
        fractions=tuple(sorted({c.fraction for c in cells})), cells=tuple(c.key for c in cells), **roles,
        paper_tasks=())
