"""The shared store beside the registry: unit records, kept search states, and the locks
that make one unit (or trial record) have one trainer across a cluster.

Layout under the registry directory (the folders start with `_`, which no suite id can):

    _units/<kind>/<key[:2]>/<key>.json       one immutable record per unit of work
    _units/search/<key[:2]>/<key>.state.pt   the search's final engine state (selections)
    _locks/<key>.lock                        held while a unit or trial record is computed

A lock lives where the registry is, never in a checkpoint directory: two runs with different
`--checkpoint-dir` (two nodes, two working directories) see the same lock. It names its
holder (host, pid, the pid's start time, a token) and is kept fresh by a heartbeat (the
file's mtime). It is stale when its holder is dead: on the same host, when that process no
longer exists (or the pid was reused); on another host, when the heartbeat is older than
the lease. A stale lock is removed under a short-lived breaker lock, so two recoverers
never both take it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasrepro.jobs import FIDELITY_VERSION, UNIT_KINDS, unit_key

UNIT_SCHEMA = "nasrepro.unit/1"
UNITS_DIR = "_units"
LOCKS_DIR = "_locks"
# A lock whose heartbeat is older than this (seconds) is stale when held on another host.
# Heartbeats come every LEASE_S / 10; NASREPRO_LOCK_LEASE_S changes it (tests use ~1 s).
DEFAULT_LEASE_S = 600.0
# A breaker lock older than this was left by a recoverer that died mid-recovery.
BREAKER_STALE_S = 60.0
UNIT_REQUIRED = ("schema", "kind", "key", "seed", "fidelity_version", "identity", "result")


class StoreError(ValueError):
    """A unit record that cannot be written or read back as what it claims to be."""


class UnitLocked(RuntimeError):
    """Another live process (here or on another host) holds the lock."""


def lease_seconds() -> float:
    value = os.environ.get("NASREPRO_LOCK_LEASE_S")
    return float(value) if value else DEFAULT_LEASE_S


# ------------------------------------------------------------------------- unit records


def unit_path(registry: str | Path, kind: str, key: str) -> Path:
    return Path(registry) / UNITS_DIR / kind / key[:2] / f"{key}.json"


def state_path(registry: str | Path, key: str) -> Path:
    """The final engine state of search unit `key` (model, α, optimizers, RNG, hooks)."""
    return Path(registry) / UNITS_DIR / "search" / key[:2] / f"{key}.state.pt"


def unit_problem(rec: Any, kind: str | None = None, key: str | None = None) -> str | None:
    """Why a parsed file is not a usable unit record (None when it is): fields, kind, and
    the key re-derived from its identity, seed and fidelity version."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if rec.get("schema") != UNIT_SCHEMA:
        return f"schema: expected {UNIT_SCHEMA}, got {rec.get('schema')!r}"
    missing = [k for k in UNIT_REQUIRED if k not in rec]
    if missing:
        return f"incomplete unit record: lacks {', '.join(missing)}"
    if rec["kind"] not in UNIT_KINDS or (kind is not None and rec["kind"] != kind):
        return f"kind: expected {kind or ' or '.join(UNIT_KINDS)}, got {rec['kind']!r}"
    if not isinstance(rec["seed"], int) or not isinstance(rec["identity"], dict):
        return "seed must be an integer and identity an object"
    derived = unit_key(rec["kind"], rec["identity"], rec["seed"], rec["fidelity_version"])
    if derived != rec["key"] or (key is not None and derived != key):
        return f"key {str(rec['key'])[:12]}… does not match its identity ({derived[:12]}…)"
    return None


