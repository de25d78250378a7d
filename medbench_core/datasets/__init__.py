"""The papers' real datasets: loaders for their on-disk layouts, frozen split manifests, a preprocessing cache and
a dataset doctor. See ``catalog`` (what and where), ``splits`` (manifests), ``prepare`` (cache and check)."""
from .catalog import Dataset, MissingDataError, apply_uncertainty, get_dataset, list_datasets
from .formats import CorruptFileError
from .prepare import check, load_prepared, prepare, prepared_dir

__all__ = ["Dataset", "MissingDataError", "CorruptFileError", "apply_uncertainty", "get_dataset", "list_datasets",
           "check", "prepare", "prepared_dir", "load_prepared"]
