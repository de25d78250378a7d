"""A real Jupyter Book build from smoke results: pages, table, figure, offline math, generated methods tables."""
import re

import pytest

from medbench_core.book import build_book

pytestmark = [pytest.mark.slow, pytest.mark.book]


def test_book_builds_from_smoke_results(built_book, smoke_cache):
    book_copy, html, results = built_book
    assert html == book_copy / "_build" / "html"
    assert 'url=book/intro.html' in (html / "index.html").read_text()
    intro = (html / "book" / "intro.html").read_text()
    assert "What the papers asked and found" in intro and "synthetic" in intro
    assert "smoke" in intro and "paper" in intro  # the profiles table, generated from the registry

    page = (html / "book" / "executed" / "03_domain_adaptation.html").read_text()
    assert "it/s]" not in page and "widget-view" not in page  # no progress bars in the book
    assert 'class="mb-table"' in page and "As reported in DART 2021" in page
    imgs = re.findall(r'<img [^>]*src="([^"]+\.png)"', page)
    assert imgs and all((html / "book" / "executed" / src).resolve().stat().st_size > 5000 for src in imgs)
    text = re.sub(r"<[^>]+>", "", page)
    verdict = re.search(r"Verdict on the paper’s claim: (agrees|does not agree|inconclusive)\.", text)
    assert verdict, "computed verdict missing from the page"
    # the prose reads the same verdict through glue, and no glue role is left unresolved
    prose = " ".join(text.split())
    assert f"the verdict on the paper’s claim is {verdict.group(1)} (stability over draws of seeds: " in prose
    assert "Stability. not measured: 2 seeds per cell" in prose  # smoke: too few seeds for two halves, said so
    assert "{glue:" not in page

    # all five sections and the summary, in the paper's order, each with its table, figure and verdict
    for nb in ("01_granularity", "02_self_supervised", "04_architectures", "05_data_size"):
        page = (html / "book" / "executed" / f"{nb}.html").read_text()
        text = " ".join(re.sub(r"<[^>]+>", "", page).split())
        assert 'class="mb-table"' in page and "<img" in page and "SYNTHETIC" in page, nb
        assert re.search(r"Verdict on the paper’s claim: (agrees|does not agree|inconclusive)\.", text), nb
        assert "{glue:" not in page, nb
    summary = (html / "book" / "executed" / "summary.html").read_text()
    verdicts = re.findall(r"<b>(agrees|does not agree|inconclusive|not run[^<;]*)(?:; [^<]*)?</b>", summary)
    assert summary.count("; not measured (2 seeds)</b>") == 5  # each verdict with its stability (smoke: 2 seeds)
    assert len(verdicts) == 5 and not any(v.startswith("not run") for v in verdicts), verdicts
    assert all(t in summary for t in ("Fine-grained vs coarse-grained", "ConvNets vs vision transformers"))
    assert 'href="01_granularity.html"' in summary
    # the overview: each question in plain words with its section's key figure, computed from the store
    assert "Overview: the five questions" in summary and "The key figure of each question" in summary
    assert len(re.findall(r'<img [^>]*src="[^"]+\.png"', summary)) == 5
    assert sum(summary.count(p) for p in ("the same answer comes out here", "a different answer comes out here",
                                          "the runs here cannot decide")) == 5

    # citations rendered by sphinxcontrib-bibtex, each linking to its entry; the glossary's terms are defined
    refs = (html / "book" / "references.html").read_text()
    assert "barlow twins: self-supervised learning via redundancy reduction" in refs.lower()
    assert refs.count('role="doc-biblioentry"') == 25  # every entry of book/references.bib
    assert 'href="references.html#' in (html / "book" / "intro.html").read_text()
    glossary = (html / "book" / "glossary.html").read_text()
    assert all(f'id="term-{t}"' in glossary for t in ("Fine-tuning", "Linear-probing", "AUC", "Dice"))

    teacher = " ".join(re.sub(r"<[^>]+>", "", (html / "book" / "instructor.html").read_text()).split())
    assert "A 90-minute lab" in teacher and "medbench check" in teacher and "9 min (empty cache)" in teacher
    assert "_TIME" not in teacher  # every time on the page is a measured one

    methods = (html / "book" / "methods.html").read_text()
    assert "[?]" not in methods and 'href="references.html#' in methods
    assert "syn_pxs" in methods and "synth_imagenet_chest" in methods  # generated from the registries
    # math renders offline: MathJax is served from the book itself, never a CDN
    scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', methods, flags=re.I)
    assert scripts and all(not s.startswith("http") for s in scripts)
    assert (html / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 500_000
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()

    # the papers' own numbers: one page per question, with tables, figures and flagged claims
    part = (html / "book" / "reported" / "index.html").read_text()
    assert "undeterminable" in part and "population" in part
    for key in ("granularity", "self-supervised", "domain-adaptation", "architectures", "data-size"):
        page = (html / "book" / "executed" / "reported" / f"{key}.html").read_text()
        assert 'class="mb-table"' in page and "<img" in page, key
        assert re.search(r"<b>(supported|not supported|undeterminable)</b>", page), key
    da = (html / "book" / "executed" / "reported" / "domain-adaptation.html").read_text()
    assert "98.47" in da and "n=10, population" in da


    # a second build with nothing changed re-executes nothing; a change in the results store re-executes the section
    # (what is re-executed is decided before rendering: these builds skip the HTML)
    executed = sorted((book_copy / "book" / "executed").rglob("*.ipynb"))
    mtimes = {p: p.stat().st_mtime_ns for p in executed}
    build_book("smoke", root=book_copy, results_dir=results, cache_dir=smoke_cache, render=False)
    assert {p: p.stat().st_mtime_ns for p in executed} == mtimes  # nothing re-executed
    # runs another section adds to the shared store do not count; a change in this section's runs does
    (results / "runs" / "0000000000000000.csv").write_text("")
    build_book("smoke", root=book_copy, results_dir=results, cache_dir=smoke_cache, render=False)
    assert {p: p.stat().st_mtime_ns for p in executed} == mtimes
    from medbench_core import validate_section_params

    own = next(c for c in validate_section_params("domain-adaptation", profile="smoke").configs
               if c.init == "synth_chest")  # a run no other section shares
    (results / "runs" / f"{own.config_hash()}.csv").unlink()
    build_book("smoke", root=book_copy, results_dir=results, cache_dir=smoke_cache,
               sections=["domain-adaptation"], render=False)
    section = book_copy / "book" / "executed" / "03_domain_adaptation.ipynb"
    assert section.stat().st_mtime_ns != mtimes[section]
    assert (results / "runs" / f"{own.config_hash()}.csv").exists()  # trained again
