"""The paper's sections as plug-ins: one module each (granularity, self_supervised, domain_adaptation,
architectures, data_size) holding everything particular to its section; ``grid`` builds and validates a section's
runs; ``page`` is what a section notebook calls; ``summary`` reads every section's status for the overview page."""
from .base import Results, Section
from .grid import Grid, group_key, load_grid_results, validate_section_params
from .page import PaperPage, SectionPage, section_page
from .registry import get_section, list_sections


def known_names() -> dict[str, list[str]]:
    """The valid names per results column (for importing and checking results files)."""
    from ..models import list_archs
    from ..pretrain import list_inits
    from ..profiles import list_profiles
    from ..tasks import list_tasks

    return {"section": list_sections(), "task": list_tasks(), "init": list_inits(), "arch": list_archs(),
            "profile": list_profiles()}


__all__ = ["Grid", "PaperPage", "Results", "Section", "SectionPage", "get_section", "group_key", "known_names",
           "list_sections", "load_grid_results", "section_page", "validate_section_params"]
