"""A run is claimed once: two processes asking for the same runs on one store train each run once, and a claim
whose owner is gone never blocks anyone."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import medbench_core as mb
from medbench_core.claims import STALE_AFTER, claim_path, claimed, clear_stale
from medbench_core.results import ResultsStore
from medbench_core.sweep import SweepDir

H = "0123456789abcdef"


def write_claim(root, **owner):
    path = claim_path(root, H)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "started": "2026-12-02T00:00:00+00:00", **owner}))
    return path


def test_a_claim_of_a_process_that_is_gone_is_broken(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_claim(tmp_path, pid=dead.pid)
    with claimed(tmp_path, H, poll=0.01) as mine:
        assert mine and json.loads(claim_path(tmp_path, H).read_text())["pid"] == os.getpid()
    assert not claim_path(tmp_path, H).exists()


def test_a_live_claim_is_waited_for_until_its_run_is_stored(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = write_claim(tmp_path, pid=alive.pid)
        stored, set_at = threading.Event(), []

        def store():  # the other process stores its run half a second from now
            set_at.append(time.perf_counter())
            stored.set()

        threading.Timer(0.5, store).start()
        with claimed(tmp_path, H, done=stored.is_set, poll=0.02) as mine:
            assert mine is False  # the other process stored the run: read it, do not train it
            returned_at = time.perf_counter()
        # it waited for the run to be stored (not a timing race: the order of two clock readings)
        assert set_at and returned_at >= set_at[0] and path.exists()  # someone else's claim is left alone
        assert SweepDir(tmp_path).state(H)[0] == "running"  # and a sweep's status counts it as running
    finally:
        alive.kill()


def test_a_claim_whose_heartbeat_stopped_is_broken_whatever_its_host(tmp_path):
    path = write_claim(tmp_path, host="another-node", pid=1)
    assert SweepDir(tmp_path).state(H)[0] == "running"  # another host's fresh claim is trusted
    old = time.time() - STALE_AFTER - 10
    os.utime(path, (old, old))
    assert SweepDir(tmp_path).state(H)[0] == "pending"
    assert clear_stale(tmp_path) == 1 and not path.exists()


def test_a_half_written_claim_does_not_block_forever(tmp_path):
    path = claim_path(tmp_path, H)
    path.parent.mkdir(parents=True)
    path.write_text("")  # a process killed between creating and writing its claim
    old = time.time() - 60
    os.utime(path, (old, old))
    with claimed(tmp_path, H, poll=0.01) as mine:
        assert mine


WORKER = """
import json, sys
import torch
torch.set_num_threads(1)
import medbench_core as mb
from medbench_core.results import ResultsStore
store, cache, order = ResultsStore(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
trained = []
for seed in order:
    cfg = mb.make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", seed, "smoke")
    rows, cached = mb.run_one(cfg, store, cache_dir=cache, progress=False)
    if not cached:
        trained.append(seed)
print(json.dumps(trained))
"""


@pytest.mark.slow
def test_two_processes_on_one_store_train_each_run_once(tmp_path, smoke_cache):
    store = ResultsStore(tmp_path / "r")
    # the generated data in the cache first, as `run` and `sweep` prepare it before any run starts
    mb.run_one(mb.make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 9, "smoke"),
               ResultsStore(tmp_path / "prep"), cache_dir=smoke_cache, progress=False)
    seeds = [0, 1, 2, 3]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(store.root), str(smoke_cache), json.dumps(order)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for order in (seeds, seeds[::-1])]  # one from each end: they meet in the middle
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    trained = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sorted(trained[0] + trained[1]) == seeds, trained  # each run trained by exactly one of them
    assert len(store.hashes()) == len(seeds) and not list((store.root / "claims").glob("*.json"))
