"""Results registry: one immutable JSON record per finished trial.

Records are written atomically (temporary file in the same directory, fsync, then a
hard link to the final name, which fails rather than overwrite), so concurrent writers
never lose or corrupt a record and a crash leaves no partial file under a record name.
A re-run adds a record; nothing is ever rewritten.

A record is found by what it computed (`config_hash`: configuration, seed and fidelity
version, nasrepro/jobs.py), whichever suite's folder it was written under: the folder only
says which suite asked first.

Evidence is checked on every read: a record carries the sha256 `digest` of its content, its
`config_hash` must re-derive from its own configuration, and its metrics must be finite JSON
numbers. A file that fails is named on one line and skipped, never fatal: hostile files
(a FIFO, a link to /dev/zero, a 5,000-digit integer, JSON nested 100,000 deep) included.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nasrepro.filemode import publish_mode
from nasrepro.jobs import FIDELITY_VERSION, group_key, trial_key

SCHEMA = "nasrepro.record/3"
# /3: every record carries `digest`, the sha256 of its canonical JSON without the digest,
# checked on every read. /1 (before content-addressed trials) and /2 (before digests) are
# still parsed, so the report can name them, but set aside: nothing vouches for their content.
READABLE = ("nasrepro.record/1", "nasrepro.record/2", SCHEMA)
REQUIRED = (
    "schema",
    "suite",
    "experiment",
    "budget",
    "seed",
    "config",
    "config_hash",
    "metrics",
    "genotype",
    "provenance",
)
# Metrics are {dataset: {metric: number}}; these few are flat {metric: number or null}.
FLAT_METRICS = ("search_cost_gpu_days",)
# Hostile files (issue #23): a record file is a regular file of at most this size, its
# integers have at most _MAX_DIGITS digits and its nesting is bounded by the parser.
MAX_RECORD_BYTES = 64 * 2**20
_MAX_DIGITS = 30
_MAX_SEED = 2**31

class RegistryError(RuntimeError):
    """A record that cannot be written, or a file in the registry that is not a record."""


def default_registry() -> Path:
    return Path(os.environ.get("NASREPRO_REGISTRY", "registry"))


def record_name(record: dict[str, Any]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"seed{record['seed']}-{record['config_hash'][:12]}-{stamp}-{uuid.uuid4().hex[:8]}.json"


def record_digest(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON (sorted keys, no whitespace), without its
    `digest` and the reader's `_path`: what `write_record` stores and every read checks."""
    body = {k: v for k, v in record.items() if k not in ("digest", "_path")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def identity_problem(record: dict[str, Any]) -> str | None:
    """Why the record's identity does not follow from its own configuration, seed and
    fidelity version (None when `config_hash` and `group_hash` re-derive)."""
    config, seed, version = record.get("config"), record.get("seed"), fidelity_of(record)
    if not isinstance(config, dict) or not config:
        return "identity: no configuration to re-derive config_hash from"
    if record.get("config_hash") != trial_key(config, seed, version):  # type: ignore[arg-type]
        return "identity: config_hash is not the hash of the record's config, seed and version"
    group = record.get("group_hash")
    if group is not None and group != group_key(config, version):
        return "identity: group_hash is not the hash of the record's config and version"
    return None


def write_record(root: str | Path, record: dict[str, Any]) -> Path:
    """Write `record` (with its digest added) under root/suite/experiment/budget/ and return
    its path. A record that would not pass a read is refused before anything is written."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise RegistryError(f"record lacks fields {missing}")
    if record["schema"] != SCHEMA:
        raise RegistryError(f"record schema {record['schema']!r} is not {SCHEMA!r}")
    record = {k: v for k, v in record.items() if k not in ("digest", "_path")}
    why = _problem(record) or identity_problem(record)
    if why is not None:
        raise RegistryError(f"record of {record['suite']}/{record['experiment']}: {why}")
    record["digest"] = record_digest(record)
    folder = Path(root) / record["suite"] / record["experiment"] / record["budget"]
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, indent=2, sort_keys=True, allow_nan=False).encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        publish_mode(fd)  # readable by the group sharing the registry (umask), not 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        while True:
            final = folder / record_name(record)
            try:
                os.link(tmp, final)  # atomic, and refuses to replace an existing record
                break
            except FileExistsError:
                continue
    finally:
        os.unlink(tmp)
    return final


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def metrics_problem(metrics: Any) -> str | None:
    """Why `metrics` is not {dataset: {metric: finite number}} (plus the flat FLAT_METRICS):
    strings, booleans, lists and non-finite numbers are refused, never coerced."""
    if not isinstance(metrics, dict):
        return "metrics: expected an object"
    for name, value in metrics.items():
        if name in FLAT_METRICS:
            if value is not None and not _is_number(value):  # null: not measured (CPU)
                return f"metrics.{name}: expected a finite number or null, got {_shown(value)}"
            continue
        if not isinstance(value, dict):
            return f"metrics.{name}: expected an object of metric: number, got {_shown(value)}"
        for metric, v in value.items():
            if not _is_number(v):
                return f"metrics.{name}.{metric}: expected a finite number, got {_shown(v)}"
    return None


def _shown(value: Any) -> str:
    text = type(value).__name__ if isinstance(value, list | dict) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(rec: Any) -> str | None:
    """Why a parsed file is not a usable record, or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if rec.get("schema") not in READABLE:
        return f"schema: expected one of {', '.join(READABLE)}, got {_shown(rec.get('schema'))}"
    missing = [k for k in REQUIRED if k not in rec and not (k == "config" and _legacy(rec))]
    if missing:
        return f"incomplete record: lacks {', '.join(missing)}"
    for key in ("suite", "experiment", "budget"):
        if not isinstance(rec[key], str) or not rec[key] or "/" in rec[key]:
            return f"{key}: expected a name, got {_shown(rec[key])}"
    seed = rec["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < _MAX_SEED:
        return f"seed: expected an integer in [0, 2^31), got {_shown(seed)}"
    if not isinstance(rec["config_hash"], str) or not isinstance(rec["provenance"], dict):
        return "config_hash must be a string and provenance an object"
    if not isinstance(rec["provenance"].get("created_at", ""), str):
        return "provenance.created_at: expected a string"
    return metrics_problem(rec["metrics"])


def _legacy(rec: dict[str, Any]) -> bool:
    return rec.get("schema") != SCHEMA


def _integrity_problem(rec: dict[str, Any]) -> str | None:
    """Why a well-formed record cannot be trusted: no digest (written before /3), a digest
    that does not match (edited after writing), or an identity that does not re-derive."""
    if _legacy(rec):
        return (
            f"schema {rec['schema']}: written before record digests, unverified "
            "(re-run the trial to record it again)"
        )
    digest = rec.get("digest")
    if not isinstance(digest, str):
        return "no digest: unverified"
    if digest != record_digest(rec):
        return "digest mismatch: the record was changed after it was written"
    return identity_problem(rec)


@dataclass
class RegistryScan:
    """Every verified record (oldest first); one line per file that is not one; and the
    well-formed records set aside with the reason (the report shows those on the page of
    the suite that wrote them)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def _record_files(base: Path) -> list[Path]:
    # `_units/` and `_locks/` beside the suites' folders are the shared store
    # (nasrepro/store.py): unit records, not trial records; no suite id starts with `_`.
    return [
        p
        for p in sorted(base.rglob("*.json"))
        if not p.name.startswith(".tmp-") and not p.relative_to(base).parts[0].startswith("_")
    ]


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, refusing anything but a regular file of bounded size: a FIFO is
    never waited on (non-blocking open), a link to /dev/zero never read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symbolic link, not a record file") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{st.st_size} bytes, more than a record's {MAX_RECORD_BYTES}")
        data = fh.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"more than a record's {MAX_RECORD_BYTES} bytes")
    return data


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None, bool]:
    """(record, problem, well_formed): a verified record, or why not; well_formed says the
    file parsed into a record whose suite/experiment/budget/seed can be shown."""
    try:
        text = _file_bytes(path).decode("utf-8")
        rec = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            reason = "nested too deeply"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"{path}: not a readable JSON record ({reason[:160]})", False
    why = _problem(rec)
    if why is not None:
        return None, f"{path}: {why}", False
    rec["_path"] = str(path)
    why = _integrity_problem(rec)
    if why is not None:
        return rec, f"{path}: {why}", True
    return rec, None, True


def _oldest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # For a stable listing only: no verdict depends on this order (records.py resolves
    # several records of one trial by content, never by time).
    return sorted(records, key=lambda r: (str(r["provenance"].get("created_at", "")), r["_path"]))


def scan_registry(
    root: str | Path, suite: str | None = None, *, missing_ok: bool = True
) -> RegistryScan:
    """Read the registry (or one suite's folder) without stopping at a bad file: a corrupt,
    hostile or incomplete file becomes one line in `problems` (callers print it and go on);
    a well-formed record that fails its digest or identity check is also kept in `rejected`.
    A registry directory that does not exist is an empty registry only with `missing_ok`;
    otherwise RegistryError (a typo'd --registry must not read as "nothing run")."""
    root = Path(root)
    if not root.is_dir():
        if missing_ok and not root.exists():
            return RegistryScan()
        what = "is not a directory" if root.exists() else "does not exist"
        raise RegistryError(f"registry directory {root} {what}")
    base = root / suite if suite else root
    scan = RegistryScan()
    if not base.exists():
        return scan
    for path in _record_files(base):
        rec, problem, well_formed = _read(path)
        if problem is not None:
            scan.problems.append(problem)
            if well_formed and rec is not None:
                scan.rejected.append((rec, problem.removeprefix(f"{path}: ")))
        elif rec is not None:
            scan.records.append(rec)
    scan.records = _oldest_first(scan.records)
    return scan


class _Unreported:
    """The problem lines not yet shown by this command (then marked shown), so a bad file
    is named on one line even when a command reads the registry twice."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def __call__(self, problems: list[str]) -> list[str]:
        fresh = [p for p in dict.fromkeys(problems) if p not in self.shown]
        self.shown.update(fresh)
        return fresh

    def reset(self) -> None:
        self.shown.clear()


unreported = _Unreported()


def load_records(root: str | Path, suite: str | None = None) -> list[dict[str, Any]]:
    """All verified records (of one suite folder), oldest first; the first bad file raises a
    one-line RegistryError naming it (scan_registry reports them all and skips them)."""
    scan = scan_registry(root, suite)
    if scan.problems:
        raise RegistryError(scan.problems[0])
    return scan.records


def find_trial(root: str | Path, config_hash: str) -> list[dict[str, Any]]:
    """Verified current-fidelity records of one trial, from any suite's folder. Record file
    names carry the hash's first 12 digits, so only those files are parsed."""
    base = Path(root)
    if not base.exists():
        return []
    found = []
    for path in sorted(base.rglob(f"*-{config_hash[:12]}-*.json")):
        if path.relative_to(base).parts[0].startswith("_"):
            continue  # the shared store (nasrepro/store.py)
        rec, problem, _ = _read(path)
        if problem is None and rec is not None and rec["config_hash"] == config_hash:
            found.append(rec)
    return _oldest_first(found)


def fidelity_of(record: dict[str, Any]) -> int:
    """The record's fidelity version; records written before versioning are version 0."""
    value = record.get("fidelity_version", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def record_group(record: dict[str, Any]) -> str | None:
    """The group identity recomputed from the record's own configuration and fidelity
    version (None for a record without a configuration)."""
    config = record.get("config")
    if not isinstance(config, dict) or not config:
        return None
    return group_key(config, fidelity_of(record))


def current_trials(records: list[dict[str, Any]]) -> set[str]:
    """config_hash of every record of the current fidelity version: the trials done."""
    return {r["config_hash"] for r in records if fidelity_of(r) == FIDELITY_VERSION}


class RecordIndex:
    """Verified records looked up by group identity and by the (suite, experiment, budget)
    that wrote them, built once per report or run; `rejected` holds the well-formed records
    set aside by the integrity checks, with the reason."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        rejected: list[tuple[dict[str, Any], str]] | None = None,
    ) -> None:
        self.records = records
        self.rejected = list(rejected or [])
        self.by_group: dict[str, list[dict[str, Any]]] = {}
        self.by_label: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for rec in records:  # oldest first, so every list is too
            group = record_group(rec)
            if group is not None:
                self.by_group.setdefault(group, []).append(rec)
            label = (str(rec["suite"]), str(rec["experiment"]), str(rec["budget"]))
            self.by_label.setdefault(label, []).append(rec)

    @classmethod
    def load(cls, root: str | Path, *, missing_ok: bool = True) -> tuple[RecordIndex, list[str]]:
        """The index of every verified record, and one line per file skipped."""
        scan = scan_registry(root, missing_ok=missing_ok)
        return cls(scan.records, scan.rejected), scan.problems
