"""The built book as a reader sees it, in a real headless Chromium: every page loads, every figure is decoded and
shown, math is typeset (no raw TeX), tables render, no internal link or cross-reference is broken. Screenshots of
the main pages are kept in test-artifacts/screenshots/."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from browser import CHROMIUM, new_browser

pytestmark = [pytest.mark.slow, pytest.mark.book]

MAIN_PAGES = ("book/intro.html", "book/methods.html", "book/executed/summary.html",
              "book/executed/01_granularity.html", "book/executed/03_domain_adaptation.html",
              "book/executed/05_data_size.html", "book/reported/index.html")


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


READABLE_PX = 9.5  # the smallest figure text, in CSS pixels as shown (about 7 pt)
LOCAL_PATH = re.compile(r"(?<![\w.])/(?:tmp|home|root|work|Users|private|var/folders)/[\w.-]+")
PLUMBING = ("results_dir =", "repository, release =", "Parameters: papermill", "injected-parameters")


def _figure_font_px(png: Path) -> float | None:
    """The smallest text size a figure recorded in its PNG (FONT_KEY), in pixels of the PNG."""
    from PIL import Image

    from medbench_core.figures import FONT_KEY

    with Image.open(png) as im:
        v = im.info.get(FONT_KEY)
    return float(v) if v else None


def test_every_page_reads_right_in_a_browser(built_book, repo_root, smoke_cache):
    if CHROMIUM is None:
        pytest.skip("no chromium here; `make test` installs Debian's chromium when run as root")
    book_root, html, results = built_book
    pages = sorted(p for p in html.rglob("*.html") if p.name not in ("genindex.html", "search.html")
                   and "_static" not in p.parts and "_sources" not in p.parts)
    assert len(pages) >= 15
    artefacts = repo_root / "test-artifacts" / "screenshots"
    browser = new_browser()
    problems, ids, math_pages, checked_links, figures = [], {}, 0, 0, 0
    try:
        for page in pages:
            rel = page.relative_to(html).as_posix()
            browser.open(page.as_uri())
            seen = browser.inspect()
            shown = Path(unquote(urlparse(seen["url"]).path))
            if shown != page:  # a redirect page (index.html -> book/intro.html): the target is checked itself
                assert shown.exists() and shown in pages, f"{rel} redirects to {seen['url']}"
                continue
            if not seen["title"]:
                problems.append(f"{rel}: no title (did it load?)")
            for img in seen["imgs"]:
                if not (img["ok"] and img["shown"]):
                    problems.append(f"{rel}: image {img['src']} not decoded or not shown")
            if seen["rawTex"] or seen["mathErrors"]:
                problems.append(f"{rel}: {seen['rawTex']} blocks of raw TeX, {seen['mathErrors']} MathJax errors")
            math_pages += seen["math"] > 0
            if seen["unresolved"]:
                problems.append(f"{rel}: unresolved glue or references in the text")
            if rel.startswith("book/executed/0") and not any(n > 1 for n in seen["tables"]):
                problems.append(f"{rel}: no table with rows")
            for href in seen["links"]:
                u = urlparse(href)
                if u.scheme in ("http", "https", "mailto", "javascript") or not href:
                    continue
                target = page if not u.path else (page.parent / unquote(u.path)).resolve()
                checked_links += 1
                if not target.exists():
                    problems.append(f"{rel}: broken link {href}")
                elif u.fragment and target.suffix == ".html" and u.fragment not in _ids(target, ids):
                    problems.append(f"{rel}: link {href} points to no such anchor")
            # nothing clipped, no folder of the building machine, plumbing folded, figures readable
            problems += [f"{rel}: clipped {c}" for c in seen["clipped"]]
            raw = page.read_text(errors="replace")
            for where in (str(book_root.parent), str(results), str(smoke_cache)):
                if where in raw:
                    problems.append(f"{rel}: shows the local path {where}")
            problems += [f"{rel}: shows the local path {m}" for m in set(LOCAL_PATH.findall(seen["text"]))]
            if rel.startswith("book/executed/0"):
                if not seen["first"].startswith("Question."):
                    problems.append(f"{rel}: the page opens with {seen['first'][:80]!r}, not its question")
                problems += [f"{rel}: plumbing shown ({p!r})" for p in PLUMBING if p in seen["text"]]
                if "Run this section yourself" not in seen["text"]:
                    problems.append(f"{rel}: no 'Run this section yourself' box")
            if seen["launch"] or "executablebooks" in raw:
                problems.append(f"{rel}: a launch or repository link in a book built without a repository URL")
            for img in seen["shown"]:
                src = (page.parent / unquote(urlparse(img["src"] or "").path)).resolve()
                px = _figure_font_px(src) if src.suffix == ".png" and src.is_file() else None
                if px is None:
                    continue
                figures += 1
                if img["natural"] and px * img["width"] / img["natural"] < READABLE_PX:
                    problems.append(f"{rel}: figure {src.name}: smallest text {px * img['width'] / img['natural']:.1f}"
                                    f" px as shown (< {READABLE_PX})")
            if rel in MAIN_PAGES:
                browser.screenshot(artefacts / (rel.replace("/", "_").removesuffix(".html") + ".png"))
    finally:
        browser.close()
    assert not problems, "\n".join(problems)
    assert math_pages >= 1 and checked_links > 50 and figures >= 10
    for name in MAIN_PAGES:
        shot = artefacts / (name.replace("/", "_").removesuffix(".html") + ".png")
        assert shot.stat().st_size > 20_000, shot
