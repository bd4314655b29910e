"""Results registry: one immutable JSON record per finished trial.

Records are written atomically (temporary file in the same directory, fsync, then a
hard link to the final name, which fails rather than overwrite), so concurrent writers
never lose or corrupt a record and a crash leaves no partial file under a record name.
A re-run adds a record; nothing is ever rewritten.

A record is found by what it computed (`config_hash`: configuration, seed and fidelity
version, nasrepro/jobs.py), whichever suite's folder it was written under: the folder only
says which suite asked first.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nasrepro.filemode import publish_mode
from nasrepro.jobs import FIDELITY_VERSION, group_key

SCHEMA = "nasrepro.record/2"
# /1: before content-addressed trials (config_hash without the fidelity version, no cost);
# still read, and set aside by the report as fidelity version 0.
READABLE = ("nasrepro.record/1", SCHEMA)
REQUIRED = (
    "schema",
    "suite",
    "experiment",
    "budget",
    "seed",
    "config_hash",
    "metrics",
    "genotype",
    "provenance",
)


class RegistryError(RuntimeError):
    """A record that cannot be written, or a file in the registry that is not a record."""


def default_registry() -> Path:
    return Path(os.environ.get("NASREPRO_REGISTRY", "registry"))


def record_name(record: dict[str, Any]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"seed{record['seed']}-{record['config_hash'][:12]}-{stamp}-{uuid.uuid4().hex[:8]}.json"


def write_record(root: str | Path, record: dict[str, Any]) -> Path:
    """Write `record` under root/suite/experiment/budget/ and return its path."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise RegistryError(f"record lacks fields {missing}")
    if record["schema"] != SCHEMA:
        raise RegistryError(f"record schema {record['schema']!r} is not {SCHEMA!r}")
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


def _problem(rec: Any) -> str | None:
    """Why a parsed file is not a usable record, or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if rec.get("schema") not in READABLE:
        return f"schema: expected one of {', '.join(READABLE)}, got {rec.get('schema')!r}"
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return f"incomplete record: lacks {', '.join(missing)}"
    if not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool):
        return f"seed: expected an integer, got {rec['seed']!r}"
    if not isinstance(rec["config_hash"], str) or not isinstance(rec["provenance"], dict):
        return "config_hash must be a string and provenance an object"
    if not isinstance(rec["metrics"], dict):
        return "metrics must be an object"
    return None


@dataclass
class RegistryScan:
    """Every readable record (oldest first) and one line per file that is not one."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _record_files(base: Path) -> list[Path]:
    return [p for p in sorted(base.rglob("*.json")) if not p.name.startswith(".tmp-")]


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"{path}: not a readable JSON record ({reason})"
    why = _problem(rec)
    if why is not None:
        return None, f"{path}: {why}"
    rec["_path"] = str(path)
    return rec, None


def _oldest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (str(r["provenance"].get("created_at", "")), r["_path"]))


def scan_registry(root: str | Path, suite: str | None = None) -> RegistryScan:
    """Read the registry (or one suite's folder) without stopping at a bad file: a corrupt
    or incomplete file becomes one line in `problems` (callers print it and go on)."""
    base = Path(root) / suite if suite else Path(root)
    scan = RegistryScan()
    if not base.exists():
        return scan
    for path in _record_files(base):
        rec, problem = _read(path)
        if problem is not None:
            scan.problems.append(problem)
        else:
            assert rec is not None
            scan.records.append(rec)
    scan.records = _oldest_first(scan.records)
    return scan


def load_records(root: str | Path, suite: str | None = None) -> list[dict[str, Any]]:
    """All records (of one suite folder), oldest first; the first bad file raises a one-line
    RegistryError naming it (scan_registry reports them all and skips them)."""
    scan = scan_registry(root, suite)
    if scan.problems:
        raise RegistryError(scan.problems[0])
    return scan.records


def find_trial(root: str | Path, config_hash: str) -> list[dict[str, Any]]:
    """Current-fidelity records of one trial, from any suite's folder. Record file names
    carry the hash's first 12 digits, so only those files are parsed."""
    base = Path(root)
    if not base.exists():
        return []
    found = []
    for path in sorted(base.rglob(f"*-{config_hash[:12]}-*.json")):
        rec, _ = _read(path)
        if rec is not None and rec["config_hash"] == config_hash:
            found.append(rec)
    return _oldest_first(found)


def fidelity_of(record: dict[str, Any]) -> int:
    """The record's fidelity version; records written before versioning are version 0."""
    value = record.get("fidelity_version", 0)
    return value if isinstance(value, int) else 0


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
    """Records looked up by group identity and by the (suite, experiment, budget) that
    wrote them, built once per report or run."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.by_group: dict[str, list[dict[str, Any]]] = {}
        self.by_label: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for rec in records:  # oldest first, so every list is too
            group = record_group(rec)
            if group is not None:
                self.by_group.setdefault(group, []).append(rec)
            label = (str(rec["suite"]), str(rec["experiment"]), str(rec["budget"]))
            self.by_label.setdefault(label, []).append(rec)

    @classmethod
    def load(cls, root: str | Path) -> tuple[RecordIndex, list[str]]:
        """The index of every readable record, and one line per file skipped."""
        scan = scan_registry(root)
        return cls(scan.records), scan.problems
