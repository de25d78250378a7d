"""Where the book lives, and the buttons that open a section's notebook there.

One setting, in ``_config.yml``: ``repository.url`` (empty until whoever publishes the book sets it) and
``repository.branch`` (the branch or tag the book is released from). ``medbench book --repository URL --release
REF`` (``make book REPOSITORY=URL RELEASE=REF``) overrides both for one build.

With a URL, every page made from a notebook gets launch buttons (Colab for GitHub repositories, Binder, and a
JupyterHub when ``sphinx.config.medbench_launch.jupyterhub`` names one) that open the *committed* notebook
(``notebooks/...``) at the release: the executed copies in ``book/executed/`` are not in the repository. Without
a URL, no button points anywhere, and each section page says how to run it yourself. Jupyter Book's own launch
buttons stay off: they would open the executed copy's path, which does not exist in the repository.

Each notebook's setup cell installs medbench from the same place when it is not importable (a fresh Colab
runtime); ``sync_setup_cells`` writes the repository and release into that cell's one settings line.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

SERVICES = {"colab": "https://colab.research.google.com", "binder": "https://mybinder.org", "jupyterhub": ""}
# the setup cell's settings line (the only line of a notebook this module writes)
SETUP_LINE = re.compile(r'^repository, release = "(?P<url>[^"]*)", "(?P<ref>[^"]*)"(?P<rest>.*)$', re.M)


@dataclass(frozen=True)
class BookSetting:
    url: str = ""        # e.g. https://github.com/ORG/medbench ("" : not published; no launch buttons)
    release: str = "main"  # the branch or tag the buttons open and the setup cell installs

    @property
    def github(self) -> tuple[str, str] | None:
        """(org, repo) of a GitHub URL, else None (Colab opens GitHub notebooks only)."""
        m = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", self.url)
        return (m.group(1), m.group(2)) if m else None

    @property
    def pip_source(self) -> str:
        return f"git+{self.url}@{self.release}" if self.url else ""


URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/@%+-]+$")  # nothing a notebook, a shell or pip could read as code


def check_url(url: str) -> str:
    """A repository URL the buttons and pip can use, and nothing else: https://, http:// (with a host) or file://
    (a local clone), a path, no query or fragment, and only the characters of ``URL_CHARS``. The value is written
    into every notebook's setup cell (and `%pip install` reads it), so a quote, a semicolon, a space, a backslash or
    a newline is refused, never escaped.

    Example:
        >>> check_url("https://github.com/ORG/medbench/")
        'https://github.com/ORG/medbench'
        >>> check_url('https://github.com/o/r?x=";__import__("os")')
        Traceback (most recent call last):
        ...
        ValueError: repository URL 'https://github.com/o/r?x=";__import__("os")' is not a clone URL (a query); give e.g. https://github.com/ORG/medbench
    """
    from urllib.parse import urlsplit

    raw = url
    url = url.strip().rstrip("/")
    if not url:
        return url
    why = None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts, why = None, "unparsable"
    if parts is not None:
        if parts.scheme not in ("https", "http", "file"):
            why = "its scheme must be https, http or file"
        elif parts.scheme != "file" and not parts.hostname:
            why = "no host"
        elif parts.query or "?" in url:
            why = "a query"
        elif parts.fragment or "#" in url:
            why = "a fragment"
        elif not URL_CHARS.match(url):
            why = "a character a URL path does not need (quote, space, backslash, semicolon, newline ...)"
    if why:
        raise ValueError(f"repository URL {raw.strip()!r} is not a clone URL ({why}); give e.g. "
                         "https://github.com/ORG/medbench")
    return url


def check_release(ref: str) -> str:
    """A branch, tag or commit name: letters, digits, ``._/-``, not starting with ``-`` or ``/``, no ``..``."""
    ref = ref.strip()
    if not ref or not re.match(r"^[A-Za-z0-9._/-]+$", ref) or ".." in ref or ref[0] in "-/":
        raise ValueError(f"release {ref!r} is not a branch, tag or commit name: e.g. main or v1.0")
    return ref


def book_setting(root: str | os.PathLike, url: str | None = None, release: str | None = None) -> BookSetting:
    """The setting in ``root/_config.yml`` (``repository.url``, ``repository.branch``), with ``url`` and
    ``release`` overriding it when given."""
    import yaml

    cfg = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    repo = cfg.get("repository") or {}
    return BookSetting(url=check_url(url if url is not None else str(repo.get("url") or "")),
                       release=check_release(release if release is not None else str(repo.get("branch") or "main")))


def notebook_for(docname: str, root: str | os.PathLike) -> str | None:
    """The committed notebook a page is made from (``book/executed/X`` -> ``notebooks/X.ipynb``), if it exists."""
    if not docname.startswith("book/executed/"):
        return None
    rel = f"notebooks/{docname.removeprefix('book/executed/')}.ipynb"
    return rel if (Path(root) / rel).is_file() else None


def launch_links(setting: BookSetting, path: str, services: dict | None = None) -> list[tuple[str, str]]:
    """(service, URL) pairs that open ``path`` (relative to the repository root) at the release; none without a
    repository URL. Colab only opens GitHub repositories; Binder any public git URL; JupyterHub (nbgitpuller) any."""
    if not setting.url:
        return []
    svc = {**SERVICES, **(services or {})}
    out, ref = [], setting.release
    gh = setting.github
    if svc.get("colab") and gh:
        out.append(("Colab", f"{svc['colab'].rstrip('/')}/github/{gh[0]}/{gh[1]}/blob/{ref}/{path}"))
    if svc.get("binder") and not setting.url.startswith("file://"):
        base = svc["binder"].rstrip("/")
        spec = f"gh/{gh[0]}/{gh[1]}" if gh else f"git/{quote(setting.url, safe='')}"
        out.append(("Binder", f"{base}/v2/{spec}/{quote(ref, safe='')}?urlpath={quote('lab/tree/' + path)}"))
    if svc.get("jupyterhub"):
        name = setting.url.rstrip("/").split("/")[-1].removesuffix(".git")
        q = urlencode({"repo": setting.url, "branch": ref, "urlpath": f"lab/tree/{name}/{path}"}, safe="/")
        out.append(("JupyterHub", f"{svc['jupyterhub'].rstrip('/')}/hub/user-redirect/git-pull?{q}"))
    return out


def run_yourself_box(setting: BookSetting, path: str, section: str | None) -> str:
    """The "Run this section yourself" box (HTML) shown at the top of a notebook page."""
    import html

    cmd = (f"medbench run {section} --profile demo" if section else "make book")
    clone = (f"git clone {setting.url} medbench && cd medbench && git checkout {setting.release}"
             if setting.url else "a checkout of medbench (the repository this book was built from)")
    launch = ("Or open it on a GPU runtime with the launch button (the rocket) at the top of this page: its first "
              "cell installs medbench there." if setting.url else
              "Or take this page's notebook with the download button at the top of this page (.ipynb) and open it "
              "in a checkout, next to <code>notebooks/</code>.")
    return ('<div class="admonition tip mb-run-yourself"><p class="admonition-title">Run this section yourself</p>'
            f"<p>In {html.escape(clone) if setting.url else clone}:</p>"
            f"<pre>make install\n.venv/bin/{html.escape(cmd)}</pre>"
            f"<p>The notebook is <code>{html.escape(path)}</code>. {launch}</p></div>")


def read_setup_line(nb_path: str | os.PathLike) -> tuple[str, str] | None:
    """(url, release) of a notebook's setup cell, or None when it has none."""
    for cell in json.loads(Path(nb_path).read_text())["cells"]:
        if cell["cell_type"] == "code" and "setup" in cell.get("metadata", {}).get("tags", []):
            m = SETUP_LINE.search("".join(cell["source"]))
            return (m["url"], m["ref"]) if m else None
    return None


