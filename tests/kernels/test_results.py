import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

import medbench_core as mb
from medbench_core import experiments
from medbench_core.results import COLUMNS, ResultsStore


def _cfg(**kw):
    base = dict(section="domain-adaptation", task="syn_txc", init="scratch", arch="test_resnet", seed=0,
                profile="smoke")
    base.update(kw)
    return mb.make_run_config(**base)


def test_hash_ignores_where_and_why_but_not_what():
    h = _cfg().config_hash()
    assert _cfg(section="another-section").config_hash() == h
    assert _cfg(device="cpu").config_hash() == h
    assert _cfg(seed=1).config_hash() != h
    assert _cfg(lr=1e-2).config_hash() != h
    assert _cfg(init="synth_imagenet").config_hash() != h
    with pytest.raises(ValueError, match="unknown protocol fields"):
        _cfg(learning_rate=1e-2)


def test_run_is_stored_once_and_then_read_not_trained(tmp_path, smoke_cache, monkeypatch):
    store = ResultsStore(tmp_path / "res")
    cfg = _cfg()
    rows, cached = mb.run_one(cfg, store, cache_dir=smoke_cache)
    assert not cached and store.has(cfg.config_hash())
    assert list(rows.columns) == COLUMNS
    test_auc = rows[(rows.split == "test") & (rows.metric == "mean_auc")]
    assert len(test_auc) == 1 and 0 <= test_auc.value.iloc[0] <= 1
    assert rows["config_hash"].eq(cfg.config_hash()).all() and rows["synthetic"].all()
    cases = store.cases(cfg.config_hash())
    assert cases["test_probs"].shape == cases["test_labels"].shape == (cfg.n_test, 1)
    # the best fine-tuned weights are kept and load back into the task's model (audited, no head left new)
    from medbench_core.models import read_checkpoint

    state = read_checkpoint(store.checkpoint_path(cfg.config_hash()), arch="test_resnet")
    model = mb.create_model("test_resnet", mb.create_task("syn_txc", "smoke"))
    assert mb.load_backbone(model, state, head_prefixes=("fc.",)).new_head == []
    assert not list((tmp_path / "res").rglob("*.tmp"))

    def no_training(*a, **k):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(experiments, "fit", no_training)
    again, cached = mb.run_one(cfg, store, cache_dir=smoke_cache)
    assert cached
    pd.testing.assert_frame_equal(again, store.rows(cfg.config_hash()))


def test_same_seed_same_numbers(tmp_path, smoke_cache):
    cfg = _cfg(task="syn_pxs")
    a, _ = mb.run_one(cfg, ResultsStore(tmp_path / "a"), cache_dir=smoke_cache)
    b, _ = mb.run_one(cfg, ResultsStore(tmp_path / "b"), cache_dir=smoke_cache)
    pd.testing.assert_series_equal(a["value"], b["value"])
    c, _ = mb.run_one(_cfg(task="syn_pxs", seed=1), ResultsStore(tmp_path / "c"), cache_dir=smoke_cache)
    assert not a["value"].equals(c["value"])


def test_partial_files_never_count_as_a_run(tmp_path):
    store = ResultsStore(tmp_path)
    (tmp_path / "runs" / ".abc.csv.123.tmp").write_text("section,task\nhalf")  # an interrupted write
    (tmp_path / "cases" / "abc.npz").write_bytes(b"")  # cases written, rows never committed
    assert not store.has("abc") and store.hashes() == [] and store.load().empty


def test_killing_a_run_midway_loses_only_that_run(tmp_path, smoke_cache):
    """Kill a process that is writing runs in a loop; every stored run must be complete and readable."""
    script = textwrap.dedent(f"""
        import os
        os.environ["MEDBENCH_PROGRESS"] = "0"
        import medbench_core as mb
        store = mb.ResultsStore({str(tmp_path / "res")!r})
        for seed in range(50):
            cfg = mb.make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", seed, "smoke")
            mb.run_one(cfg, store, cache_dir={str(smoke_cache)!r})
            print("done", seed, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    done = 0
    for line in proc.stdout:
        done += line.startswith("done")
        if done == 2:
            time.sleep(0.15)  # somewhere inside the third run
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    store = ResultsStore(tmp_path / "res")
    hashes = store.hashes()
    assert len(hashes) >= 2
    for h in hashes:
        rows = store.rows(h)
        assert set(rows["split"]) == {"train", "val", "test"} and not rows["value"].isna().any()
        assert store.cases(h) and store.config(h)["config_hash"] == h
    assert len(store.load().drop_duplicates("config_hash")) == len(hashes)


def test_fit_restores_best_epoch_weights(smoke_cache):
    import torch

    from medbench_core.data import BatchLoader, load_task_data
    from medbench_core.engine import evaluate, fit, make_loss

    task = mb.create_task("syn_txc", "smoke")
    data = load_task_data(task, smoke_cache)
    model = mb.create_model("test_resnet", task)
    torch.manual_seed(0)
    tl = BatchLoader(data["train"], 8, train=True, seed=0)
    vl = BatchLoader(data["val"], 64, train=False)
    res = fit(model, tl, vl, task, device=torch.device("cpu"), optimizer="adam", lr=1e-2, weight_decay=0,
              max_epochs=6, patience=2, scheduler="plateau", lr_factor=0.5, lr_patience=1, loss="bce", progress=False)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(min(range(len(losses)), key=losses.__getitem__))
    assert evaluate(model, vl, make_loss("bce"), task, torch.device("cpu"))["loss"] == pytest.approx(min(losses),
                                                                                                     rel=1e-5)
    assert res.epochs_run <= 6 and (res.stopped_early == (res.epochs_run < 6))
