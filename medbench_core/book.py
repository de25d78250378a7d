"""Execute section notebooks with papermill and build the Jupyter Book (1.x). The build itself never trains."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from .data import require_prepared
from .experiments import get_section, list_sections, validate_section_params
from .models import get_arch, list_archs
from .pretrain import describe_inits, require_weights
from .profiles import get_profile, list_profiles
from .reported import QUESTIONS
from .results import ResultsStore
from .ssl import get_ssl_method, list_ssl_methods
from .stats import ALPHA
from .datasets import get_dataset
from .datasets.splits import describe_split
from .tasks import create_task, get_task_spec, list_tasks

log = logging.getLogger("medbench")


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The medbench checkout holding ``_toc.yml`` and ``notebooks/`` (searched upwards from ``start``)."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").exists() and (d / "notebooks").is_dir():
            return d
    raise FileNotFoundError(
        f"no medbench checkout found at or above {here}: `medbench run` and `medbench book` need the repository "
        "(its notebooks/ and _toc.yml). Run them from a clone, or pass --root.")


def notebook_fingerprint(source: str | os.PathLike, parameters: dict, results_dir: str | os.PathLike | None,
                         runs=None) -> str:
    """What an executed notebook depends on: its source, its parameters, medbench's code and data files, and the
    runs in the results store (if it reads one): those of ``runs`` (config hashes) that are stored, or every stored
    run when ``runs`` is None. Runs that other sections add to a shared store do not count."""
    h = hashlib.sha256()
    h.update(Path(source).read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    pkg = Path(__file__).resolve().parent
    for f in sorted(pkg.rglob("*")):
        if f.suffix in (".py", ".csv") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(pkg)).encode())
            h.update(f.read_bytes())
    if results_dir is not None:
        runs_dir = Path(results_dir) / "runs"
        names = sorted(p.name for p in runs_dir.glob("*.csv")) if runs_dir.is_dir() else []
        if runs is not None:
            wanted = {f"{r}.csv" for r in runs}
            names = [n for n in names if n in wanted]
        h.update("\n".join(names).encode())
    return h.hexdigest()[:20]


def _stored_fingerprint(path: Path) -> str | None:
    try:
        return json.loads(path.read_text())["metadata"].get("medbench", {}).get("fingerprint")
    except (OSError, ValueError, KeyError):
        return None


def execute_notebook(source: str | os.PathLike, output: str | os.PathLike, *, cwd: str | os.PathLike,
                     parameters: dict | None = None, log_output: bool = False,
                     results_dir: str | os.PathLike | None = None, runs=None, force: bool = False) -> Path:
    """Run ``source`` through papermill and write the executed copy to ``output`` atomically: a failed run leaves
    the previous copy in place and keeps the failed one next to it as ``*.failed.ipynb``.

    An executed copy whose fingerprint (``notebook_fingerprint``) still matches is reused unless ``force``."""
    import papermill as pm

    output = Path(output)
    parameters = parameters or {}
    if not force and output.exists() and \
            _stored_fingerprint(output) == notebook_fingerprint(source, parameters, results_dir, runs):
        log.info("%s is up to date (nothing it depends on changed)", output)
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.ipynb")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(source), str(tmp), parameters=parameters, cwd=str(cwd), kernel_name="python3",
                            progress_bar=False, log_output=log_output)
    except BaseException:
        if tmp.exists():
            failed = output.with_name(f"{output.stem}.failed.ipynb")
            os.replace(tmp, failed)
            log.error("the executed notebook with the error is kept at %s", failed)
        raise
    nb = json.loads(tmp.read_text())
    nb["metadata"]["medbench"] = {"fingerprint": notebook_fingerprint(source, parameters, results_dir, runs)}
    tmp.write_text(json.dumps(nb, indent=1))
    os.replace(tmp, output)
    log.info("executed %s in %.0f s -> %s", Path(source).name, time.perf_counter() - t0, output)
    return output


def execute_section(section: str, *, profile: str, output: str | os.PathLike, root: str | os.PathLike | None = None,
                    results_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                    parameters: dict | None = None, log_output: bool = False, force: bool = False) -> Path:
    """Run a section notebook through papermill with ``profile`` and ``parameters``; write the executed copy to
    ``output`` (atomically). Names are validated first, before papermill starts."""
    root = find_root(root)
    sec = get_section(section)
    params = {"profile": profile, **(parameters or {})}
    grid = validate_section_params(section, profile=profile, tasks=params.get("tasks"), inits=params.get("inits"),
                                   arch=params.get("arch"), archs=params.get("archs"),
                                   fractions=params.get("fractions"), num_seeds=params.get("num_seeds"),
                                   device=params.get("device", "auto"))
    params["results_dir"] = str(Path(results_dir or root / "results").resolve())
    store = ResultsStore(params["results_dir"]) if Path(params["results_dir"]).is_dir() else None
    todo = dict.fromkeys(c.task for c in grid.configs if not (store and store.has(c.config_hash())))
    require_prepared([create_task(t, profile) for t in todo], cache_dir)  # real data missing: stop before papermill
    require_weights([(c.arch, c.init) for c in grid.configs if not (store and store.has(c.config_hash()))], cache_dir)
    if cache_dir is not None:
        params["cache_dir"] = str(Path(cache_dir).resolve())
    return execute_notebook(root / "notebooks" / sec.notebook, output, cwd=root, parameters=params,
                            log_output=log_output, results_dir=params["results_dir"], runs=grid.hashes, force=force)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_generated_pages(root: Path, profile: str) -> None:
    """Markdown tables for the methods page, generated from the registries (``book/generated/``)."""
    out = root / "book" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    synthetic = [n for n in list_tasks() if get_task_spec(n).synthetic]
    real = [n for n in list_tasks() if not get_task_spec(n).synthetic]
    tasks = []
    for name in synthetic:
        t = create_task(name, profile)
        p = t.protocol
        tasks.append({"task": f"`{name}`", "title": t.display_name, "stands for": t.analog_of, "kind": t.kind,
                      "metric": t.metric, "classes": ", ".join(t.classes),
                      "train / val / test": " / ".join(map(str, t.sizes)), "image size": f"{p.image_size} px"})
    def protocol_row(name: str, prof: str) -> dict:
        p = create_task(name, prof).protocol
        return {"task": f"`{name}`", "optimizer": p.optimizer, "lr": p.lr, "batch": p.batch_size,
                "max epochs": p.max_epochs, "early stop (epochs)": p.patience,
                "schedule": f"{p.scheduler} (×{p.lr_factor} after {p.lr_patience})" if p.scheduler == "plateau"
                else p.scheduler, "loss": p.loss, "runs": p.num_runs, "image size": f"{p.image_size} px"}

    protocol = [protocol_row(n, profile) for n in synthetic]
    paper_protocol = [protocol_row(n, "paper") for n in real]
    real_tasks = [{"task": f"`{n}`", "dataset": get_dataset(get_task_spec(n).source).title,
                   "stands for": get_task_spec(n).analog_of, "classes": len(get_task_spec(n).classes)
                   if get_task_spec(n).kind == "multilabel_classification" else "mask",
                   "what it is": get_task_spec(n).description} for n in real]
    datasets = [{"dataset": get_dataset(d).title, "tasks": ", ".join(f"`{n}`" for n in real
                                                                     if get_task_spec(n).source == d),
                 "split": describe_split(d), "obtain from": get_dataset(d).obtain, "licence": get_dataset(d).licence}
                for d in dict.fromkeys(get_task_spec(n).source for n in real)]
    sections = [{"section": f"`{s}`", "title": get_section(s).title, "tasks": ", ".join(get_section(s).tasks),
                 "inits": ", ".join(get_section(s).inits), "archs": ", ".join(get_section(s).all_archs),
                 "fractions": ", ".join(f"{f:.0%}" for f in get_section(s).fractions),
                 "baseline": get_section(s).baseline,
                 "runs": len(validate_section_params(s, profile=profile).configs)}
                for s in list_sections()]
    profiles = [{"profile": f"`{n}`", "description": get_profile(n).description,
                 "image size": get_profile(n).image_size or "task's own", "max epochs": get_profile(n).max_epochs
                 or "task's own", "runs": get_profile(n).num_runs or "task's own"} for n in list_profiles()]
    archs = [{"arch": f"`{a}`", "family": get_arch(a).family, "segmentation": "yes" if get_arch(a).segmentation
              else "no", "description": get_arch(a).description} for a in list_archs()]
    ssl = [{"init": f"`ssl_{k}`", "method": get_ssl_method(k).label, "family": get_ssl_method(k).family,
            "stands for": get_ssl_method(k).paper_analog} for k in list_ssl_methods()]
    inits = pd.DataFrame(describe_inits("test_resnet", profile)).drop(columns=["label", "description"])
    inits["init"] = inits["init"].map(lambda s: f"`{s}`")
    from .zoo import get_record, list_records

    weights = []
    for k in list_records():
        r = get_record(k)
        host = ("manual: " + r.page if r.source == "manual" else r.source.split("://")[-1].split("/")[0]
                if "://" in r.source else r.source)
        weights.append({"key": f"`{k}`", "weights": r.label, "stands for": r.paper_analog, "family": r.family,
                        "source": host, "converter": r.converter, "check": r.pin,
                        "layout": "verified" if r.layout_verified else "from the release's description",
                        "licence": r.licence, "citation": r.citation})
    pages = {
        "tasks.md": pd.DataFrame(tasks), "protocol.md": pd.DataFrame(protocol), "inits.md": inits,
        "sections.md": pd.DataFrame(sections), "profiles.md": pd.DataFrame(profiles), "archs.md": pd.DataFrame(archs),
        "ssl.md": pd.DataFrame(ssl), "datasets.md": pd.DataFrame(datasets), "real_tasks.md": pd.DataFrame(real_tasks),
        "paper_protocol.md": pd.DataFrame(paper_protocol), "weights.md": pd.DataFrame(weights),
    }
    for name, df in pages.items():
        (out / name).write_text(_md_table(df))
    (out / "stats.md").write_text(
        f"Significance level {ALPHA}; sample standard deviation (ddof = 1); Student's independent two-sample t-test "
        "(pooled variance, two-sided).\n")
    (out / "build_info.json").write_text(json.dumps({"profile": profile}))


def build_book(profile: str = "demo", *, root: str | os.PathLike | None = None,
               results_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
               sections=None, output_dir: str | os.PathLike | None = None, log_output: bool = False,
               force: bool = False) -> Path:
    """Execute every section notebook on ``profile`` (training only what the results store lacks) and the summary
    page (which only reads the store), write the generated pages, then build the HTML book with Jupyter Book 1.x.
    Returns the ``html`` folder.

    Executed notebooks whose inputs did not change are reused (see ``execute_notebook``); ``force`` re-executes."""
    root = find_root(root)
    get_profile(profile)
    for s in sections or list_sections():
        sec = get_section(s)
        execute_section(s, profile=profile, output=root / "book" / "executed" / sec.notebook, root=root,
                        results_dir=results_dir, cache_dir=cache_dir, parameters={"progress": False},
                        log_output=log_output, force=force)
    results = str(Path(results_dir or root / "results").resolve())
    every_run = [h for s in list_sections() for h in validate_section_params(s, profile=profile).hashes]
    execute_notebook(root / "notebooks" / "summary.ipynb", root / "book" / "executed" / "summary.ipynb", cwd=root,
                     parameters={"profile": profile, "results_dir": results}, results_dir=results, runs=every_run,
                     log_output=log_output, force=force)
    for key in QUESTIONS:  # the papers' own numbers: no training, a few seconds each
        execute_notebook(root / "notebooks" / "reported" / f"{key}.ipynb",
                         root / "book" / "executed" / "reported" / f"{key}.ipynb", cwd=root, force=force)
    write_generated_pages(root, profile)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if jb is None:
        raise RuntimeError("jupyter-book is not installed: `pip install 'jupyter-book>=1.0.4,<2'` "
                           "(or `make book`, which installs everything)")
    cmd = [jb, "build", str(root)]
    if output_dir is not None:
        cmd += ["--path-output", str(output_dir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    html = Path(output_dir or root) / "_build" / "html"
    log.info("built the book in %.0f s -> %s", time.perf_counter() - t0, html / "index.html")
    return html
