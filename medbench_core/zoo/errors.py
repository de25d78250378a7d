"""Errors of the weights zoo (a light module: no torch import)."""

from ..errors import BadFileError


class UnsafeCheckpointError(BadFileError, RuntimeError):
    """A file needs unpickling of arbitrary objects; it is refused, not executed."""


class LayoutError(BadFileError, RuntimeError):
    """A file does not have the key layout its converter expects; the message says what was found."""


class WeightsUnavailableError(FileNotFoundError):
    """The weights are not in the cache and cannot be fetched now; the message says how to get them."""


class ChecksumError(BadFileError):
    """A weight file's sha256 differs from its pin: a corrupt, tampered or different release."""
