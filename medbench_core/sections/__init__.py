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


def import_knowledge() -> dict:
    """``known_names`` and what checks that a run is what its hash says (``results_checks.check_identity``): how to hash
    a configuration (``rehash``), and the settings of every run of every section's grid on every profile
    (``runs``: hash -> task, init, arch, seed, fraction, profile)."""
    import dataclasses

    from ..experiments import RunConfig
    from ..profiles import list_profiles

    names = {f.name for f in dataclasses.fields(RunConfig)}

    def rehash(config: dict) -> str:
        # a stored configuration records the split sizes the run saw (a fraction's, a prepared copy's); its hash
        # was made with the task's registered sizes, as make_run_config sets them
        from ..tasks import create_task

        sizes = dict(zip(("n_train", "n_val", "n_test"), create_task(config["task"], config["profile"]).sizes))
        return RunConfig(**{k: v for k, v in config.items() if k in names} | sizes).config_hash()

    runs = {}
    for profile in list_profiles():
        for s in list_sections():
            try:
                grid = validate_section_params(s, profile=profile)
            except Exception:  # noqa: BLE001 - a profile without this section's tasks: nothing to know
                continue
            for c in grid.configs:
                runs[c.config_hash()] = {k: getattr(c, k) for k in ("task", "init", "arch", "seed", "fraction",
                                                                   "profile")}
    from ..pretrain import init_fingerprint

    return {**known_names(), "rehash": rehash, "runs": runs, "fingerprint": init_fingerprint}


__all__ = ["Grid", "PaperPage", "Results", "Section", "SectionPage", "get_section", "group_key", "import_knowledge", "known_names",
           "list_sections", "load_grid_results", "section_page", "validate_section_params"]
