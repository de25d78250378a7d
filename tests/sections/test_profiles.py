"""Profiles are facts: a lab registers its own profile in one call, every command works on it, and no code outside
the profile registry compares a profile's name."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medbench_core
from medbench_core.cli import main
from medbench_core.profiles import (GENERATED, PAPERS, Job, Profile, get_profile, list_profiles, register_profile,
                                    unregister_profile)
from medbench_core.sections import validate_section_params
from medbench_core.sweep import run_resources

PACKAGE = Path(medbench_core.__file__).parent


@pytest.fixture
def lab_profiles():
    """Two profiles a lab might add: the papers' experiments with five seeds on its own cluster, and a course's
    generated-data profile with three seeds at 32 px."""
    made = [register_profile(Profile("lab", "our cluster: the papers' protocol, five seeds", light=False,
                                     runs_on=PAPERS, num_runs=5, job=Job(600, 1200, 6, 1, 40, 64))),
            register_profile(Profile("course", "a class on generated data", image_size=32, max_epochs=5,
                                     patience=2, num_runs=3, pretrain_scale=0.2, runs_on=GENERATED))]
    yield made
    for p in made:
        unregister_profile(p.name)


def test_a_registered_profile_runs_a_grid_and_a_plan_without_touching_any_other_module(lab_profiles, capsys):
    lab = validate_section_params("granularity", profile="lab")
    paper = validate_section_params("granularity", profile="paper")
    # the papers' own cells, as on `paper`, with the lab's seeds; its runs are its own (the profile is hashed)
    assert {(c.task, c.arch, c.init, c.fraction) for c in lab.configs} == \
        {(c.task, c.arch, c.init, c.fraction) for c in paper.configs}
    assert lab.seeds == tuple(range(5)) and not set(lab.hashes) & set(paper.hashes)
    assert {c.augment for c in lab.configs} == {c.augment for c in paper.configs}  # the original's protocol
    course = validate_section_params("self-supervised", profile="course")
    demo = validate_section_params("self-supervised", profile="demo")
    assert course.tasks == demo.tasks and course.seeds == (0, 1, 2) and {c.image_size for c in course.configs} == {32}
    for name in ("lab", "course"):
        assert main(["sweep", "data-size", "--profile", name, "--plan"]) == 0
        assert capsys.readouterr().out.startswith(f"plan: data-size on {name}")
    assert run_resources("siim_ptx", "lab").timeout_min == 1200 and run_resources("drive", "lab").mem_gb == 64
    assert main(["list", "profiles"]) == 0 and "our cluster" in capsys.readouterr().out


def test_a_profile_that_is_not_a_fact_is_refused():
    with pytest.raises(ValueError, match="runs_on must be one of"):
        register_profile(Profile("odd", "runs on names", runs_on="colab"))
    with pytest.raises(ValueError, match="already registered"):
        register_profile(get_profile("demo"))
    assert "odd" not in list_profiles()


# Words that are also profile names, as dict keys meaning something else: a table's column of the papers' values,
# and the Colab service of a launch button.
NOT_PROFILES = {"paper", "colab"}
# Calls whose argument is such a word: the Colab service's URL (``launch``), a MedMNIST+ dataset's code (``Dataset``)
NOT_CALLS = {"get", "Dataset"}


def _name_keyed(tree: ast.AST, names: set[str]):
    """Where code keys behaviour on a profile's name: a comparison with one, a dict key, a default value or a
    ``profile=`` argument."""
    def is_name(node):
        return isinstance(node, ast.Constant) and node.value in names

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                if any(is_name(x) for x in items):
                    yield node.lineno, "compares a profile's name"
        elif isinstance(node, ast.Dict):
            for k in node.keys:
                if k is not None and is_name(k) and k.value not in NOT_PROFILES:
                    yield node.lineno, f"keys a dict by a profile's name ({k.value!r})"
        elif isinstance(node, ast.keyword) and node.arg == "profile" and is_name(node.value):
            yield node.value.lineno, "passes a profile by its name"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) not in NOT_CALLS:
            for a in node.args:
                if is_name(a):
                    yield a.lineno, f"passes a profile by its name ({a.value!r})"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and any(
                is_name(d) for d in node.args.defaults + node.args.kw_defaults if d):
            yield node.lineno, "defaults to a profile's name"


def test_no_code_outside_the_profile_registry_keys_on_a_profile_name():
    names = set(list_profiles())
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {why}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "profiles.py"
             for line, why in _name_keyed(ast.parse(path.read_text()), names)]
    assert not found, "\n".join(found)
