"""What an executed notebook recorded: the values it glued for myst-nb (shared by the notebook and rehearsal tests)."""


def glued(nb) -> dict:
    """The values a notebook recorded with myst-nb glue."""
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = o["data"]
                text = data.get("text/plain", data.get("application/papermill.record/text/plain"))
                out[name] = text.strip("'\"")
    return out
