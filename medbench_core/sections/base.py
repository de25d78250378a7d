"""What every section plug-in shares: the ``Section`` record (its question, claim and default grid, and what it
becomes on the profiles that run the papers' own data, models and weights) and its default table, figure and
headlines; the ``Results`` view a plug-in reads is in ``view``. A plug-in module subclasses ``Section`` with what is particular to its
section: its verdict rule, its comparisons, its headline numbers and the papers' side of its question.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from .. import papers
from ..figures import plot_scores
from ..pretrain import get_init
from ..profiles import MEDMNIST, PAPERS, get_profile
from ..run_tables import scores_table
from ..tables import Table, frame_table
from ..tasks import CLASSIFICATION, PAPER_SEG_V2, get_task_spec
from ..verdicts import Verdict

if TYPE_CHECKING:
    from .view import Results

KIND_WORDS = {CLASSIFICATION: "classification", "binary_segmentation": "segmentation"}


@dataclass(frozen=True)
class Section:
    """A section of the paper as a notebook with a default grid: tasks x archs x inits x fractions x seeds.

    ``compare`` says what the rows of its table are: ``init`` (one architecture, initialisations compared) or
    ``arch`` (architecture x initialisation, rows keyed ``"arch/init"``). ``baseline`` and ``candidate`` are row
    keys (``candidate`` may be ``"ssl"``: every self-supervised init); the significance marks compare every row with
    ``baseline``; the claim is about ``candidate`` (and ``rival``, the row it is compared with pairwise).
    ``claim_kinds`` are the kinds of task the claim speaks of: a verdict from a grid without some of them says so.
    """

    key: str
    number: int
    notebook: str  # file name in notebooks/
    title: str
    question: str
    claim: str
    tasks: tuple[str, ...]
    inits: tuple[str, ...]
    baseline: str
    candidate: str
    prefix: str  # of the headline names its notebook glues (``gr_verdict``)
    rival: str = ""
    arch: str = "test_resnet"
    archs: tuple[str, ...] = ()  # several architectures (compare="arch"); empty: just ``arch``
    fractions: tuple[float, ...] = (1.0,)  # shares of the training split
    compare: str = "init"  # init | arch
    paper_tasks: tuple[tuple[str, str], ...] = ()  # (our task, the paper's task) where not the task's analog_of
    claim_kinds: tuple[str, ...] = (CLASSIFICATION, "binary_segmentation")
    row_title: str = "Initialisation"
    # (task, arch, init, fraction) of every run the grid holds when it is not the full product of the lists above:
    # on ``paper``, the papers' own experiments (``cells.paper_cells``); empty: the product
    cells: tuple[tuple[str, str, str, float], ...] = ()
    paper: str = "DART 2021"  # whose protocol the section's runs follow on ``paper``
    # the kind of ``Results`` its runs are read as (a plug-in's subclass holds what it computes once per grid)
    results_type: ClassVar[type | None] = None

    @property
    def all_archs(self) -> tuple[str, ...]:
        return self.archs or (self.arch,)

    def for_profile(self, profile: str) -> "Section":
        """The section as it runs on ``profile``, by what the profile runs on (``Profile.runs_on``). On the papers'
        experiments the grid is the papers' own, read from the reported registry (``cells.paper_cells``): every
        task, model and training fraction a printed number or mark speaks of, and nothing else. On MedMNIST+ each
        generated task, miniature architecture and synthetic initialisation is replaced by a real one (MedMNIST+,
        classification only; the tiny variants; released weights). A profile without manual downloads
        (``Profile.manual_downloads``) leaves out extra candidates whose weights need one (never the baseline or the
        compared models). On generated data the section is as it is.
        """
        prof = get_profile(profile)
        if prof.runs_on == PAPERS:
            return self._paper()
        if prof.runs_on not in REAL_TASKS:
            return self
        return self._mapped(prof.runs_on, manual_downloads=prof.manual_downloads)

    def _mapped(self, runs_on: str, *, manual_downloads: bool = True) -> "Section":
        """The section with its stand-ins replaced by what ``runs_on`` uses (``REAL_TASKS``, ``REAL_ARCHS``,
        ``REAL_INITS``)."""
        tasks_map, archs_map = REAL_TASKS[runs_on], REAL_ARCHS[runs_on]
        roles = {g.split("/")[-1] for g in (self.baseline, self.candidate, self.rival) if g}

        def init(i: str) -> str | None:
            real = REAL_INITS.get(i)
            if real is None:
                return None
            if not manual_downloads and i not in roles and any(_manual_weights(real, archs_map[a])
                                                               for a in self.all_archs):
                return None  # an extra candidate that needs a manual download: left out
            return real

        def group(g: str) -> str:
            if g in ("", "ssl"):
                return g
            if "/" in g:
                a, i = g.split("/")
                return f"{archs_map[a]}/{init(i)}"
            return init(g) or ""

        tasks = tuple(dict.fromkeys(tasks_map[t] for t in self.tasks if tasks_map.get(t)))
        return dataclasses.replace(
            self, tasks=tasks, inits=tuple(dict.fromkeys(x for x in map(init, self.inits) if x)),
            arch=archs_map[self.arch], archs=tuple(archs_map[a] for a in self.archs), baseline=group(self.baseline),
            candidate=group(self.candidate), rival=group(self.rival),
            paper_tasks=tuple((tasks_map[t], p) for t, p in self.paper_tasks if tasks_map.get(t)))

    def _paper(self) -> "Section":
        from .cells import paper_cells

        cells = paper_cells(self.key)
        mapped = dataclasses.replace(self, cells=())._mapped(PAPERS)  # the roles, in our names
        order = {i: k for k, i in enumerate(mapped.inits)}  # the section's own order of inits first
        inits = sorted(dict.fromkeys(c.init for c in cells), key=lambda i: order.get(i, len(order)))
        archs = tuple(dict.fromkeys(c.arch for c in cells))
        groups = {c.init if self.compare == "init" else f"{c.arch}/{c.init}" for c in cells}
        roles = {r: getattr(mapped, r) for r in ("baseline", "candidate", "rival")}
        if roles["baseline"] not in groups | {"ssl"} and roles["rival"] in groups:
            roles["baseline"] = roles["rival"]  # the papers compare the pair only (ConvNeXt vs Swin)
        return dataclasses.replace(
            mapped, tasks=tuple(dict.fromkeys(c.task for c in cells)), inits=tuple(inits),
            arch=archs[0], archs=archs if self.compare == "arch" else (),
            fractions=tuple(sorted({c.fraction for c in cells})), cells=tuple(c.key for c in cells), **roles,
            paper_tasks=())

    def protocol_for(self, task: str, profile: str) -> dict:
        """Protocol fields this section sets for ``task`` on ``profile``: where the profile follows the original
        code (``Profile.light`` false), the MedIA 2025 sections segment with that paper's protocol (Version 2: AdamW,
        warm-up then cosine, 500 epochs, patience 50)."""
        if (not get_profile(profile).light and self.paper == "MedIA 2025"
                and get_task_spec(task).kind != CLASSIFICATION):
            return dict(PAPER_SEG_V2)
        return {}

    # -- our runs: a plug-in overrides what its section does differently ---------------------------------------

    def table(self, res: "Results") -> Table:
        """Our results in the papers' layout."""
        return scores_table(res.summary, res.grid.groups, res.grid.tasks, baseline=self.baseline,
                            caption=res.caption(), row_title=self.row_title)

    def details(self, res: "Results") -> list:
        """Further tables and figures the section's question needs (a list of displayable objects)."""
        return []

    def figure(self, res: "Results"):
        """The figure the section page and the summary show for the claim."""
        return plot_scores(res.df, res.grid.groups, res.grid.tasks, title=self.title, synthetic=res.synthetic)

    def verdict(self, res: "Results") -> Verdict:
        """The verdict rule of the section, on its runs."""
        raise NotImplementedError

    def judge(self, res: "Results") -> Verdict:
        """``verdict``, with its scope stated when the grid holds only some of the kinds of task the claim is
        about (e.g. ``colab`` runs classification only)."""
        v = self.verdict(res)
        kinds = {get_task_spec(t).kind for t in res.grid.tasks}
        missing = [k for k in self.claim_kinds if k not in kinds]
        if missing:
            have = ", ".join(KIND_WORDS.get(k, k) for k in self.claim_kinds if k in kinds) or "no"
            lack = ", ".join(KIND_WORDS.get(k, k) for k in missing)
            v.scope = (f"Drawn from the {have} tasks only: the claim is also about {lack}, which this grid (profile "
                       f"{res.grid.profile}) does not run; that part of the claim is untested here.")
        return v

    def reproduced(self, res: "Results") -> Table:
        """Our effects next to the papers' numbers, for every reported cell our grid has a counterpart of."""
        raise NotImplementedError

    def reproduction(self, res: "Results") -> Table:
        """Every cell the papers print next to ours, with whether ours is consistent (``reproduction``)."""
        from .reproduction import reproduction_table

        return reproduction_table(self.key, res.df, res.grid.profile)

    def reproduced_counts(self, res: "Results") -> dict | None:
        """How many printed cells our runs are consistent with, of those tested (``reproduction.counts``), on a grid
        of the papers' cells; None elsewhere."""
        if not self.cells:
            return None
        from .reproduction import counts, reproduction

        return counts(reproduction(self.key, res.df))

    def headlines(self, res: "Results") -> dict:
        """The numbers the page's prose reads (myst-nb glue), named ``<prefix>_<name>``."""
        v = res.verdict
        common = {"verdict": v.outcome, "stability": v.stability.short() if v.stability else "not measured",
                  "profile": res.grid.profile, "runs": len(res.grid.configs),
                  "seeds": len(res.grid.seeds), "scope": v.scope or "all the kinds of task the claim is about",
                  "reproduced": reproduced_words(self.reproduced_counts(res))}
        return {f"{self.prefix}_{k}": val for k, val in (common | self.section_headlines(res)).items()}

    def section_headlines(self, res: "Results") -> dict:
        return {}

    # -- the papers' side, from the reported registry ----------------------------------------------------------

    def reported(self) -> pd.DataFrame:
        return papers.load_reported(self.key)

    def paper_table(self) -> Table:
        raise NotImplementedError

    def paper_plot(self):
        raise NotImplementedError

    def paper_claims(self) -> list[dict]:
        """The papers' claims of this section, each flagged by the papers' own numbers (``papers.FLAGS``)."""
        raise NotImplementedError

    def paper_details(self) -> list:
        """Further views of the papers' numbers (e.g. re-derived tests); none by default."""
        return []

    def paper_claims_table(self) -> Table:
        return papers.claims_table(self.paper_claims())


def directions_table(rows: list[dict], *, synthetic: bool, what: str = "The effects the claim is about") -> Table:
    """Rows comparing our effects with the paper's (a column starting ``same direction`` or ``both``), with a
    caption that counts the agreements among the rows the paper reports."""
    text = pd.DataFrame(rows)
    key = [c for c in text.columns if c.startswith("same direction") or c.startswith("both")]
    known = text[text[key[0]] != "–"] if key and len(text) else text
    agree = int((known[key[0]] == "yes").sum()) if key and len(text) else 0
    cap = (f"{what}, ours (synthetic data; marks from our t-tests) and the paper's. {agree} of {len(known)} agree. "
           "Sizes are not comparable on synthetic data; directions are." if synthetic else
           f"{what}, ours and the paper's; {agree} of {len(known)} agree.")
    return frame_table(text, cap)


def reproduced_words(n: dict | None) -> str:
    """"N of M" printed cells reproduced, from ``reproduction.counts`` (None: not a grid of the papers' cells)."""
    return f"{n['consistent']} of {n['tested']}" if n else "– (the papers' cells run on the paper profile)"


def same_sign(a: float, b: float) -> str:
    return "yes" if np.sign(a) == np.sign(b) else "no"


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
