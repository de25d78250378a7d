"""medbench: the executable companion to the transfer-learning benchmark papers for medical image analysis.

The public names below are imported on first use (PEP 562), so that light commands (``medbench weights``,
``medbench data check``) start without loading torch and timm.
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
