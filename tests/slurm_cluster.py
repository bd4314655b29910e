"""A real single-node Slurm for the tests (a test fixture): munged, slurmctld and slurmd
from the system packages (Debian: `apt-get install slurm-wlm munge`), started in a temporary
folder with their own key, ports, state and logs, and stopped afterwards (by the pids they
wrote, nothing else). `start` raises Unavailable with the reason where they cannot start
(not installed, daemons refusing to run here, the node not coming up)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


class Unavailable(RuntimeError):
    """Why a test Slurm cannot run on this machine."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "no log"


@dataclass
class SlurmCluster:
    root: Path
    env: dict[str, str]

    def pids(self) -> list[int]:
        out = []
        for name in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            try:
                out.append(int((self.root / name).read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                continue
        return out

    def stop(self) -> None:
        """Cancel every job and wait for the queue to drain (so slurmd tears the job steps
        down), stop the daemons, then kill whatever this cluster still runs: processes that
        carry its SLURM_CONF (job steps, batch scripts, tasks; never this process)."""
        if self.env:
            try:
                self.run("scancel", "--user", getpass.getuser())
                deadline = time.monotonic() + 20
                while self.run("squeue", "-h", "-o", "%i").strip():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                time.sleep(1)  # slurmd finishes tearing the steps down
            except (OSError, subprocess.SubprocessError):
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 15
        for pid in self.pids():
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        marker = f"SLURM_CONF={self.env.get('SLURM_CONF', '')}".encode()
        if marker == b"SLURM_CONF=":
            return
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def run(self, *cmd: str) -> str:
        return subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, timeout=60, check=True
        ).stdout


def start(root: Path, cpus: int = 2) -> SlurmCluster:
    """munged + slurmctld + slurmd on this host, configured under `root`."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    if missing:
        raise Unavailable(
            f"{', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge)"
        )
    which = {d: shutil.which(d) or f"/usr/sbin/{d}" for d in DAEMONS}
    user = getpass.getuser()
    (root / "munge").mkdir(parents=True)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock = root / "munge" / "munge.sock"
    munge = [
        which["munged"], "--force", f"--socket={sock}", f"--key-file={key}",
        f"--pid-file={root / 'munge' / 'munged.pid'}",
        f"--log-file={root / 'munge' / 'munged.log'}", f"--seed-file={root / 'munge' / 'seed'}",
    ]  # fmt: skip
    cluster = SlurmCluster(root, {})
    if subprocess.run(munge, capture_output=True, text=True, timeout=30).returncode != 0:
        raise Unavailable(f"munged did not start: {_tail(root / 'munge' / 'munged.log')}")
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=nasrepro-test
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobRequeue=1
InactiveLimit=0
MinJobAge=600
KillWait=5
Waittime=0
NodeName={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes={socket.gethostname()} Default=YES MaxTime=INFINITE State=UP
"""
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster.env = env
    try:
        for daemon in ("slurmctld", "slurmd"):
            done = subprocess.run(
                [which[daemon], "-f", str(conf)], env=env, capture_output=True, text=True,
                timeout=30,
            )  # fmt: skip
            if done.returncode != 0:
                log = root / "log" / f"{daemon}.log"
                raise Unavailable(f"{daemon} did not start: {done.stderr.strip() or _tail(log)}")
            time.sleep(0.5)
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(
                [shutil.which("sinfo") or "sinfo", "-h", "-o", "%t"], env=env,
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()  # fmt: skip
            if state in ("idle", "mix", "alloc"):
                return cluster
            time.sleep(0.5)
        raise Unavailable(
            f"the node did not come up (state {state!r}): {_tail(root / 'log' / 'slurmd.log')}"
        )
    except BaseException:
        cluster.stop()
        raise
