"""medbench: the executable companion to the transfer-learning benchmark papers for medical image analysis."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("medbench")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

from .experiments import (  # noqa: E402
    get_section, list_sections, load_grid_results, make_run_config, run_grid, run_one, validate_section_params,
)
from .data import fraction_manifest, write_fraction_manifest  # noqa: E402
from .models import CheckpointAuditError, create_model, get_arch, list_archs, load_backbone  # noqa: E402
from .pretrain import get_init, get_init_checkpoint, list_inits  # noqa: E402
from .profiles import get_profile, list_profiles  # noqa: E402
from .results import ResultsStore  # noqa: E402
from .ssl import list_ssl_methods  # noqa: E402
from .tasks import create_task, list_tasks  # noqa: E402
from ._registry import UnknownNameError  # noqa: E402

__all__ = [
    "__version__", "create_task", "list_tasks", "create_model", "list_archs", "load_backbone",
    "CheckpointAuditError", "get_init", "list_inits", "get_init_checkpoint", "get_profile", "list_profiles",
    "ResultsStore", "get_section", "list_sections", "validate_section_params", "run_grid", "run_one",
    "load_grid_results", "make_run_config", "UnknownNameError", "get_arch", "list_ssl_methods",
    "fraction_manifest", "write_fraction_manifest",
]