def sync_setup_cells(root: str | os.PathLike, setting: BookSetting) -> list[Path]:
    """Write ``setting`` into the setup cell of every committed notebook that names another repository or
    release; returns the notebooks changed (to be committed: the launch buttons open the committed copies)."""
    changed = []
    for path in sorted((Path(root) / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or read_setup_line(path) in (None, (setting.url, setting.release)):
            continue
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "setup" in cell.get("metadata", {}).get("tags", []):
                # literals: the values are checked (check_url, check_release) and written as JSON strings, which
                # are Python string literals; no value can become code
                line = f"repository, release = {json.dumps(check_url(setting.url))}, " \
                       f"{json.dumps(check_release(setting.release))}"
                src = SETUP_LINE.sub(lambda m: line + m["rest"], "".join(cell["source"]), count=1)
                cell["source"] = src.splitlines(keepends=True)
        path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")  # as nbformat writes
        changed.append(path)
    return changed


def without_setting(nb_source: bytes) -> bytes:
    """A notebook's bytes with its setup cell's settings line blanked: what it computes where medbench is installed
    does not depend on that line, so that a changed repository does not re-execute the book."""
    nb = json.loads(nb_source)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "setup" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = SETUP_LINE.sub("repository, release = ...", "".join(cell["source"]))
    return json.dumps(nb, sort_keys=True).encode()


# -- the Sphinx extension (``sphinx: extra_extensions: [medbench_core.launch]`` in _config.yml) --

def _config_inited(app, config):
    """The setting this build uses: _config.yml's (mapped by Jupyter Book into the theme options), overridden by
    ``MEDBENCH_REPOSITORY`` / ``MEDBENCH_RELEASE`` (set by ``medbench book --repository/--release``). Stored as
    config values, so that a changed setting re-renders every page."""
    theme = config.html_theme_options or {}
    config.medbench_repository = check_url(os.environ.get("MEDBENCH_REPOSITORY", theme.get("repository_url", "")))
    config.medbench_release = check_release(os.environ.get("MEDBENCH_RELEASE",
                                                           theme.get("repository_branch", "main")))
    # Jupyter Book's default repository (its own) must never reach a page
    theme["repository_url"], theme["repository_branch"] = config.medbench_repository, config.medbench_release


def _page_context(app, pagename, templatename, context, doctree):
    root = Path(app.srcdir)
    path = notebook_for(pagename, root)
    if path is None:
        return
    setting = BookSetting(app.config.medbench_repository, app.config.medbench_release)
    links = launch_links(setting, path, app.config.medbench_launch or {})
    if links:
        icons = {"Colab": "_static/images/logo_colab.png", "Binder": "_static/images/logo_binder.svg",
                 "JupyterHub": "_static/images/logo_jupyterhub.svg"}
        context.setdefault("header_buttons", []).append({
            "type": "group", "tooltip": "Open this notebook", "icon": "fas fa-rocket", "label": "launch-buttons",
            "buttons": [{"type": "link", "text": name, "tooltip": f"Open {path} on {name}", "url": url,
                         "icon": icons[name]} for name, url in links]})
    from .sections import get_section, list_sections

    section = next((s for s in list_sections() if f"notebooks/{get_section(s).notebook}" == path), None)
    if section is not None:
        box = run_yourself_box(setting, path, section)
        body = context.get("body", "")
        # after the question and the claim (the first markdown cell), before the first code cell
        i = body.find('<div class="cell')
        context["body"] = body[:i] + box + body[i:] if i >= 0 else body + box


def setup(app):
    app.add_config_value("medbench_launch", dict(SERVICES), "html")
    app.add_config_value("medbench_repository", "", "html")
    app.add_config_value("medbench_release", "main", "html")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context, priority=502)  # after the theme has made its buttons
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
