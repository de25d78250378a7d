"""The kinds of mistake a user can make, each with its own exit code in the ``medbench`` command line.

Code that finds bad input raises one of these (or a subclass) with a message that names the thing at fault and
says what to do; ``medbench_core.cli`` prints that message as one line and exits with the kind's code. Anything
else that escapes is a bug in medbench: the command line shows its traceback and asks for a report.

    code  kind
    1     a check or a notebook failed (not an exception: the command's own result)
    2     a bad value or name on the command line or in a notebook's parameters
    3     a path that is missing, of the wrong kind (file vs folder) or not readable / writable
    4     a file whose content is wrong (a results table, a weights file, a dataset's list)
    5     a device that is not there
    70    an internal error (a bug: please report it)
    130   interrupted
"""
from __future__ import annotations


class MedbenchError(Exception):
    """Base of the errors a user can cause; ``exit_code`` is what the command line returns."""

    exit_code = 2


class BadValueError(MedbenchError, ValueError):
    """A value or name that is not allowed (an option, a notebook parameter, a setting)."""

    exit_code = 2


class BadPathError(MedbenchError, OSError):
    """A path that is missing, is a file where a folder is needed (or the other way round), or cannot be used."""

    exit_code = 3


class BadFileError(MedbenchError, ValueError):
    """A file whose content cannot be used: the message names the file and, where it can, the line."""

    exit_code = 4


class DivergedError(MedbenchError, ArithmeticError):
    """A run whose loss stopped being a number (or that never had a finite validation loss): a failed run, said in
    one line with its learning rate, never a crash further on."""

    exit_code = 6


class ClaimLostError(MedbenchError):
    """This process lost its claim on a run (broken while it was paused); it stored nothing."""

    exit_code = 7


class DeviceError(MedbenchError, ValueError):
    """A device (``--device cuda``, ``tpu``) that this machine does not have."""

    exit_code = 5


EXIT_CHECK_FAILED = 1
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
