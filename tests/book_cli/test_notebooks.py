"""The section notebook, executed by papermill exactly as `medbench run` does, on the smoke profile."""
import json

import nbformat
import pytest

from medbench_core import ResultsStore, validate_section_params
from medbench_core.cli import main

from notebook_values import glued

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def test_committed_notebooks_have_no_outputs(repo_root):
    for path in (repo_root / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert sum("parameters" in t for t in tags) == 1, path.name


def test_papermill_understands_every_parameter(repo_root):
    """papermill silently drops parameters whose line it cannot parse (e.g. an '=' in the comment)."""
    from papermill.translators import PythonTranslator

    for path in (repo_root / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assignments = [ln.split("=")[0].strip() for ln in cell.source.splitlines() if ln and not ln.startswith("#")]
        parsed = [p.name for p in PythonTranslator.inspect(cell)]
        assert parsed == assignments, path.name


def test_section_runs_through_papermill_and_caches(tmp_path, smoke_cache, repo_root, capsys):
    results = tmp_path / "results"
    argv = ["run", "domain-adaptation", "--profile", "smoke", "--results-dir", str(results),
            "--cache-dir", str(smoke_cache), "--root", str(repo_root)]
    assert main(argv) == 0
    # one progress line per finished run (not a terminal), never papermill's per-cell logging
    err = capsys.readouterr().err
    assert "domain-adaptation: 0 of 24 runs already stored" in err and err.count("domain-adaptation: finished ") == 24
    assert "Executing Cell" not in err and "runs 24/24" in err
    executed = results / "executed" / "smoke" / "03_domain_adaptation.ipynb"
    nb = nbformat.read(executed, as_version=4)
    # the injected parameters: out of the page, and no folder of this machine in the copy a reader downloads
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "remove-cell" in injected.metadata.tags and str(results) not in injected.source
    assert "results_dir = None" in injected.source and str(smoke_cache) not in injected.source
    grid = validate_section_params("domain-adaptation", profile="smoke")
    store = ResultsStore(results)
    assert sorted(store.hashes()) == sorted(grid.hashes)  # every run of the grid, once

    values = glued(nb)
    assert values["da_verdict"] in ("agrees", "does not agree", "inconclusive")
    assert values["da_runs"] == str(len(grid.configs)) and values["da_profile"] == "smoke"
    assert values["da_paper_top_task"] == "TXC"  # computed from the reported table (98.47 - 95.62)
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert 'class="mb-table"' in html and "SYNTHETIC data" in html and "<b>" in html
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))

    # the verdict in the notebook is the one the statistics give
    from medbench_core import load_grid_results
    from medbench_core.sections import Results
    assert values["da_verdict"] == Results(grid, load_grid_results(grid, results)).verdict.outcome

    # a second run trains nothing: the run summary says so and no stored file changes
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").iterdir()}
    assert main(argv) == 0
    nb2 = nbformat.read(executed, as_version=4)
    summary = next(c for c in nb2.cells if "run_summary = " in c.source)
    text = next(o for o in summary.outputs if "data" in o)["data"]["text/plain"]
    assert "'trained': 0" in text and f"'cached': {len(grid.configs)}" in text
    assert mtimes == {p: p.stat().st_mtime_ns for p in (results / "runs").iterdir()}
    json.dumps(glued(nb2))  # still readable


