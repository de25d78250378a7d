"""A real single-node Slurm cluster for the tests: munge, slurmctld and slurmd from Debian's packages, on loopback,
with its own key, ports, spool and state in a temporary folder. ``make test`` installs the packages where missing
(Debian, as root); the fixture starts the daemons and always stops the ones it started."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(b: str) -> str:
    return shutil.which(b) or f"/usr/sbin/{b}"


@contextmanager
def slurm_cluster(folder: Path, cpus: int = 2):
    """Start munged, slurmctld and slurmd; yield the environment (``SLURM_CONF``) to use them; stop them."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(exist_ok=True)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = folder / "munge" / "munge.sock"
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(f"""ClusterName=medbench-test
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=2
MinJobAge=5
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    env = dict(os.environ, SLURM_CONF=str(conf))
    pids = []
    try:
        m = folder / "munge"
        subprocess.run([_which("munged"), "--force", f"--key-file={key}", f"--socket={sock}",
                        f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}",
                        f"--seed-file={m / 'seed'}"], check=True, env=env)
        pids.append(folder / "munge" / "munged.pid")
        subprocess.run([_which("slurmctld"), "-f", str(conf)], check=True, env=env)
        pids.append(folder / "slurmctld.pid")
        subprocess.run([_which("slurmd"), "-f", str(conf)], check=True, env=env)
        pids.append(folder / "slurmd.pid")
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
            if out.stdout.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the test Slurm node did not become idle: {out.stdout} {out.stderr}\n"
                               + (folder / "slurmctld.log").read_text()[-2000:])
        yield env
    finally:
        subprocess.run(["scancel", "--full", "-u", os.environ.get("USER", "root")], env=env, capture_output=True)
        for pid_file in reversed(pids):
            _stop(pid_file)


def _stop(pid_file: Path, timeout: float = 10) -> None:
    for _ in range(50):  # daemons write their pid file shortly after forking
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.1)
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
