"""What a user asks of a section's grid (``GridRequest``) and the command-line options that ask it, declared once:
`medbench run` and `sweep` take those of one section, `book` those that apply to every section, `sweep` alone the
speed options; ``request_from_args`` builds the request from what a command was given. No heavy import: the
command line builds its parsers from here.

Adding a grid option is a field of ``GridRequest`` and one ``Option`` below (and a line in the notebooks'
parameters cell when a notebook takes it: ``tests/sections/test_request.py`` checks that they agree).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

from .errors import BadValueError
from .profiles import DEFAULT

# the command-line option of each speed field (``medbench sweep``)
SPEED_OPTIONS = {"amp": "--amp MODE", "channels_last": "--channels-last on|off", "compile": "--compile",
                 "workers": "--loader-workers N"}


@dataclass(frozen=True)
class GridRequest:
    """What a user asks of one section's grid, before any check: ``None`` leaves a list to the section and the
    seeds to the profile. The command line builds it from its options (``OPTIONS``, declared once), a notebook from
    its parameters cell (``section_page``), the book from its section parameters (``from_params``);
    ``sections.Grid.of`` validates it, once, into the ``Grid`` every later layer receives.

    Example:
        >>> GridRequest("data-size", profile="smoke", fractions=(0.5, 1.0)).given()
        {'profile': 'smoke', 'fractions': (0.5, 1.0)}
    """

    section: str
    profile: str = DEFAULT
    tasks: tuple[str, ...] | None = None
    inits: tuple[str, ...] | None = None
    arch: str | None = None  # one architecture (sections comparing initialisations)
    archs: tuple[str, ...] | None = None  # several (sections comparing architectures)
    fractions: tuple[float, ...] | None = None
    num_seeds: int | None = None
    device: str = "auto"
    protocol: dict | None = None  # protocol fields of every run (``--set``); part of each run's hash
    speed: dict | None = None  # SPEED_FIELDS (``medbench sweep``); never part of a hash

    @classmethod
    def from_params(cls, section: str, params: dict) -> "GridRequest":
        """The request a notebook's parameters (or any dict) make: its fields, the other keys ignored."""
        return cls(section, **{k: v for k, v in params.items() if k in REQUEST_FIELDS and v is not None})

    def given(self) -> dict:
        """What was asked for (the profile always; the rest where not left to the section, the profile or
        ``auto``), as a notebook's parameters."""
        out = {"profile": self.profile}
        for f in dataclasses.fields(self)[2:]:
            v = getattr(self, f.name)
            if v is not None and v != f.default:
                out[f.name] = v
        return out


REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(GridRequest))[1:]  # all but the section
GRID_PARAMS = tuple(f for f in REQUEST_FIELDS if f not in ("profile", "speed"))  # a notebook's grid parameters


# -- the command-line options --------------------------------------------------------------------------------------

# the commands taking an option: one section's (run, sweep), every section's (book), a ranking's (rank: its own inits)
ONE_SECTION, EVERY_SECTION, SWEEP = ("run", "sweep"), ("run", "sweep", "book", "rank"), ("sweep",)
RANKED = ("run", "sweep", "rank")


def csv_list(value: str) -> list[str]:
    """Comma-separated names or numbers; an empty item among others (``0.1,,0.2``, a trailing comma) is refused,
    never skipped."""
    items = [v.strip() for v in value.split(",")]
    if not any(items):
        return []  # nothing at all: the section's check says it is empty and lists the valid names
    if any(not v for v in items):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list without empty items, such as 0.1,0.5; "
                                         f"got {value!r}")
    return items


