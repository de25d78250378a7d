"""One request object: the command line's options (declared once for run, sweep and book), a notebook's parameters
cell and the book's section parameters all make a ``GridRequest``, validated once into the grid."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import nbformat
import pytest

import medbench_core.book as book
import medbench_core.sections.grid as grid_module
from medbench_core.cli import build_parser, main
from medbench_core.experiments import SPEED_FIELDS
from medbench_core.request import GRID_PARAMS, OPTIONS, REQUEST_FIELDS, GridRequest, request_from_args
from medbench_core.sections import Grid, get_section, list_sections

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_every_option_is_a_field_of_the_request_and_every_field_has_its_option():
    fields = set(REQUEST_FIELDS)
    for o in OPTIONS:
        assert (o.field.split(".", 1)[1] in SPEED_FIELDS) if o.field.startswith("speed.") else o.field in fields, o
    asked = {o.field.split(".")[0] for o in OPTIONS}
    assert fields - asked == {"profile"}  # the profile is every command's own option (--profile)
    assert {o.field.split(".", 1)[1] for o in OPTIONS if o.field.startswith("speed.")} == set(SPEED_FIELDS)


def _parameters(nb) -> dict:
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {t.id: t for n in ast.parse(cell.source).body if isinstance(n, ast.Assign) for t in n.targets}


@pytest.mark.parametrize("section", list_sections())
def test_every_notebook_takes_every_grid_parameter_and_passes_it_on(section):
    nb = nbformat.read(NOTEBOOKS / get_section(section).notebook, as_version=4)
    assert set(GRID_PARAMS) | {"profile"} <= set(_parameters(nb))
    call = next(n for c in nb.cells if c.cell_type == "code" and "section_page(" in c.source
                for n in ast.walk(ast.parse(c.source)) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "section_page")
    passed = {k.arg: k.value.id for k in call.keywords if isinstance(k.value, ast.Name)}
    assert all(passed.get(p) == p for p in (*GRID_PARAMS, "profile")), passed


def test_run_and_sweep_make_the_same_request_from_the_same_options():
    argv = ["granularity", "--profile", "smoke", "--tasks", "syn_dxc", "--inits", "scratch,synth_imagenet,synth_inat",
            "--seeds", "3", "--set", "max_epochs=1", "--set", "lr=0.01", "--device", "cpu"]
    want = GridRequest("granularity", profile="smoke", tasks=["syn_dxc"],
                       inits=["scratch", "synth_imagenet", "synth_inat"], num_seeds=3,
                       protocol={"max_epochs": 1, "lr": 0.01}, device="cpu")
    parser = build_parser()
    assert request_from_args("granularity", parser.parse_args(["run", *argv]), "run") == want
    sweep = parser.parse_args(["sweep", *argv, "--loader-workers", "2", "--compile"])
    assert request_from_args("granularity", sweep, "sweep") == dataclasses.replace(
        want, speed={"workers": 2, "compile": True})
    loaders = dataclasses.replace(want, speed={"workers": 2})
    assert Grid.of(want).hashes == Grid.of(loaders).hashes  # data-loader processes never change a run


def test_a_run_validates_its_request_once(tmp_path, monkeypatch):
    calls = []
    resolve = grid_module._resolve
    monkeypatch.setattr(grid_module, "_resolve", lambda r: calls.append(r) or resolve(r))

    def stop(*a, **k):
        raise KeyboardInterrupt  # papermill would start here

    monkeypatch.setattr(book, "execute_notebook", stop)
    assert main(["run", "data-size", "--profile", "smoke", "--fractions", "0.5,1", "--results-dir",
                 str(tmp_path / "r")]) == 130
    assert len(calls) == 1 and calls[0].fractions == [0.5, 1.0]


def test_book_options_apply_to_every_section(tmp_path, monkeypatch, capsys):
    got = {}
    monkeypatch.setattr(book, "build_book", lambda profile, **kw: got.update(kw, profile=profile) or tmp_path)
    assert main(["book", "--profile", "smoke", "--seeds", "3", "--set", "max_epochs=1"]) == 0
    assert got["section_parameters"] == {s: {"num_seeds": 3, "protocol": {"max_epochs": 1}} for s in list_sections()}
    assert main(["book", "--profile", "smoke", "--set", "lr_factor=2"]) == 2  # checked for every section first
    assert "lr_factor must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a section's own lists are not book options
        build_parser().parse_args(["book", "--tasks", "syn_dxc"])


def test_a_misspelt_notebook_parameter_is_refused(tmp_path):
    from medbench_core.sections import section_page

    with pytest.raises(TypeError, match="fraction"):
        section_page("data-size", profile="smoke", fraction=[0.5], results_dir=str(tmp_path))
