"""Where the book lives (one setting), the launch buttons built from it, and the notebooks' setup cell, which
installs medbench from the book's repository on a runtime that lacks it (a fresh Colab)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from medbench_core.launch import (BookSetting, book_setting, check_url, launch_links, read_setup_line,
                                  sync_setup_cells)

GH = "https://github.com/example-org/medbench"


def _git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory, repo_root) -> tuple[Path, str]:
    """A local clone of this repository and its commit: the layout a published URL serves."""
    if not (repo_root / ".git").exists():
        pytest.skip("not a git checkout")
    dst = tmp_path_factory.mktemp("clone") / "medbench"
    _git("clone", "--quiet", str(repo_root), str(dst))
    return dst, _git("rev-parse", "HEAD", cwd=dst)


def test_the_setting_and_the_links_it_makes(tmp_path, repo_root):
    # the committed setting: no repository yet, so no button anywhere; the notebooks agree with _config.yml
    committed = book_setting(repo_root)
    assert committed.url == "" and launch_links(committed, "notebooks/01_granularity.ipynb") == []
    for nb in sorted((repo_root / "notebooks").rglob("*.ipynb")):
        assert read_setup_line(nb) == (committed.url, committed.release), nb.name
    over = book_setting(repo_root, GH, "v1.0")
    assert (over.url, over.release, over.github) == (GH, "v1.0", ("example-org", "medbench"))
    links = dict(launch_links(over, "notebooks/01_granularity.ipynb", {"jupyterhub": "https://hub.example.org"}))
    assert links["Colab"] == ("https://colab.research.google.com/github/example-org/medbench/blob/v1.0/"
                              "notebooks/01_granularity.ipynb")
    assert links["Binder"] == "https://mybinder.org/v2/gh/example-org/medbench/v1.0?urlpath=lab/tree/notebooks/01_granularity.ipynb"
    hub = parse_qs(urlparse(links["JupyterHub"]).query)
    assert hub == {"repo": [GH], "branch": ["v1.0"], "urlpath": ["lab/tree/medbench/notebooks/01_granularity.ipynb"]}
    # elsewhere than GitHub: no Colab (it opens GitHub only), Binder through its generic git route
    other = dict(launch_links(BookSetting("https://gitlab.example.org/lab/medbench", "main"), "notebooks/x.ipynb"))
    assert set(other) == {"Binder"} and "/v2/git/https%3A%2F%2Fgitlab.example.org%2Flab%2Fmedbench/main" in other["Binder"]
    for bad in ("github.com/org/medbench", "not a url", "ftp://x/y"):
        with pytest.raises(ValueError, match="is not a clone URL"):
            check_url(bad)
    with pytest.raises(ValueError, match="release"):
        book_setting(repo_root, GH, "v1.0 --evil")


def _mini_book(tmp_path: Path, repo_root: Path, jupyterhub: str = "") -> Path:
    """The real _config.yml and every page made from a notebook (unexecuted copies of the committed notebooks:
    the buttons do not depend on the outputs), under a one-line intro: a fast real Jupyter Book build."""
    import yaml

    dst = tmp_path / "book"
    shutil.copytree(repo_root / "notebooks", dst / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(repo_root / "book" / "static", dst / "book" / "static")
    (dst / "book" / "intro.md").write_text("# medbench\n")
    shutil.copytree(dst / "notebooks", dst / "book" / "executed")
    cfg = yaml.safe_load((repo_root / "_config.yml").read_text())
    cfg["sphinx"]["config"]["medbench_launch"]["jupyterhub"] = jupyterhub
    cfg.pop("bibtex_bibfiles", None)
    (dst / "_config.yml").write_text(yaml.safe_dump(cfg))
    pages = sorted(p.relative_to(dst).with_suffix("").as_posix() for p in (dst / "book" / "executed").rglob("*.ipynb"))
    (dst / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "book/intro",
                                                  "chapters": [{"file": p} for p in pages]}))
    return dst


def _build(dst: Path, url: str, release: str) -> Path:
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    env = {**os.environ, "MEDBENCH_REPOSITORY": url, "MEDBENCH_RELEASE": release}
    proc = subprocess.run([jb, "build", str(dst)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dst / "_build" / "html"


def _launch_hrefs(page: Path) -> list[str]:
    return [unquote(h.replace("&amp;", "&")) for h in re.findall(r'href="([^"]+)"', page.read_text())
            if any(s in h for s in ("colab.research.google.com", "mybinder.org", "hub.example.org"))]


@pytest.mark.slow
@pytest.mark.book
def test_launch_buttons_open_committed_notebooks_at_the_release(tmp_path, repo_root, clone):
    path, sha = clone
    dst = _mini_book(tmp_path, repo_root, jupyterhub="https://hub.example.org")
    html = _build(dst, GH, sha)
    pages = sorted((html / "book" / "executed").rglob("*.html"))
    assert len(pages) == len(list((repo_root / "notebooks").rglob("*.ipynb"))) >= 11
    for page in pages:
        nb = "notebooks/" + page.relative_to(html / "book" / "executed").with_suffix(".ipynb").as_posix()
        hrefs = _launch_hrefs(page)
        assert len(hrefs) == 3, (page.name, hrefs)
        for h in hrefs:
            u = urlparse(h)
            if "colab" in u.netloc:
                owner_repo, ref, target = re.match(r"/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)$", u.path).groups()
                assert owner_repo == "example-org/medbench"
            elif "mybinder" in u.netloc:
                ref = re.match(r"/v2/gh/example-org/medbench/([^/?]+)$", u.path).group(1)
                target = parse_qs(u.query)["urlpath"][0].removeprefix("lab/tree/")
            else:
                q = parse_qs(u.query)
                ref, target = q["branch"][0], q["urlpath"][0].removeprefix("lab/tree/medbench/")
                assert q["repo"] == [GH]
            assert ref == sha and target == nb, (page.name, h)
            _git("cat-file", "-e", f"{ref}:{target}", cwd=path)  # the notebook exists at that commit of the clone
        assert "git clone https://github.com/example-org/medbench" in page.read_text() or "summary" in page.name \
            or "reported" in page.parts
    # the same book built without a URL: no button, no link to Jupyter Book's own repository, the box instead
    shutil.rmtree(html.parent)
    html = _build(dst, "", "main")
    for page in sorted((html / "book" / "executed").rglob("*.html")):
        text = page.read_text()
        assert _launch_hrefs(page) == [] and "executablebooks" not in text and "github.com" not in text, page.name
    assert "Run this section yourself" in (html / "book" / "executed" / "01_granularity.html").read_text()


def _dependencies_only(tmp_path: Path) -> Path:
    """This environment's installed packages, less medbench itself: what a Colab runtime already has (torch and
    the rest), so that the setup cell's install needs no index and stays fast."""
    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in site.iterdir():
        if entry.name.lower().startswith(("medbench", "__editable__")) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


