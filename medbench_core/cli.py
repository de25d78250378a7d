"""The ``medbench`` command line: thin verbs over the package.

    medbench list tasks|inits|sections|profiles|archs
    medbench run SECTION --profile smoke|demo [--tasks ...] [--inits ...] [--arch A | --archs ...]
                 [--fractions ...] [--seeds N] [--device D] [--set FIELD=VALUE ...]
    medbench book [--profile demo] [--force] [--repository URL] [--release REF] [--verbose]
    medbench results import|export FILE [--results-dir DIR]
    medbench data check|prepare TASK --root PATH [--profile paper] [--size N]
    medbench data fetch TASK [--profile colab]                      (MedMNIST+ only)
    medbench weights fetch KEY | import KEY FILE | forget KEY     (keys: medbench list models)
    medbench sweep SECTION --profile P --executor local|slurm [--status] [--retry-failed] [--wait]
    medbench check FILE --section SECTION [--profile demo]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from ._registry import UnknownNameError
from .errors import (EXIT_CHECK_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, BadPathError, BadValueError,
                     MedbenchError)
from .paths import check_writable_dir, get_cache_dir


def _cmd_list(args) -> int:
    import pandas as pd

    from .listings import archs_table, profiles_table, sections_table, weights_table
    from .pretrain import get_init, list_inits
    from .profiles import DEFAULT
    from .tasks import get_task_spec, list_tasks

    what = args.what
    if what == "tasks":
        rows = [{"task": n, "title": get_task_spec(n).display_name, "stands for": get_task_spec(n).analog_of,
                 "metric": get_task_spec(n).metric} for n in list_tasks()]
    elif what == "inits":
        rows = [{"init": n, "label": get_init(n).label, "stands for": get_init(n).paper_analog,
                 "recipe": " -> ".join(get_init(n).stages) or ("your model" if get_init(n).family == "yours" else
                                                              "released weights" if get_init(n).weights else "none"),
                 "whose": "yours (medbench models list)" if get_init(n).family == "yours" else "medbench"}
                for n in list_inits()]
    elif what == "sections":
        rows = sections_table(DEFAULT).to_dict("records")  # runs: on the default profile
    elif what == "datasets":
        from .datasets import get_dataset, list_datasets

        rows = [{"dataset": n, "title": get_dataset(n).title, "paper": get_dataset(n).paper_code,
                 "tasks": ",".join(t for t in list_tasks() if get_task_spec(t).source == n),
                 "licence": get_dataset(n).licence} for n in list_datasets()]
    elif what == "models":
        rows = weights_table(cached=True).drop(columns=["stands for", "family", "layout", "citation"]).to_dict(
            "records")  # the book's table, less what a terminal line cannot hold, plus this machine's cache
    elif what == "profiles":
        rows = profiles_table().to_dict("records")
    else:
        rows = archs_table().to_dict("records")
    df = pd.DataFrame(rows)
    widths = {c: max(len(str(c)), *(len(str(v)) for v in df[c])) for c in df.columns}
    print("  ".join(f"{c:<{widths[c]}}" for c in df.columns).rstrip())  # left-aligned: long text stays readable
    for _, r in df.iterrows():
        print("  ".join(f"{str(r[c]):<{widths[c]}}" for c in df.columns).rstrip())
    return 0


def _cmd_run(args) -> int:
    from .book import execute_section
    from .paths import find_root
    from .sections import get_section

    root = find_root(args.root)
    sec = get_section(args.section)
    _check_dirs(args)
    from .request import request_from_args
    from .sections import Grid

    request = request_from_args(args.section, args, "run")
    grid = Grid.of(request)  # every name checked once, before a dataset is decoded
    params = {"progress": False, **request.given()}
    results = Path(args.results_dir) if args.results_dir else root / "results"
    for task, data_root, size in _grid_data_roots(args.data_root, grid):
        _prepare(task, data_root, args, size=size)
    output = Path(args.output) if args.output else results / "executed" / args.profile / sec.notebook
    if args.output:
        from .paths import is_special_file, output_target

        if output_target(output).is_dir():
            raise BadPathError(f"--output {output} is a folder; give the executed notebook's file name")
        if not is_special_file(output_target(output)):  # a device or FIFO is written into, never replaced
            check_writable_dir(output_target(output).parent, "--output's folder")
    # `run` always executes the notebook; stored runs are still read, never trained again
    out = execute_section(args.section, profile=args.profile, output=output, root=root, results_dir=results,
                          cache_dir=args.cache_dir, parameters=params, log_output=args.verbose,
                          progress=not (args.quiet or args.verbose), force=True, grid=grid)
    print(f"executed notebook: {out}\nresults store: {results}")
    return 0


def _check_dirs(args) -> None:
    """The folders a command writes into, checked before any work (nothing is created here)."""
    from .paths import check_writable_dir

    for opt in ("results_dir", "cache_dir"):
        if getattr(args, opt, None):
            check_writable_dir(getattr(args, opt), "--" + opt.replace("_", "-"))
    if getattr(args, "cache_dir", None) is None and os.environ.get("MEDBENCH_CACHE"):
        check_writable_dir(os.environ["MEDBENCH_CACHE"], "$MEDBENCH_CACHE")


def _data_roots(values, tasks) -> list[tuple[str, str]]:
    """``--data-root PATH`` (with exactly one task in --tasks) or ``--data-root TASK=PATH``, repeatable."""
    out = []
    for v in values or []:
        if "=" in v:
            task, path = v.split("=", 1)
        elif tasks and len(tasks) == 1:
            task, path = tasks[0], v
        else:
            raise BadValueError(f"--data-root {v}: name the task (--data-root TASK=PATH) unless --tasks holds one "
                                "task")
        if task in (t for t, _ in out):
            raise BadValueError(f"--data-root names task {task!r} twice; give each task's folder once")
        _check_data_root(path)
        out.append((task, path))
    return out


def _grid_data_roots(values, grid) -> list[tuple[str, str, int]]:
    """``--data-root`` of a validated grid: (task, folder, the side its runs read, after any ``--set image_size`` or
    ``eval_crop``). A task the grid does not train is refused, before anything is read."""
    out = []
    for task, path in _data_roots(values, list(grid.tasks) if len(grid.tasks) == 1 else None):
        sizes = sorted({round(c.image_size / c.eval_crop) for c in grid.configs if c.task == task})
        if not sizes:
            raise BadValueError(f"--data-root names task {task!r}, which this run does not train (its tasks: "
                                f"{', '.join(grid.tasks)})")
        out += [(task, path, size) for size in sizes]
    return out


def _check_data_root(path: str) -> None:
    p = Path(path).expanduser()
    if not p.exists():
        raise BadPathError(f"dataset folder {p} does not exist; give the folder you downloaded the dataset into")
    if not p.is_dir():
        raise BadPathError(f"dataset folder {p} is a file; give the folder that holds the dataset's files")


def _prepare(task: str, root: str, args, size: int | None = None):
    from .datasets import prepare

    t0 = time.perf_counter()
    folder = prepare(task, root, profile=args.profile, size=size or getattr(args, "size", None),
                     cache_dir=args.cache_dir,
                     workers=getattr(args, "workers", None), force=getattr(args, "force", False))
    from .datasets.prepare import read_meta

    meta = read_meta(folder)
    print(f"prepared {task} at {meta['size']} px: " + ", ".join(f"{s} {n}" for s, n in meta["counts"].items())
          + f"; split digest {meta['split_digest']}; {time.perf_counter() - t0:.1f} s\ncache: {folder}")
    return folder


def _cmd_data(args) -> int:
    from .datasets import check
    from .tasks import create_task

    if args.action == "splits":
        return _authors_splits(args)
    if not args.task:
        raise BadValueError(f"medbench data {args.action} needs a task, e.g. `medbench data {args.action} "
                            "chestxray14 --root PATH`")
    if args.action == "fetch":  # MedMNIST+: the only datasets medbench may download
        from .datasets import catalog, get_dataset
        from .datasets.prepare import _task

        _check_dirs(args)
        source = _task(args.task).source
        if source not in catalog.MEDMNIST:
            ds = get_dataset(source)
            raise ValueError(f"{ds.title} cannot be downloaded by medbench ({ds.licence}); obtain it from "
                             f"{ds.obtain}, then: medbench data prepare {args.task} --root PATH")
        size = args.size or create_task(args.task, args.profile).protocol.stored_size
        folder = catalog.fetch_medmnist(source, size, args.cache_dir)
        _prepare(args.task, folder, args)
        return 0
    if args.root is None:
        raise BadValueError(f"medbench data {args.action} needs --root PATH (the dataset's folder)")
    _check_data_root(args.root)
    _check_dirs(args)
    if args.action == "prepare":
        _prepare(args.task, args.root, args)
        return 0
    spec = create_task(args.task, args.profile)
    report = check(spec, args.root, size=args.size)
    print(report)
    return 0 if report.ok else 1


def _authors_splits(args) -> int:
    from .datasets.authors import AUTHORS_FILES, FOLDER, install_authors_splits
    from .datasets.splits import describe_split, user_splits_dir
    from .original import ORIGINAL_COMMIT, ORIGINAL_LICENCE, ORIGINAL_REPOSITORY

    if not args.authors:
        raise BadValueError("medbench data splits takes --authors (the original repository's lists); the default "
                            "manifests ship with medbench")
    if args.task:
        raise BadValueError("medbench data splits --authors takes no task: it installs the ChestX-ray14 and "
                            "Shenzhen lists together")
    if args.from_dir is not None:
        _check_data_root(args.from_dir)
    written = install_authors_splits(args.from_dir, user_splits_dir())
    print(f"The authors' lists from {ORIGINAL_REPOSITORY} {FOLDER}/ at {ORIGINAL_COMMIT[:7]}, sha256 checked, come "
          f"under the original project's licence: {ORIGINAL_LICENCE}. Use them for non-commercial research only; "
          f"do not redistribute them without that licence, and cite the papers.")
    for dataset, path in written.items():
        print(f"{dataset}: {describe_split(dataset)} -> {path}")
    print(f"Prepare {' and '.join(AUTHORS_FILES)} again (`medbench data prepare TASK --root PATH`): data prepared on "
          "the default splits is not used with these, and runs on them are new runs.")
    return 0


def _cmd_rank(args) -> int:
    from .paths import find_root
    from .rank import rank, write_page
    from .request import given

    _check_dirs(args)
    results = Path(args.results_dir) if args.results_dir else find_root(args.root) / "results"
    every = given(args, "rank")  # --tasks, --fractions, --seeds, --set, --device
    r = rank(args.name, args.section, profile=args.profile, results_dir=results, cache_dir=args.cache_dir,
             train=args.train, **every)
    print(r.table.text.to_string(index=False))
    print(r.verdict)
    page = f"{args.name}-{r.grid.section.key}-{r.grid.profile}.html"
    out = Path(args.output) if args.output else results / "rank" / page
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"page: {write_page(r, out)}")
    return 0


def _cmd_models(args) -> int:
    from .user_models import add_model, registry_path, remove_model, user_models

    if args.action == "add":
        if not (args.name and args.arch and args.file):
            raise BadValueError("medbench models add NAME --arch ARCH --file CHECKPOINT: give all three")
        _check_dirs(args)
        e = add_model(args.name, args.arch, args.file, prefix=args.prefix, label=args.label,
                      cache_dir=args.cache_dir)
        print(f"added your model {args.name}: {e['arch']}, {e['backbone_tensors']} backbone tensors audited (prefix "
              f"{e['prefix']!r}), sha256 {e['sha256'][:12]}...; registry {registry_path()}\n"
              f"run it beside the papers' inits: medbench run SECTION --inits BASELINE,{args.name}; "
              f"see where it ranks: medbench rank {args.name}")
        return 0
    if args.action == "remove":
        if not args.name:
            raise BadValueError("medbench models remove NAME: give the name (medbench models list)")
        remove_model(args.name, cache_dir=args.cache_dir)
        print(f"removed your model {args.name} (runs already stored stay in their stores)")
        return 0
    models = user_models()
    if not models:
        print(f"no models of yours yet ({registry_path()}); add one: medbench models add NAME --arch ARCH "
              "--file CHECKPOINT")
        return 0
    for name, e in models.items():
        print(f"{name}  {e['arch']}  sha256 {e['sha256'][:12]}  prefix {e['prefix']!r}  {e['file']}  "
              f"added {e['added_at']}")
    print(f"({registry_path()})")
    return 0


def _cmd_weights(args) -> int:
    from .zoo import fetch, forget, get_record, import_file

    rec = get_record(args.key)
    _check_dirs(args)
    if args.action == "forget":
        removed = forget(args.key, args.cache_dir)
        print(f"{args.key}: removed " + "; ".join(removed) if removed else
              f"{args.key}: nothing to remove (no converted weights, pin or download of it in the cache)")
        return 0
    if args.file and args.action != "import":
        raise BadValueError(f"medbench weights {args.action} KEY takes no file (only `weights import KEY FILE` does)")
    if args.action == "import":
        if not args.file:
            raise BadValueError("medbench weights import KEY FILE: give the file")
        path = import_file(args.key, args.file, cache_dir=args.cache_dir)
    else:
        path = fetch(args.key, cache_dir=args.cache_dir, progress=True)
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=True)
    print(f"{rec.key} ({rec.label}): {ck['backbone_tensors']} backbone tensors audited, source sha256 "
          f"{ck['source_sha256']} ({rec.pin if rec.sha256 else 'pin recorded on first import'})\n{path}")
    return 0


def _cmd_sweep(args) -> int:
    from . import sweep
    from .paths import find_root
    from .request import request_from_args
    from .sections import Grid, validate_section_params

    _check_dirs(args)
    grid = Grid.of(request_from_args(args.section, args, "sweep"))
    results = Path(args.results_dir) if args.results_dir else find_root(args.root) / "results"
    if args.plan:
        from .plan import format_plan
        from .sections import list_sections

        study = [grid if k == grid.section.key else validate_section_params(k, profile=args.profile)
                 for k in list_sections()]
        print(format_plan(grid, study))
        return 0
    if args.status and not (results / "runs").is_dir():  # asking must not create a store
        raise BadPathError(f"no results store at {results} (nothing has run there); give --results-dir of a store")
    if not args.status:
        for task, data_root, size in _grid_data_roots(args.data_root, grid):
            _prepare(task, data_root, args, size=size)
        if args.executor == "local":
            out = sweep.run_local(grid, results, cache_dir=args.cache_dir, workers=args.workers,
                                  retry_failed=args.retry_failed)
        else:
            out = sweep.submit_slurm(grid, results, cache_dir=args.cache_dir, retry_failed=args.retry_failed,
                                     partition=args.partition)
        print(f"{args.executor}: {out['submitted']} runs submitted in {out['seconds']} s")
        while args.wait and args.executor == "slurm" and (sweep.status(grid, results)["state"] == "running").any():
            time.sleep(3)
    df = sweep.status(grid, results)
    print(f"{grid.section.key} on {grid.profile}: {sweep.summary_line(df)} ({len(df)} runs; store {results})")
    for _, r in df[df["state"] == "failed"].iterrows():
        print(f"  failed {r['hash']} {r['task']} {r['arch']} {r['init']} {r['fraction']:g} seed {r['seed']}: "
              f"{r['detail']}")
    if (df["state"] == "failed").any():
        print("  retry them alone with --retry-failed; tracebacks in " + str(results / "sweeps" / "failed"))
    return 1 if (df["state"] == "failed").any() else 0


def _cmd_check(args) -> int:
    from .check import check_results

    result = check_results(args.file, args.section, args.profile)
    print(result)
    return 0 if result.ok else 1


def _cmd_book(args) -> int:
    from .book import build_book
    from .request import GridRequest, given
    from .sections import Grid, list_sections

    _check_dirs(args)
    every = given(args, "book")  # --seeds, --set, --device: for every section
    for s in list_sections():  # checked before any notebook runs
        Grid.of(GridRequest(s, profile=args.profile, **every))
    html = build_book(args.profile, root=args.root, results_dir=args.results_dir, cache_dir=args.cache_dir,
                      log_output=args.verbose, progress=not (args.quiet or args.verbose), force=args.force,
                      repository=args.repository, release=args.release,
                      section_parameters={s: every for s in list_sections()} if every else None)
    print(f"book: {html / 'index.html'}")
    return 0


def _cmd_results(args) -> int:
    from .paths import find_root
    from .results import ResultsStore
    from .results_export import export_results
    from .results_file import import_results
    from .sections import import_knowledge

    results = Path(args.results_dir) if args.results_dir else find_root(args.root) / "results"
    if args.action == "import":
        _check_dirs(args)
        out = import_results(args.file, results, known=import_knowledge())
        print(f"imported {out['imported']} runs ({out['rows']} rows) into {results}; "
              f"{out['already_present']} were already there")
    else:
        n = export_results(ResultsStore(results, create=False), args.file, profile=args.profile)
        print(f"wrote {n} rows from {results} to {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: one small builder per group of verbs, sharing the options every section verb takes."""
    p = _Parser(prog="medbench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list registered names")
    ls.add_argument("what", choices=["tasks", "inits", "sections", "profiles", "archs", "datasets", "models"])
    ls.set_defaults(func=_cmd_list)
    common, data_root = _common_options(), _data_root_option()
    _section_verbs(sub, common, data_root)
    _store_and_data_verbs(sub)
    return p


