"""The papers' experiments as grid cells, read from the reported registry (``data/reported.csv``).

On the ``paper`` profile a section's grid is exactly the experiments behind the papers' tables and figures: one cell
(task, architecture, initialisation, training fraction) for every model a printed number or mark speaks of, and for
the models it is compared with. Nothing here lists a cell a second time: the registry's rows are the list; this
module only says how the papers' names map to ours.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .. import papers
from ..models import get_arch, list_archs
from ..pretrain import get_init, list_inits

# the papers' task codes and data-size datasets -> our tasks (each task's ``analog_of`` is the code; a test checks)
PAPER_TASKS = {"DXC14": "chestxray14", "DXC5": "chexpert", "TXC": "shenzhen", "ECC": "rsna_pe", "PXS": "siim_ptx",
               "VFS": "drive", "LXS": "montgomery", "CXS": "jsrt_clavicle"}
PAPER_DATASETS = {"ChestX-ray14": "chestxray14", "CheXpert": "chexpert", "MIMIC-II": "mimic_cxr"}
# "Swin vs ConvNeXt" (MedIA 2025, by labelled images) does not print the size; the Base models are assumed
UNSIZED_ARCHS = {"Swin": "swin_base", "ConvNeXt": "convnext_base"}
# models a section's figure draws although no number or mark of theirs is printed (stated in the deviations table)
DRAWN_NOT_PRINTED = {"granularity": ("Scratch",)}


@dataclass(frozen=True)
class Cell:
    """One experiment of the papers: our task, architecture, initialisation and training fraction, and where the
    papers report it."""

    task: str
    arch: str
    init: str
    fraction: float
    source: str  # "DART 2021, Result III table"

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.task, self.arch, self.init, self.fraction)


def paper_init(label: str) -> str:
    """Our initialisation for a name the papers print (``ImageNet→CheXpert`` -> ``imagenet_chexpert``): the real
    (released-weights or scratch) init whose ``paper_analog`` is that name."""
    found = [i for i in list_inits() if get_init(i).paper_analog == label and (get_init(i).weights or i == "scratch")]
    if len(found) != 1:
        raise KeyError(f"the papers' initialisation {label!r} matches {found or 'no init'} in the init registry")
    return found[0]


def paper_archs(label: str) -> tuple[str, ...]:
    """Our architectures for what the papers print in the arch column: a registry name (``resnet50``), a label
    (``ConvNeXt-T``), a pair (``ConvNeXt-T vs Swin-T``) or an unsized pair (``Swin vs ConvNeXt``)."""
    out = []
    for part in label.split(" vs "):
        part = part.strip()
        by_label = [a for a in list_archs() if get_arch(a).label == part]
        name = part if part in list_archs() else by_label[0] if by_label else UNSIZED_ARCHS.get(part)
        if name is None:
            raise KeyError(f"the papers' architecture {part!r} is neither a registry name nor a label")
        out.append(name)
    return tuple(out)


def _task_and_fraction(row) -> tuple[str, float]:
    if row["dataset"]:
        m = re.fullmatch(r"(.+?)(?: \((\d+)%\))?", row["dataset"])
        return PAPER_DATASETS[m.group(1)], (int(m.group(2)) / 100 if m.group(2) else 1.0)
    return PAPER_TASKS[row["task"]], 1.0


def _compared_inits(comparison: str) -> list[str]:
    """Initialisations a row's comparison names besides its own (``ImageNet vs iNat2021``, ``vs supervised
    ImageNet``); architecture comparisons (``ConvNeXt-T minus Swin-T``) name none."""
    if not re.search(r"\bvs\b", comparison):
        return []
    names = []
    for part in re.split(r"\bvs\b", comparison):
        part = part.strip().removeprefix("supervised ")
        if part:
            try:
                names.append(paper_init(part))
            except KeyError:
                pass
    return names


@lru_cache(maxsize=None)
def paper_cells(section: str) -> tuple[Cell, ...]:
    """Every cell of ``section`` the papers report, in the registry's order (rows marked ``n/a`` have none)."""
    rows = papers.load_reported(section)
    extra = [paper_init(x) for x in DRAWN_NOT_PRINTED.get(section, ())]
    cells: dict[tuple, Cell] = {}
    for _, r in rows.iterrows():
        if r["mark"] == "n/a":
            continue
        task, fraction = _task_and_fraction(r)
        inits = [*extra, *_compared_inits(r["comparison"]), paper_init(r["init"])]
        for arch in paper_archs(r["arch"]):
            for init in inits:
                c = Cell(task, arch, init, fraction, f"{r['paper']}, {r['source']}")
                cells.setdefault(c.key, c)
    return tuple(cells.values())


def compared_init(row) -> str | None:
    """The init a row's mark or p-value compares its model with (``vs supervised ImageNet`` -> ``imagenet``), or
    None (a pair of architectures, or the comparison model's own row)."""
    own = paper_init(row["init"])
    return next((i for i in _compared_inits(row["comparison"]) if i != own), None)


def cells_of_row(row) -> list[tuple[str, str, str, float]]:
    """The cell keys one reported row speaks of (its own model, or both models of a pair)."""
    task, fraction = _task_and_fraction(row)
    return [(task, a, paper_init(row["init"]), fraction) for a in paper_archs(row["arch"])]