def floats(value: str) -> list[float]:
    try:
        return [float(v) for v in csv_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.1,0.5,1; got {value!r}") from None


def at_least(least: int, what: str):
    """An argparse type: a whole number >= ``least``."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"{what} must be at least {least}, got {n}")
        return n
    return parse


def setting(value: str) -> tuple[str, object]:
    """``FIELD=VALUE`` of a protocol field; the value is read as an int, a float, or else kept as text."""
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE such as max_epochs=1; got {value!r}")
    key, raw = (v.strip() for v in value.split("=", 1))
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def settings(pairs) -> dict:
    """``--set`` pairs as a dict; a field given twice is refused (the last would otherwise win silently)."""
    out = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise BadValueError(f"--set {key} is given twice ({out[key]!r} and {value!r}); give it once")
        out[key] = value
    return out


@dataclass(frozen=True)
class Option:
    """One command-line option of a ``GridRequest`` field (``speed.NAME``: a key of its ``speed``)."""

    field: str
    flag: str
    help: str
    commands: tuple[str, ...] = ONE_SECTION
    argparse: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.field.replace(".", "_")


def _speed_flag(name: str) -> str:
    return SPEED_OPTIONS[name].split()[0]


OPTIONS = (
    Option("tasks", "--tasks", "comma-separated task names (default: the section's)", RANKED, {"type": csv_list}),
    Option("inits", "--inits", "comma-separated init names (default: the section's)", argparse={"type": csv_list}),
    Option("arch", "--arch", "architecture, for sections that compare initialisations (default: the section's)"),
    Option("archs", "--archs", "comma-separated architectures, for sections that compare them (architectures, "
           "data-size; default: the section's)", argparse={"type": csv_list}),
    Option("fractions", "--fractions", "comma-separated shares of the training split, e.g. 0.1,0.5,1 (default: the "
           "section's)", RANKED, {"type": floats}),
    Option("num_seeds", "--seeds", "runs per (task, init), 2 or more (default: the profile's)", EVERY_SECTION,
           {"type": at_least(2, "--seeds")}),
    Option("device", "--device", "auto | cpu | cuda | cuda:N (default: auto)", EVERY_SECTION),
    Option("protocol", "--set", "change a protocol field of every run, e.g. --set max_epochs=1 (part of each run's "
           "hash); repeatable", EVERY_SECTION, {"action": "append", "type": setting, "metavar": "FIELD=VALUE"}),
    Option("speed.amp", _speed_flag("amp"), "mixed precision (default auto: bf16 or fp16 on a GPU, off on a CPU); "
           "part of the run's hash when set", SWEEP, {"choices": ["auto", "off", "bf16", "fp16"]}),
    Option("speed.channels_last", _speed_flag("channels_last"), "default auto: on a GPU", SWEEP,
           {"choices": ["auto", "on", "off"]}),
    Option("speed.compile", _speed_flag("compile"), "torch.compile each model", SWEEP,
           {"action": "store_const", "const": True}),
    Option("speed.workers", _speed_flag("workers"), "data-loader processes per run (default: none on a CPU, up to 8 "
           "on a GPU); never changes results", SWEEP, {"type": at_least(0, _speed_flag("workers"))}),
)


def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the options of ``command`` (run, sweep, book) to its parser."""
    for o in OPTIONS:
        if command in o.commands:
            parser.add_argument(o.flag, dest=o.dest, help=o.help, **o.argparse)


def given(args: argparse.Namespace, command: str) -> dict:
    """The request fields ``command``'s options were given (``--set`` as a dict, speed options under ``speed``)."""
    out, speed = {}, {}
    for o in OPTIONS:
        value = getattr(args, o.dest, None) if command in o.commands else None
        if value is None:
            continue
        if o.field == "protocol":
            value = settings(value)
        if o.field.startswith("speed."):
            speed[o.field.split(".", 1)[1]] = value
        else:
            out[o.field] = value
    return out | ({"speed": speed} if speed else {})


def request_from_args(section: str, args: argparse.Namespace, command: str) -> GridRequest:
    """The ``GridRequest`` of one section that a command's options (and its ``--profile``) make."""
    return GridRequest(section, profile=args.profile, **given(args, command))