def test_failing_notebook_keeps_previous_copy(tmp_path, smoke_cache, repo_root):
    from papermill.exceptions import PapermillExecutionError

    from medbench_core.book import execute_section

    out = tmp_path / "nb.ipynb"
    out.write_text("previous")
    not_a_dir = tmp_path / "results-is-a-file"
    not_a_dir.write_text("")
    orphan = tmp_path / ".nb.999999.tmp.ipynb"  # left by an earlier run that was killed (no process 999999)
    orphan.write_text("{}")
    # names are valid, so papermill starts; the notebook then fails when it opens the results store
    with pytest.raises(PapermillExecutionError):
        execute_section("domain-adaptation", profile="smoke", output=out, root=repo_root, results_dir=not_a_dir,
                        cache_dir=smoke_cache)
    assert out.read_text() == "previous"
    failed = nbformat.read(tmp_path / "nb.failed.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in failed.cells for o in c.get("outputs", []))
    assert not list(tmp_path.glob(".*.tmp.ipynb"))
    # a GPU that is not there is refused before papermill starts
    with pytest.raises(ValueError, match="no CUDA GPU"):
        execute_section("domain-adaptation", profile="smoke", output=out, root=repo_root,
                        results_dir=tmp_path / "r", parameters={"device": "cuda:0"})


def test_results_imported_from_elsewhere_render_without_training(tmp_path, smoke_cache, repo_root, capsys):
    """Runs made on another machine are exported, imported here, and the section renders from them alone."""
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    grid = validate_section_params("domain-adaptation", profile="smoke")
    from medbench_core import run_grid

    run_grid(grid, elsewhere, cache_dir=smoke_cache, progress=False)
    assert main(["results", "export", str(tmp_path / "lab.csv"), "--results-dir", str(elsewhere)]) == 0
    assert main(["results", "import", str(tmp_path / "lab.csv"), "--results-dir", str(here)]) == 0
    empty_cache = tmp_path / "no-cache"  # nothing may be generated or pre-trained
    assert main(["run", "domain-adaptation", "--profile", "smoke", "--quiet", "--results-dir", str(here),
                 "--cache-dir", str(empty_cache), "--root", str(repo_root)]) == 0
    nb = nbformat.read(here / "executed" / "smoke" / "03_domain_adaptation.ipynb", as_version=4)
    summary = next(o for o in next(c for c in nb.cells if "run_summary = " in c.source).outputs if "data" in o)
    summary = summary["data"]["text/plain"]
    assert "'trained': 0" in summary
    assert not empty_cache.exists() or not any(empty_cache.rglob("*.pt"))
    compare = next(c for c in nb.cells if "page.reproduced()" in c.source).outputs[0]["data"]["text/html"]
    assert "Same direction for" in compare and "TXC" in compare


SECTION_NOTEBOOKS = {
    "granularity": ("01_granularity.ipynb", "gr_verdict"),
    "self-supervised": ("02_self_supervised.ipynb", "ssl_verdict"),
    "architectures": ("04_architectures.ipynb", "arch_verdict"),
    "data-size": ("05_data_size.ipynb", "ds_verdict"),
}


@pytest.mark.parametrize("section", list(SECTION_NOTEBOOKS))
def test_every_section_runs_through_papermill(section, built_book):
    """Each section notebook, executed on the smoke profile by the book build (papermill, as `medbench run` does:
    the same `execute_section`; the CLI path itself is tested above); its verdict is the one the stored runs
    give."""
    from medbench_core import load_grid_results
    from medbench_core.sections import Results

    notebook, verdict_key = SECTION_NOTEBOOKS[section]
    root, _, results = built_book
    nb = nbformat.read(root / "book" / "executed" / notebook, as_version=4)
    grid = validate_section_params(section, profile="smoke")
    assert set(grid.hashes) <= set(ResultsStore(results).hashes())
    values = glued(nb)
    expected = Results(grid, load_grid_results(grid, results)).verdict.outcome
    assert values[verdict_key] == expected
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert 'class="mb-table"' in html and "SYNTHETIC data" in html
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= (2 if section == "self-supervised" else 1)
    assert not any(o.get("output_type") == "error" for o in outputs)
    if section == "data-size":
        import json

        manifest = json.loads((results / "manifests" / "syn_dxc-smoke-fractions.json").read_text())
        ids = [set(v) for v in manifest["fractions"].values()]
        assert all(a < b for a, b in zip(ids, ids[1:])) and all(i.startswith("train/") for i in ids[-1])
    if section == "self-supervised":  # the Grad-CAM evidence: maps and the attended-area table
        assert "attended area (%)" in html


def test_cli_rejects_bad_section_parameters_before_papermill(tmp_path, repo_root, capsys):
    base = ["run", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), "--root", str(repo_root)]
    assert main(base[:1] + ["architectures", "--archs", "mini_convnext,swin_typo"] + base[1:]) == 2
    assert "valid archs" in capsys.readouterr().err
    assert main(base[:1] + ["granularity", "--archs", "test_resnet,mini_swin"] + base[1:]) == 2
    assert "compares initialisations of one architecture" in capsys.readouterr().err
    assert main(base[:1] + ["data-size", "--fractions", "0.5,2"] + base[1:]) == 2
    assert "fractions must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_notebook_opened_from_notebooks_folder_uses_the_checkouts_store(book_copy):
    """Opened in Jupyter, a notebook runs with notebooks/ as its working directory; with the default parameters
    it must read and write the checkout's results/ (the store `make book` fills), not a second one."""
    from medbench_core.book import execute_notebook

    out = execute_notebook(book_copy / "notebooks" / "summary.ipynb", book_copy / "out.ipynb",
                           cwd=book_copy / "notebooks", parameters={"profile": "smoke"})
    assert (book_copy / "results" / "runs").is_dir() and not (book_copy / "notebooks" / "results").exists()
    values = glued(nbformat.read(out, as_version=4))
    assert values["summary_granularity"] == "not run"  # an empty store: nothing is trained here


def test_every_section_ends_with_graded_exercises_and_hidden_solutions(repo_root):
    import re

    for path in sorted((repo_root / "notebooks").glob("0*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        last = nb.cells[-1]
        assert last.cell_type == "markdown" and last.source.startswith("## Exercises"), path.name
        exercises = re.findall(r"^\*\*(\d) (★+) ", last.source, flags=re.M)
        assert 3 <= len(exercises) <= 5, path.name
        assert {len(stars) for _, stars in exercises} >= {1, 2, 3}, path.name  # graded difficulty
        solutions = re.findall(r"```\{admonition\} Solution\n:class: dropdown\n", last.source)
        assert len(solutions) == len(exercises), path.name  # each with a worked solution behind a toggle


def test_section_notebooks_share_one_cell_sequence_of_calls(repo_root):
    """Narrative and calls: the five section notebooks' code cells are identical apart from the section's name,
    and none holds a loop, a pivot or a selection."""
    import medbench_core as mb

    shapes = {}
    for key in mb.list_sections():
        nb = nbformat.read(repo_root / "notebooks" / mb.get_section(key).notebook, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code" and "setup" not in c.metadata.get("tags", [])]
        assert sum(f'"{key}"' in c for c in code) == 1, key
        shapes[key] = [c.replace(f'"{key}"', '"SECTION"') for c in code]
        for c in code:
            assert not any(w in c for w in ("for ", "while ", "pivot", "startswith", "[", "lambda")) or \
                c.startswith("# Parameters"), (key, c)
    first = next(iter(shapes.values()))
    assert all(s == first for s in shapes.values())


def test_headlines_are_glued_as_myst_nb_glues_them():
    """figures.glue writes what myst_nb.glue(display=False) writes, so the book's {glue:text} reads it."""
    from IPython.core.interactiveshell import InteractiveShell
    from myst_nb import glue

    from medbench_core import figures

    shell = InteractiveShell.instance()
    seen = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: seen.append((data, metadata))
    glue("x_verdict", "agrees", display=False)
    glue("x_runs", 24, display=False)
    theirs, seen[:] = list(seen), []
    figures.glue({"x_verdict": "agrees", "x_runs": 24})
    assert seen == theirs and len(seen) == 2