def read_unit(registry: str | Path, kind: str, key: str) -> dict[str, Any] | None:
    """The unit's record at the current fidelity version, or None. A file that is not such
    a record raises StoreError naming it (one line): a unit is never silently recomputed
    over a damaged record."""
    # the registry's hardened reader: a regular file of bounded size (a FIFO is never
    # waited on), bounded integers, no NaN (nasrepro/registry.py)
    from nasrepro.registry import _bounded_int, _file_bytes, _no_constant

    path = unit_path(registry, kind, key)
    try:
        data = _file_bytes(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable unit record ({exc})") from None
    try:
        rec = json.loads(
            data.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise StoreError(f"{path}: not a readable JSON unit record ({why})") from None
    why = unit_problem(rec, kind, key)
    if why is not None:
        raise StoreError(f"{path}: {why}")
    rec["_path"] = str(path)
    return rec


def unit_record(
    kind: str, identity: dict[str, Any], seed: int, result: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A unit record: what identifies it (kind, identity, seed, fidelity, key) and what it
    produced (`result`), plus `cost`, `provenance`, `mlflow`, `computed_for` given."""
    return {
        "schema": UNIT_SCHEMA,
        "kind": kind,
        "key": unit_key(kind, identity, seed),
        "seed": seed,
        "fidelity_version": FIDELITY_VERSION,
        "identity": identity,
        "result": result,
        **fields,
    }


def write_unit(registry: str | Path, record: dict[str, Any]) -> Path:
    """Write a unit record atomically, once: if the unit is recorded meanwhile (another
    process won), the existing record stands and its path is returned."""
    why = unit_problem(record)
    if why is not None:
        raise StoreError(f"unit record not written: {why}")
    path = unit_path(registry, record["kind"], record["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(
        {k: v for k, v in record.items() if not k.startswith("_")},
        indent=2,
        sort_keys=True,
        allow_nan=False,
    ).encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic, and never replaces a record
    finally:
        os.unlink(tmp)
    return path


def save_state(registry: str | Path, key: str, payload: dict[str, Any]) -> Path:
    """Keep a search's final engine state for later selections on the same search."""
    from nasrepro.checkpoint import save_checkpoint

    path = state_path(registry, key)
    save_checkpoint(path, payload)
    return path


def load_state(registry: str | Path, key: str) -> dict[str, Any] | None:
    from nasrepro.checkpoint import CheckpointError, load_checkpoint

    path = state_path(registry, key)
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, key)
    except CheckpointError:
        return None


# ------------------------------------------------------------------------------ locks


def lock_path(registry: str | Path, key: str) -> Path:
    return Path(registry) / LOCKS_DIR / f"{key}.lock"


def _pid_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc): a pid reused by a new
    process has another one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    now = _pid_start(pid)
    return start is None or now is None or now == start


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    pid_start: str | None
    token: str
    label: str
    since: float
    heartbeat: float  # the lock file's mtime

    def describe(self) -> str:
        age = max(0.0, time.time() - self.heartbeat)
        return f"{self.label or 'a run'} on {self.host} pid {self.pid} (heartbeat {age:.0f}s ago)"


def read_holder(path: Path) -> Holder | None:
    """The lock's holder as written, or None when there is no lock file. A file still
    being written reads as a holder with an unknown pid."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: not a lock file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path}: not a lock file (not a regular file)")
        text = fh.read(4096).decode("utf-8", errors="replace")
        mtime = st.st_mtime
    try:
        info = json.loads(text)
        return Holder(
            str(info["host"]),
            int(info["pid"]),
            info.get("pid_start"),
            str(info["token"]),
            str(info.get("label", "")),
            float(info.get("since", mtime)),
            mtime,
        )
    except (ValueError, KeyError, TypeError):
        return Holder("?", -1, None, "", "", mtime, mtime)


def is_stale(holder: Holder, lease_s: float | None = None) -> bool:
    """Dead holder: on this host, its process is gone (or its pid reused); elsewhere (or
    unreadable), its heartbeat is older than the lease."""
    lease = lease_seconds() if lease_s is None else lease_s
    if holder.host == socket.gethostname() and holder.pid > 0:
        return not _alive(holder.pid, holder.pid_start)
    return time.time() - holder.heartbeat > lease


def live_holder(registry: str | Path, key: str) -> Holder | None:
    """The live holder of the lock on `key`, or None (free, or held by a dead process)."""
    holder = read_holder(lock_path(registry, key))
    if holder is None or is_stale(holder):
        return None
    return holder


class StoreLock:
    """An exclusive lock on one unit (or trial record) in the shared store, held while it is
    computed: `O_EXCL` creation, a heartbeat thread touching the file every lease/10
    seconds, recovery of a dead holder's lock. Raises UnitLocked naming a live holder."""

    def __init__(self, registry: str | Path, key: str, label: str = "") -> None:
        self.registry = Path(registry)
        self.key = key
        self.label = label
        self.path = lock_path(registry, key)
        self.token = uuid.uuid4().hex
        self.lease = lease_seconds()
        self.lost = False  # set by the heartbeat if another process took the lock over
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _create(self) -> bool:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": _pid_start(os.getpid()),
            "token": self.token,
            "label": self.label,
            "since": time.time(),
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _break_stale(self, seen: Holder) -> None:
        """Remove the lock `seen` if it is still that (stale) one, under a breaker lock."""
        breaker = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(breaker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - breaker.stat().st_mtime > BREAKER_STALE_S:
                    breaker.unlink()  # a recoverer died mid-recovery
            return
        os.close(fd)
        try:
            now = read_holder(self.path)
            if now is not None and now.token == seen.token and is_stale(now, self.lease):
                self.path.unlink(missing_ok=True)
        finally:
            breaker.unlink(missing_ok=True)

    def acquire(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self._beat = threading.Thread(target=self._heartbeat, daemon=True)
                self._beat.start()
                return self
            holder = read_holder(self.path)
            if holder is None:
                continue  # released between our attempt and the read
            if not is_stale(holder, self.lease):
                raise UnitLocked(f"{holder.describe()} holds it; lock {self.path}")
            self._break_stale(holder)
        holder = read_holder(self.path)
        who = holder.describe() if holder else "another run"
        raise UnitLocked(f"{who} holds it (being recovered); lock {self.path}")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 10):
            holder = read_holder(self.path)
            if holder is None or holder.token != self.token:
                self.lost = True
                return
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def owned(self) -> bool:
        """Whether this lock is still ours (checked before a record is written)."""
        holder = read_holder(self.path)
        return holder is not None and holder.token == self.token and not self.lost

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
        holder = read_holder(self.path)
        if holder is not None and holder.token == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
