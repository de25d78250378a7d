"""The papers' pre-trained initialisations: a registry of records (``records``), converters from each release's key
layout to timm's (``convert``), and fetching, verification and audited import into the cache (``fetch``)."""
from .errors import ChecksumError, LayoutError, UnsafeCheckpointError, WeightsUnavailableError
from .fetch import converted_path, fetch, forget, import_file, recorded_pins
from .records import WeightRecord, get_record, list_records, records_for_tag

__all__ = ["LayoutError", "UnsafeCheckpointError", "ChecksumError", "WeightsUnavailableError", "converted_path",
           "fetch", "forget", "import_file", "recorded_pins", "WeightRecord", "get_record", "list_records",
           "records_for_tag"]
