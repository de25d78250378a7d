"""The registries as tables, built once: `medbench list` prints them and the book's generated pages write them
(``code=True`` sets names as code for Markdown). Each builder reads only its registry."""
from __future__ import annotations

import pandas as pd


def _name(name: str, code: bool) -> str:
    return f"`{name}`" if code else name


def archs_table(*, code: bool = False) -> pd.DataFrame:
    from .models import get_arch, list_archs

    return pd.DataFrame([{"arch": _name(a, code), "family": get_arch(a).family,
                          "segmentation": "yes" if get_arch(a).segmentation else "no",
                          "description": get_arch(a).description} for a in list_archs()])


def profiles_table(*, code: bool = False) -> pd.DataFrame:
    from .profiles import get_profile, list_profiles

    rows = []
    for n in list_profiles():
        p = get_profile(n)
        rows.append({"profile": _name(n, code), "description": p.description, "image size": p.image_size or "task's own", "max epochs": p.max_epochs or "task's own",
                     "runs": p.num_runs or "task's own"})
    return pd.DataFrame(rows)


def sections_table(profile: str, *, code: bool = False) -> pd.DataFrame:
    """Each section's default grid, and its number of runs on ``profile``."""
    from .sections import get_section, list_sections, validate_section_params

    return pd.DataFrame([{"section": _name(s, code), "title": get_section(s).title, "tasks": ", ".join(get_section(s).tasks), "inits": ", ".join(get_section(s).inits),
                          "archs": ", ".join(get_section(s).all_archs),
                          "fractions": ", ".join(f"{f:.0%}" for f in get_section(s).fractions),
                          "baseline": get_section(s).baseline,
                          "runs": len(validate_section_params(s, profile=profile).configs)}
                         for s in list_sections()])


def weights_table(*, code: bool = False, cached: bool = False) -> pd.DataFrame:
    """Every registered release of pre-trained weights; ``cached`` adds whether this machine holds it converted
    (the command line's view; a page shows no machine)."""
    from .zoo import converted_path, get_record, list_records, recorded_pins

    pins = recorded_pins() if cached else {}
    rows = []
    for k in list_records():
        r = get_record(k)
        host = ("manual: " + r.page if r.source == "manual" else r.source.split("://")[-1].split("/")[0]
                if "://" in r.source else r.source)
        row = {"key": _name(k, code), "weights": r.label, "stands for": r.paper_analog, "family": r.family,
               "source": host, "converter": r.converter,
               "check": r.pin if (r.sha256 or k not in pins) else "recorded locally",
               "layout": "verified" if r.layout_verified else "from the release's description"}
        if cached:
            row["cached"] = "yes" if converted_path(k).is_file() else "no"
        rows.append(row | {"licence": r.licence, "citation": r.citation})
    return pd.DataFrame(rows)