@pytest.mark.slow
def test_the_setup_cell_installs_medbench_from_the_books_repository(tmp_path, clone):
    path, sha = clone
    url = path.resolve().as_uri()  # file:///...: the clone stands for the published repository
    root = tmp_path / "published"
    shutil.copytree(path / "notebooks", root / "notebooks")
    assert sync_setup_cells(root, BookSetting(url, sha))  # what `medbench book --repository` writes
    nb = json.loads((root / "notebooks" / "01_granularity.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "setup" in c["metadata"].get("tags", []))
    assert f'repository, release = "{url}", "{sha}"' in cell

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    fresh_site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     check=True, capture_output=True, text=True).stdout.strip())
    (fresh_site / "deps.pth").write_text(str(_dependencies_only(tmp_path)) + "\n")
    work = tmp_path / "colab"  # a working folder outside any checkout
    work.mkdir()
    (work / "cell.ipy").write_text(cell + "\nprint('sections:', ','.join(mb.list_sections()))\n"
                                   "print('from:', mb.__file__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDBENCH_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env |= {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    # before the install, medbench is not importable there
    assert subprocess.run([py, "-c", "import medbench_core"], cwd=work, env=env, capture_output=True).returncode != 0
    proc = subprocess.run([py, "-m", "IPython", "--no-banner", "--quick", "cell.ipy"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"installing medbench from git+{url}@{sha}" in out
    assert "sections: granularity,self-supervised,domain-adaptation,architectures,data-size" in out
    assert f"from: {venv}" in out  # imported from the fresh environment, not from this checkout
    assert f"a local clone at commit {sha[:10]}" in out and 'profile "auto" runs' in out
    # run again: medbench is there now, the cell only reports
    proc = subprocess.run([py, "-m", "IPython", "--no-banner", "--quick", "cell.ipy"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "installing" not in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
