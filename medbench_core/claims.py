"""Claims: at most one process trains a run, whichever command (``run``, ``sweep``, ``book``) asked for it.

Before training a run that is not in the store, a process claims it: ``<store>/claims/<hash>.json``, created
exclusively (``O_CREAT | O_EXCL``), names the owner (host, pid, Slurm job, start) and is refreshed by a heartbeat
while the run trains. A second process that asks for the same run finds the claim and waits; when the claim goes
it reads the winner's rows from the store (or, if the winner failed, claims and trains the run itself).

A claim is stale, and is broken by the next process that asks, only when its owner is provably gone: its Slurm
job has ended; or, on this host, its process is gone (or its pid now belongs to a process started later: a reused
pid); or, for an owner on another host without a Slurm job, whose process cannot be asked, when its heartbeat is older
than ``STALE_AFTER`` seconds. An owner that is merely paused (SIGSTOP, a suspended laptop, a swapped job) keeps its
claim however long the pause. Should its claim have been broken all the same (the other-host rule), the owner finds
out before storing (``still_held``) and writes nothing. Breaking a stale claim is itself guarded by an exclusive file,
so two waiters never both take over.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("medbench")

HEARTBEAT = 20.0  # seconds between refreshes of a held claim
STALE_AFTER = 300.0  # a claim not refreshed for this long is stale, whoever holds it
_ENDED = ("", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
          "DEADLINE")


def owner() -> dict:
    """Who this process is, as a claim or a running marker records it."""
    job = (f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
           if "SLURM_ARRAY_JOB_ID" in os.environ and "SLURM_ARRAY_TASK_ID" in os.environ
           else os.environ.get("SLURM_JOB_ID"))
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": job,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pid_start": _pid_start(os.getpid())}


def _pid_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, ``/proc/PID/stat``), or None where /proc has no such
    file: with the pid it names one process, so a pid reused by a later process is told apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_alive(marker: dict) -> bool:
    """Is the process or Slurm job that ``marker`` names still alive? (An owner on another host, with no job id,
    is trusted; claims add the heartbeat age on top of this, see ``is_stale``.)"""
    job = marker.get("slurm_job_id")
    if job:
        try:
            out = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%T"], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return True  # cannot tell: do not start a second copy
        return out.returncode == 0 and out.stdout.strip() not in _ENDED
    if marker.get("host") == socket.gethostname():
        try:
            os.kill(int(marker["pid"]), 0)
        except (ProcessLookupError, ValueError, KeyError, TypeError):
            return False
        except PermissionError:
            pass
        started = marker.get("pid_start")
        now = _pid_start(int(marker["pid"]))
        return started is None or now is None or started == now  # another start time: the pid was reused
    return True


def provably_alive(marker: dict) -> bool | None:
    """True or False where the owner can be asked (its Slurm job, or its process on this host); None for an owner
    on another host without a Slurm job."""
    if marker.get("slurm_job_id") or marker.get("host") == socket.gethostname():
        return owner_alive(marker)
    return None


def claim_path(store_root: str | os.PathLike, h: str) -> Path:
    return Path(store_root) / "claims" / f"{h}.json"


def read_claim(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def is_stale(path: Path, claim: dict | None) -> bool:
    """True when the claim at ``path`` may be broken: its owner is gone, or its heartbeat stopped."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not stale, simply gone
    if claim is None:  # unreadable: half-written by a process killed while creating it, or damaged
        return age > 5.0
    alive = provably_alive(claim)
    if alive is not None:  # the owner can be asked: a paused process is alive, however old its heartbeat
        return not alive
    return age > STALE_AFTER


def _try_create(path: Path, me: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
    return True


def _break_stale(path: Path, seen: dict | None) -> None:
    """Remove the stale claim ``seen`` at ``path``, unless another waiter is doing so or it changed meanwhile."""
    guard = path.with_name(path.name + ".break")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - guard.stat().st_mtime > 60:  # a breaker killed midway
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return
    os.close(fd)
    try:
        if read_claim(path) == seen and is_stale(path, seen):
            path.unlink(missing_ok=True)
            log.info("broke the stale claim on run %s (%s)", path.stem, _who(seen))
    finally:
        guard.unlink(missing_ok=True)


def _who(c: dict | None) -> str:
    if not c:
        return "an unreadable claim"
    return f"Slurm job {c['slurm_job_id']}" if c.get("slurm_job_id") else f"pid {c.get('pid')} on {c.get('host')}"


@contextmanager
def claimed(store_root: str | os.PathLike, h: str, *, done=lambda: False, poll: float = 1.0, what: str = ""):
    """Hold the claim on run ``h`` of the store at ``store_root`` for the ``with`` block; while another live
    process holds it, wait. Yields True when this process holds the claim, or False when ``done()`` became true
    while waiting (the winner stored the run: read it, do not train it). The claim is released on leaving the block,
    also when it raises.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> with claimed(root, "0123456789abcdef") as mine:
        ...     mine, claim_path(root, "0123456789abcdef").is_file()
        (True, True)
        >>> claim_path(root, "0123456789abcdef").is_file()
        False
    """
    path = claim_path(store_root, h)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = owner()
    told = False
    while not _try_create(path, me):
        if done():
            yield False
            return
        seen = read_claim(path)
        if seen is not None and seen.get("host") == me["host"] and seen.get("pid") == me["pid"]:
            raise RuntimeError(f"run {h} is claimed twice by this process")  # a bug: run_one re-entered
        if is_stale(path, seen):
            _break_stale(path, seen)
            continue
        if not told:
            log.info("run %s%s is being trained by %s; waiting for its result", h, f" ({what})" if what else "",
                     _who(seen))
            told = True
        time.sleep(poll)
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    t = threading.Thread(target=beat, name=f"claim-{h}", daemon=True)
    t.start()
    try:
        yield True
    finally:
        stop.set()
        t.join(timeout=5)
        if read_claim(path) == me:
            path.unlink(missing_ok=True)


def still_held(store_root: str | os.PathLike, h: str) -> bool:
    """Does this process still hold the claim on run ``h``? (False when another process broke it while this one was
    paused: it must then write nothing.)"""
    c = read_claim(claim_path(store_root, h))
    return bool(c) and c.get("host") == socket.gethostname() and c.get("pid") == os.getpid()


def clear_stale(store_root: str | os.PathLike) -> int:
    """Remove the stale claims of a store (a killed run's); returns how many. Live claims are left alone."""
    n = 0
    for path in sorted((Path(store_root) / "claims").glob("*.json")):
        seen = read_claim(path)
        if is_stale(path, seen):
            _break_stale(path, seen)
            n += not path.exists()
    return n
