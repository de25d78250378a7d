"""The registry of the paper's sections, one plug-in module each, in the paper's order."""
from __future__ import annotations

from .._registry import Registry
from . import architectures, data_size, domain_adaptation, granularity, self_supervised
from .base import Section

_SECTIONS: Registry[Section] = Registry("section")
for _m in (granularity, self_supervised, domain_adaptation, architectures, data_size):
    _SECTIONS.register(_m.SECTION.key, _m.SECTION)


def list_sections() -> list[str]:
    """Names of the paper sections in the paper's order, e.g. ``['granularity', 'self-supervised', ...]``."""
    return sorted(_SECTIONS.names(), key=lambda k: _SECTIONS.get(k).number)


def get_section(name: str) -> Section:
    """The Section called ``name``; an unknown name raises and lists the valid ones."""
    return _SECTIONS.get(name)
