"""medbench: the executable companion to the transfer-learning benchmark papers for medical image analysis.

The public names below are imported on first use (PEP 562), so that light commands (``medbench weights``,
``medbench data check``) start without loading torch and timm.

Words, one per idea (the code is named after them; the book's glossary explains the science):

profile
    A record of facts (``profiles.Profile``) that scales the papers' protocol to a machine and says what the
    sections run on (``runs_on``): generated stand-ins, MedMNIST+, or the papers' own experiments.
request
    What a user asks of one section's grid (``request.GridRequest``), before any check.
grid
    A validated request (``sections.Grid``): every run's configuration, nothing run yet.
run
    One fine-tuning of one configuration (``experiments.RunConfig``), stored by its hash; never trained twice.
claim
    A sentence of a paper (e.g. "fine-grained pre-training beats coarse-grained on segmentation").
rule
    A section's way of answering its claim from its runs (``Section.rule``), with Holm's correction where it scans
    several comparisons.
verdict
    The answer our runs give to a claim (``verdicts.Verdict``: agrees / does not agree / inconclusive, with
    reasons), after its stability over other draws of seeds (``Results.verdict``). Nothing else is a verdict.
flag (of the papers)
    How a claim fares on the papers' own printed numbers (``papers.FLAGS``).
mark
    A per-comparison significance mark in a table (*, **, ***), as the papers print them; no correction.
flagged run
    A run that went wrong (``flags``: a constant prediction or a score far from its group).
directions
    On a grid of stand-ins: the direction of each effect the claim is about, ours next to the papers'
    (``Section.directions``). Sizes are not comparable there.
reproduction
    On a grid of the papers' own cells: every printed cell next to ours with a consistency test
    (``sections.reproduction``); "N of M reproduced" counts the consistent ones.
deviation
    A listed difference between our protocol and the original code's (``protocols.DEVIATIONS``), checked fact by
    fact against the original code (``original``).
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("medbench")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

_EXPORTS = {
    "experiments": ("make_run_config", "run_grid", "run_one"),
    "sections": ("get_section", "list_sections", "load_grid_results", "section_page", "validate_section_params"),
    "data": ("fraction_manifest", "write_fraction_manifest"),
    "models": ("CheckpointAuditError", "create_model", "get_arch", "list_archs", "load_backbone"),
    "pretrain": ("get_init", "get_init_checkpoint", "list_inits"),
    "profiles": ("get_profile", "list_profiles"),
    "results": ("ResultsStore",),
    "ssl": ("list_ssl_methods",),
    "tasks": ("create_task", "list_tasks"),
    "_registry": ("UnknownNameError",),
    "runtime": ("runtime",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    try:
        return import_module(f".{name}", __name__)  # submodules: mb.verdicts, mb.datasets, ...
    except ModuleNotFoundError:
        raise AttributeError(f"module 'medbench_core' has no attribute {name!r}") from None


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
