"""Execute section notebooks with papermill and build the Jupyter Book (1.x). The build itself never trains."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from .datasets import get_dataset
from .datasets.splits import describe_split
from .flags import FLAG_RULE
from .inputs import check_inputs
from .launch import without_setting
from .paths import find_root, is_special_file, output_target, remove_orphan_temps, replace_output  # noqa: F401 (find_root re-exported: medbench_core.book.find_root)
from .pretrain import describe_inits
from .profiles import DEFAULT, PAPERS, get_profile, profile_for
from .listings import archs_table, profiles_table, sections_table, weights_table
from .request import GridRequest
from .results import ResultsStore
from .sections import Grid, get_section, list_sections, validate_section_params
from .ssl import get_ssl_method, list_ssl_methods
from .stats import ALPHA
from .tasks import create_task, get_task_spec, list_tasks
from .verdicts import OUTCOMES, verdict_method

log = logging.getLogger("medbench")


def notebook_fingerprint(source: str | os.PathLike, parameters: dict, results_dir: str | os.PathLike | None,
                         runs=None, depends=()) -> str:
    """What an executed notebook depends on: its source, its parameters, medbench's code and data files, the
    runs in the results store (if it reads one): those of ``runs`` (config hashes) that are stored, or every stored
    run when ``runs`` is None (runs that other sections add to a shared store do not count), and the files in
    ``depends`` (e.g. the executed section notebooks the summary reads)."""
    h = hashlib.sha256()
    for f in depends:
        f = Path(f)
        h.update(f.name.encode() + (f.read_bytes() if f.is_file() else b"<absent>"))
    h.update(without_setting(Path(source).read_bytes()))  # the setup cell's repository line changes nothing here
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
                     results_dir: str | os.PathLike | None = None, runs=None, depends=(),
                     force: bool = False) -> Path:
    """Run ``source`` through papermill and write the executed copy to ``output`` atomically: a failed run leaves
    the previous copy in place and keeps the failed one next to it as ``*.failed.ipynb``.

    An executed copy whose fingerprint (``notebook_fingerprint``) still matches is reused unless ``force``."""
    import papermill as pm

    output = Path(output)
    parameters = parameters or {}
    target = output_target(output)  # a symlink: its target
    special = is_special_file(target)  # a device or FIFO: written into at the end, nothing written beside it
    if not force and not special and target.is_file() and \
            _stored_fingerprint(target) == notebook_fingerprint(source, parameters, results_dir, runs, depends):
        log.info("%s is up to date (nothing it depends on changed)", output)
        return output
    beside = Path(tempfile.gettempdir()) if special else target.parent
    beside.mkdir(parents=True, exist_ok=True)
    if not special:
        for orphan in remove_orphan_temps(beside):  # a run killed midway (its process is gone) left these
            log.info("removed %s, left by a run that was killed", orphan.name)
    tmp = beside / f".{target.stem}.{os.getpid()}.tmp.ipynb"
    t0 = time.perf_counter()
    # papermill says "Executing Cell N" for every cell: only when the notebook's output is streamed too (--verbose)
    logging.getLogger("papermill").setLevel(logging.INFO if log_output else logging.WARNING)
    try:
        pm.execute_notebook(str(source), str(tmp), parameters=parameters, cwd=str(cwd), kernel_name="python3",
                            progress_bar=False, log_output=log_output,
                            # the kernel's own log (start-up warnings, the traceback of a reply cut off by Ctrl-C)
                            # is not the reader's
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except BaseException:
        if tmp.exists():
            failed = beside / f"{target.stem}.failed.ipynb"
            os.replace(tmp, failed)
            log.error("the executed notebook with the error is kept at %s", failed)
        raise
    nb = _tidy(json.loads(tmp.read_text()))
    nb["metadata"]["medbench"] = {"fingerprint": notebook_fingerprint(source, parameters, results_dir, runs,
                                                                      depends)}
    tmp.write_text(json.dumps(nb, indent=1))
    replace_output(tmp, output)  # a symlink is followed, a device or FIFO written into: never replaced
    (beside / f"{target.stem}.failed.ipynb").unlink(missing_ok=True)  # an earlier failure is now stale
    log.info("executed %s in %.0f s -> %s", Path(source).name, time.perf_counter() - t0, output)
    return output


# parameters holding folders of the machine that ran the notebook: never shown, never downloaded
MACHINE_PARAMETERS = ("results_dir", "cache_dir", "executed_dir")


def _tidy(nb: dict) -> dict:
    """The executed copy as a reader gets it: papermill's injected-parameters cell is left out of the page (the
    section says what it ran with in one line) and its folders of the building machine are replaced by ``None``
    (so that the downloaded notebook uses the reader's own store)."""
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
            lines = "".join(cell["source"]).splitlines()
            cell["source"] = "\n".join(
                f"{ln.split('=')[0].strip()} = None  # the folder of the machine that built this copy"
                if ln.split("=")[0].strip() in MACHINE_PARAMETERS else ln for ln in lines)
    return nb


def execute_section(section: str, *, profile: str, output: str | os.PathLike, root: str | os.PathLike | None = None,
                    results_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                    parameters: dict | None = None, log_output: bool = False, force: bool = False,
                    progress: bool | None = None, grid: Grid | None = None) -> Path:
    """Run a section notebook through papermill with ``profile`` and ``parameters``; write the executed copy to
    ``output`` (atomically). Names are validated first, before papermill starts (``grid``: a grid the caller
    validated already from the same request). ``progress`` (default: unless ``log_output`` streams the notebook's
    own output): one line for the section (``progress.SectionProgress``)."""
    root = find_root(root)
    sec = get_section(section)
    params = {"profile": profile, **(parameters or {})}
    if grid is None:
        grid = Grid.of(GridRequest.from_params(section, params))
    params["results_dir"] = str(Path(results_dir or root / "results").resolve())
    store = ResultsStore(params["results_dir"]) if Path(params["results_dir"]).is_dir() else None
    # real data or weights missing: stop before papermill, with one list of what to do
    check_inputs([c for c in grid.configs if not (store and store.has(c.config_hash()))], cache_dir,
                 fetchable=True)  # MedMNIST+ is downloaded by the run itself
    if cache_dir is not None:
        params["cache_dir"] = str(Path(cache_dir).resolve())
    run = lambda: execute_notebook(root / "notebooks" / sec.notebook, output, cwd=root,  # noqa: E731
                                   parameters=params, log_output=log_output, results_dir=params["results_dir"],
                                   runs=grid.hashes, force=force)
    if not (log_output is False and progress is not False):
        return run()
    from .progress import SectionProgress

    with SectionProgress(section, grid.configs, params["results_dir"], cache_dir):
        return run()


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _facts_md(df: pd.DataFrame) -> pd.DataFrame:
    """The original code's facts with each source a link to its line."""
    df = df.copy()
    df["source"] = [f"[{s}]({u})" for s, u in zip(df["source"], df["url"])]
    return df.drop(columns=["url"])


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
    from .original import facts_table
    from .protocols import deviations_table, protocol_table, sizes_table
    from .sections.cells import paper_cells

    paper_grids, distinct = [], set()
    for s in list_sections():
        g = validate_section_params(s, profile=profile_for(runs_on=PAPERS))
        distinct.update(g.hashes)
        paper_grids.append({"section": f"`{s}`", "cells": len(paper_cells(s)), "tasks": ", ".join(g.tasks),
                            "models": len({(c.arch, c.init) for c in g.configs}), "fractions": ", ".join(
                                f"{f:.0%}" for f in g.fractions), "runs per cell": len(g.seeds),
                            "runs": len(g.configs), "where the papers report them": "; ".join(dict.fromkeys(
                                c.source for c in paper_cells(s)))})
    real_tasks = [{"task": f"`{n}`", "dataset": get_dataset(get_task_spec(n).source).title,
                   "stands for": get_task_spec(n).analog_of, "classes": len(get_task_spec(n).classes)
                   if get_task_spec(n).kind == "multilabel_classification" else "mask",
                   "what it is": get_task_spec(n).description} for n in real]
    datasets = [{"dataset": get_dataset(d).title, "tasks": ", ".join(f"`{n}`" for n in real
                                                                     if get_task_spec(n).source == d),
                 "split": describe_split(d), "obtain from": get_dataset(d).obtain, "licence": get_dataset(d).licence}
                for d in dict.fromkeys(get_task_spec(n).source for n in real)]
    ssl = [{"init": f"`ssl_{k}`", "method": get_ssl_method(k).label, "family": get_ssl_method(k).family,
            "stands for": get_ssl_method(k).paper_analog} for k in list_ssl_methods()]
    inits = pd.DataFrame(describe_inits("test_resnet", profile)).drop(columns=["label", "description"])
    inits["init"] = inits["init"].map(lambda s: f"`{s}`")
    pages = {
        "tasks.md": pd.DataFrame(tasks), "protocol.md": pd.DataFrame(protocol), "inits.md": inits,
        "sections.md": sections_table(profile, code=True), "profiles.md": profiles_table(code=True),
        "archs.md": archs_table(code=True),
        "ssl.md": pd.DataFrame(ssl), "datasets.md": pd.DataFrame(datasets), "real_tasks.md": pd.DataFrame(real_tasks),
        "paper_protocol.md": protocol_table(), "weights.md": weights_table(code=True),
        "deviations.md": deviations_table(), "paper_grids.md": pd.DataFrame(paper_grids),
        "sizes.md": sizes_table(), "original_facts.md": _facts_md(facts_table()),
    }
    for name, df in pages.items():
        (out / name).write_text(_md_table(df))
    total = sum(r["runs"] for r in paper_grids)
    (out / "paper_grids_total.md").write_text(
        f"In all, {sum(r['cells'] for r in paper_grids)} cells and {total:,} runs; {len(distinct):,} of them distinct "
        f"(a run with the same task, model and protocol serves every section that has it).\n")
    (out / "stats.md").write_text(
        f"Significance level {ALPHA} everywhere: a difference is significant when p < {ALPHA}. Sample standard "
        "deviation (ddof = 1); Student's independent two-sample t-test (pooled variance, two-sided).\n")
    from . import papers

    (out / "flags.md").write_text(FLAG_RULE + "\n")

    (out / "verdicts.md").write_text(
        "Our runs answer each claim with one of three words, computed by the section's rule:\n\n"
        + "".join(f"- **{k}**: {v}.\n" for k, v in OUTCOMES.items())
        + "\n" + verdict_method()
        + "\nThe papers' own printed numbers are checked against their claims with three other words, so that "
          "the two are never confused:\n\n"
        + "".join(f"- **{k}**: {v}.\n" for k, v in papers.FLAGS.items()))
    (out / "build_info.json").write_text(json.dumps({"profile": profile}))


def build_book(profile: str = DEFAULT, *, root: str | os.PathLike | None = None,
               results_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
               sections=None, section_parameters: dict | None = None, output_dir: str | os.PathLike | None = None,
               log_output: bool = False, force: bool = False, render: bool = True, papers: bool = True,
               repository: str | None = None, release: str | None = None, progress: bool | None = None) -> Path:
    """Execute every section notebook on ``profile`` (training only what the results store lacks) and the summary
    page (which only reads the store), write the generated pages, then build the HTML book with Jupyter Book 1.x
    (unless ``render`` is false). ``papers``: also execute the pages of the papers' own numbers (which do not depend
    on the profile). Returns the ``html`` folder.

    ``section_parameters`` maps a section to the notebook parameters it runs with (e.g. ``{"data-size":
    {"fractions": [0.1, 1.0]}}``); the summary reads the same grids. A section whose notebook fails does not stop
    the others: its page shows the error, the summary says in which cell it failed, and the build raises at the
    end, naming it. Executed notebooks whose inputs did not change are reused (see ``execute_notebook``);
    ``force`` re-executes.

    ``repository`` and ``release`` override ``_config.yml``'s ``repository.url`` and ``repository.branch`` (see
    ``launch``): with a URL, section pages get launch buttons, and the notebooks' setup cells are made to install
    from there (the notebooks changed are named: commit them, the buttons open the committed copies).
    ``progress``: one live line per section (runs and pre-training stages done, elapsed, time left); default: on."""
    from .launch import book_setting, sync_setup_cells

    root = find_root(root)
    get_profile(profile)
    setting = book_setting(root, repository, release)  # a bad URL or release stops here, before any work
    if setting.url:
        changed = sync_setup_cells(root, setting)
        if changed:
            log.warning("the setup cell of %d notebooks now installs medbench from %s: commit notebooks/ so that "
                        "the launch buttons (which open the committed notebooks at %s) install from there",
                        len(changed), setting.pip_source, setting.release)
    executed = root / "book" / "executed"
    section_parameters = {k: dict(v) for k, v in (section_parameters or {}).items()}
    failed = []
    for s in sections or list_sections():
        sec = get_section(s)
        out = executed / sec.notebook
        try:
            execute_section(s, profile=profile, output=out, root=root, results_dir=results_dir,
                            cache_dir=cache_dir, parameters={"progress": False, **section_parameters.get(s, {})},
                            log_output=log_output, force=force, progress=progress)
        except Exception as e:  # noqa: BLE001 - papermill's error: shown on the page and in the summary
            failed_copy = out.with_name(f"{out.stem}.failed.ipynb")
            if not failed_copy.is_file():
                raise  # stopped before papermill (a name, data or weights): nothing to show
            shutil.copyfile(failed_copy, out)  # the page shows the error; without a fingerprint it runs again
            os.utime(failed_copy)  # newer than the page: the summary reads it as failed
            failed.append(f"{s} ({type(e).__name__})")
    results = str(Path(results_dir or root / "results").resolve())
    every_run = [h for s in list_sections()
                 for h in Grid.of(GridRequest.from_params(s, {**section_parameters.get(s, {}), "profile": profile}))
                 .hashes]
    depends = [p for s in list_sections() for p in (executed / get_section(s).notebook,
                                                    executed / get_section(s).notebook.replace(".ipynb",
                                                                                               ".failed.ipynb"))]
    execute_notebook(root / "notebooks" / "summary.ipynb", executed / "summary.ipynb", cwd=root,
                     parameters={"profile": profile, "results_dir": results, "executed_dir": str(executed),
                                 "section_parameters": section_parameters},
                     results_dir=results, runs=every_run, depends=depends, log_output=log_output, force=force)
    for key in list_sections() if papers else ():  # the papers' own numbers: no training, a few seconds each
        execute_notebook(root / "notebooks" / "reported" / f"{key}.ipynb", executed / "reported" / f"{key}.ipynb",
                         cwd=root, force=force)
    write_generated_pages(root, profile)
    html = Path(output_dir or root) / "_build" / "html"
    if render:
        jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
        if jb is None:
            raise RuntimeError("jupyter-book is not installed: `pip install 'jupyter-book>=1.0.4,<2'` "
                               "(or `make book`, which installs everything)")
        cmd = [jb, "build", str(root)]
        if output_dir is not None:
            cmd += ["--path-output", str(output_dir)]
        t0 = time.perf_counter()
        env = {**os.environ, "MEDBENCH_REPOSITORY": setting.url, "MEDBENCH_RELEASE": setting.release}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        log.info("built the book in %.0f s -> %s", time.perf_counter() - t0, html / "index.html")
    if failed:
        raise RuntimeError(f"section notebooks failed: {', '.join(failed)}; their pages show the error "
                           f"({executed})")
    return html