def _common_options() -> argparse.ArgumentParser:
    """What every verb that runs a section takes: the profile, the store, the caches, the checkout, the output."""
    from .profiles import DEFAULT, list_profiles

    common = _Parser(add_help=False)
    common.add_argument("--profile", default=DEFAULT, help=f"{' | '.join(list_profiles())} (default: {DEFAULT})")
    common.add_argument("--results-dir", help="results store (default: results/ in the checkout)")
    common.add_argument("--cache-dir", help="generated data and pre-training checkpoints "
                                            "(default: $MEDBENCH_CACHE or ~/.cache/medbench)")
    common.add_argument("--root", help="the medbench checkout (default: found from the current directory)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="stream each notebook's cells and output instead of the progress line")
    return common


def _data_root_option() -> argparse.ArgumentParser:
    data_root = _Parser(add_help=False)
    data_root.add_argument("--data-root", action="append", metavar="[TASK=]PATH",
                           help="a real dataset's folder: prepared (once) before the section runs; repeatable")
    return data_root


def _section_verbs(sub, common, data_root) -> None:
    """run, sweep, book and rank: the grid options of each come from ``request.OPTIONS`` (declared once)."""
    from .request import add_options, at_least

    run = sub.add_parser("run", parents=[common, data_root], help="execute a section notebook through papermill")
    run.add_argument("section", help="a section name, see `medbench list sections`")
    add_options(run, "run")
    run.add_argument("--output", help="where to write the executed notebook")
    run.set_defaults(func=_cmd_run)

    sw = sub.add_parser("sweep", parents=[common, data_root], help="run a section's grid as independent runs, "
                        "locally or on Slurm; re-submitting runs only what is not done")
    sw.add_argument("section")
    sw.add_argument("--executor", choices=["local", "slurm"], default="local")
    sw.add_argument("--status", action="store_true", help="only print done / running / failed / pending")
    sw.add_argument("--plan", action="store_true", help="print the budget (runs, images, epochs, GPU-hours, disk, "
                    "missing data and weights with the commands that fix them) and the whole study's; run nothing")
    sw.add_argument("--retry-failed", action="store_true", help="run the failed runs again too")
    sw.add_argument("--workers", type=at_least(1, "--workers"), help="local: runs at a time (default: one per GPU, "
                    "or 1 on CPU)")
    sw.add_argument("--partition", help="slurm: the partition (default: the cluster's)")
    sw.add_argument("--wait", action="store_true", help="slurm: return when nothing is pending or running")
    add_options(sw, "sweep")
    sw.set_defaults(func=_cmd_sweep)

    book = sub.add_parser("book", parents=[common], help="execute every section, then build the book")
    book.add_argument("--force", action="store_true",
                      help="re-execute every notebook, even those whose inputs did not change")
    book.add_argument("--repository", help="the URL the book is published from (default: _config.yml's "
                      "repository.url; empty: no launch buttons)")
    book.add_argument("--release", help="the branch or tag the launch buttons open (default: _config.yml's "
                      "repository.branch)")
    add_options(book, "book")
    book.set_defaults(func=_cmd_book)

    rk = sub.add_parser("rank", parents=[common], help="where does your model rank? its runs beside a section's inits, "
                        "with the section's t-tests and a verdict per task, as a table and a page")
    rk.add_argument("name", help="your model (medbench models list)")
    rk.add_argument("--section", help="a section comparing initialisations (default: the one comparing the most)")
    rk.add_argument("--train", action="store_true", help="train the runs the store lacks first")
    rk.add_argument("--output", help="where to write the page (default: results/rank/NAME-SECTION-PROFILE.html)")
    add_options(rk, "rank")
    rk.set_defaults(func=_cmd_rank)


def _store_and_data_verbs(sub) -> None:
    """results, data, weights and check: the store's files, the real datasets, the released weights."""
    from .profiles import DEFAULT, ORIGINAL, get_profile, list_profiles
    from .request import at_least

    res = sub.add_parser("results", help="import results made elsewhere, or export this store")
    res.add_argument("action", choices=["import", "export"])
    res.add_argument("file", help="a CSV long table (the columns of `medbench_core.results.COLUMNS`)")
    res.add_argument("--results-dir", help="results store (default: results/ in the checkout)")
    res.add_argument("--root", help="the medbench checkout (default: found from the current directory)")
    res.add_argument("--profile", help="export: only rows of this profile")
    res.set_defaults(func=_cmd_results)

    data = sub.add_parser("data", help="real datasets: check a copy, or decode it once into the cache")
    data.add_argument("action", choices=["check", "prepare", "fetch", "splits"],
                      help="fetch: download (MedMNIST+ only) and prepare; splits --authors: install the authors' "
                           "ChestX-ray14 and Shenzhen lists")
    data.add_argument("task", nargs="?", help="a task reading a real dataset, see `medbench list tasks` and "
                                              "`list datasets` (not for splits)")
    data.add_argument("--authors", action="store_true", help="splits: the original repository's own lists "
                      "(downloaded at the pinned commit, or read from --from), checked by sha256")
    data.add_argument("--from", dest="from_dir", help="splits --authors: a folder holding the six list files you "
                      "downloaded (works offline)")
    data.add_argument("--root", help="the dataset's folder, in the layout `data check` describes")
    data.add_argument("--profile", default=ORIGINAL, help=f"whose resolution to prepare (default: {ORIGINAL})")
    data.add_argument("--size", type=at_least(8, "--size"), help="image size in px (default: the task's under "
                      "--profile)")
    data.add_argument("--workers", type=at_least(1, "--workers"), help="decoding processes (default: CPU cores, at "
                      "most 8)")
    data.add_argument("--cache-dir", help="default: $MEDBENCH_CACHE or ~/.cache/medbench")
    data.add_argument("--force", action="store_true", help="prepare again even if the cache is complete")
    data.set_defaults(func=_cmd_data)

    mdl = sub.add_parser("models", help="your own pre-trained models: add a checkpoint, list or remove them")
    mdl.add_argument("action", choices=["add", "list", "remove"])
    mdl.add_argument("name", nargs="?", help="the model's name: it becomes an init name (--inits imagenet,NAME)")
    mdl.add_argument("--arch", help="add: its architecture (medbench list archs)")
    mdl.add_argument("--file", help="add: the checkpoint (.safetensors, or a PyTorch file of tensors)")
    mdl.add_argument("--prefix", help="add: the key prefix of the backbone, when the file holds several (e.g. "
                     "MoCo's 'module.encoder_q.')")
    mdl.add_argument("--label", help="add: how tables name it (default: NAME)")
    mdl.add_argument("--cache-dir", help="default: $MEDBENCH_CACHE or ~/.cache/medbench")
    mdl.set_defaults(func=_cmd_models)

    wts = sub.add_parser("weights", help="pre-trained weights: download, import a manual download, or forget")
    wts.add_argument("action", choices=["fetch", "import", "forget"])
    wts.add_argument("key", help="arch.tag, see `medbench list models`")
    wts.add_argument("file", nargs="?", help="import: the downloaded file")
    wts.add_argument("--cache-dir", help="default: $MEDBENCH_CACHE or ~/.cache/medbench")
    wts.set_defaults(func=_cmd_weights)

    chk = sub.add_parser("check", help="is a results file (from `medbench results export`) complete and plausible "
                         "for a section? For students and their teachers")
    chk.add_argument("file")
    chk.add_argument("--section", required=True, help="the section the file should hold, see `medbench list sections`")
    chk.add_argument("--profile", default=DEFAULT, help="the profile it was run on (reference ranges: "
                     f"{', '.join(p for p in list_profiles() if get_profile(p).reference) or 'none'})")
    chk.set_defaults(func=_cmd_check)


def _os_message(e: OSError) -> str:
    """An operating-system error as one line: what failed, on which path, and what to do."""
    import errno

    where = e.filename if e.filename is not None else ""
    hint = {errno.ENOENT: "check the path", errno.EACCES: "check its permissions, or give a path you can write to",
            errno.EPERM: "check its permissions, or give a path you can write to",
            errno.EISDIR: "give a file, not a folder", errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.ENOSPC: "free some disk space (or point --cache-dir / --results-dir elsewhere) and run again: "
                          "finished runs are kept", errno.EROFS: "give a path on a writable disk",
            errno.EEXIST: "remove it or give another path"}.get(e.errno, "check the path")
    what = e.strerror or str(e)
    return f"{what}: {where} ({hint})" if where else f"{what} ({hint})"


def _classify(e: BaseException) -> tuple[int, str] | None:
    """(exit code, one line) for an error a user can cause; None for a bug (shown with its traceback)."""
    if isinstance(e, MedbenchError):
        return e.exit_code, str(e)
    if isinstance(e, UnknownNameError):
        return BadValueError.exit_code, str(e)
    if isinstance(e, OverflowError):
        return BadValueError.exit_code, f"a number is too large: {e}"
    if isinstance(e, OSError):
        if e.filename is None and e.strerror is None and str(e):  # raised by medbench with its own message
            return BadPathError.exit_code, str(e)
        return BadPathError.exit_code, _os_message(e)
    if isinstance(e, ValueError):  # medbench's own checks raise ValueError with a message meant for the user
        return BadValueError.exit_code, str(e)
    return None


class _Parser(argparse.ArgumentParser):
    """argparse with its error as one line (what is wrong, and where the options are listed)."""

    def error(self, message: str):
        self.exit(BadValueError.exit_code, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cache_dirs(cache_dir) -> set[Path]:
    """The folders of the cache (two levels deep) as they are now: after a refused command, the empty ones it made
    are removed."""
    root = get_cache_dir(cache_dir, create=False)
    if not root.is_dir():
        return set()
    out = {root}
    for p in root.iterdir():
        if p.is_dir() and not p.is_symlink():
            out.add(p)
            out.update(q for q in p.iterdir() if q.is_dir() and not q.is_symlink())
    return out


def _remove_new_empty_dirs(cache_dir, before: set[Path]) -> None:
    root = get_cache_dir(cache_dir, create=False)
    new = (_cache_dirs(cache_dir) | ({root} if root.is_dir() else set())) - before
    for p in sorted(new, key=lambda p: len(p.parts), reverse=True):  # the deepest first
        try:
            p.rmdir()  # only an empty folder goes
        except OSError:
            pass


_INTERRUPTED = []  # set by the Ctrl-C handler: what fails after it (a dead kernel, a closed socket) is the interrupt


def _on_interrupt(signum, frame):
    if not _INTERRUPTED:
        _INTERRUPTED.append(True)
        # the kernel's client, zmq and asyncio report the interrupted kernel at length: the one line below says it
        for name in ("traitlets", "asyncio", "papermill", "nbclient", "jupyter_client", "tornado", "zmq", "medbench"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    raise KeyboardInterrupt


def _interrupted_line() -> str:
    return "medbench: interrupted; finished runs are kept in the results store (run the same command to go on)"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="medbench: %(message)s", stream=sys.stderr)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _on_interrupt)
    else:
        previous = None
    try:
        from .workers import check_environment

        check_environment()  # a bad MEDBENCH_WORKERS stops here, not inside a notebook after the data are ready
        cache_before = _cache_dirs(getattr(args, "cache_dir", None))
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(_interrupted_line(), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every error a user can cause becomes one line; the rest is a bug
        if _INTERRUPTED:  # a dead kernel or a closed channel after Ctrl-C: the interrupt, not a bug
            print(_interrupted_line(), file=sys.stderr)
            return EXIT_INTERRUPTED
        if type(e).__name__ == "PapermillExecutionError":
            print(f"medbench: error: the notebook failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                  "medbench: the executed copy with the traceback is kept next to the output as *.failed.ipynb",
                  file=sys.stderr)
            return EXIT_CHECK_FAILED
        known = _classify(e)
        if known is None:
            import traceback

            traceback.print_exc()
            from . import __version__

            print(f"medbench: internal error ({type(e).__name__}) in medbench {__version__}: this is a bug; please "
                  "report it with the command you ran and the traceback above", file=sys.stderr)
            return EXIT_INTERNAL
        code, message = known
        if "cache_before" in locals():
            _remove_new_empty_dirs(getattr(args, "cache_dir", None), cache_before)  # a refusal leaves no trace
        print(f"medbench: error: {message.strip()}", file=sys.stderr)  # a list of fixes may follow on its own lines
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        _INTERRUPTED.clear()


if __name__ == "__main__":
    sys.exit(main())
