"""Results registry: one immutable JSON record per finished trial.

Records are written atomically (temporary file in the same directory, fsync, then a
hard link to the final name, which fails rather than overwrite), so concurrent writers
never lose or corrupt a record and a crash leaves no partial file under a record name.
A re-run adds a record; nothing is ever rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = "nasrepro.record/1"
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


def load_records(root: str | Path, suite: str | None = None) -> list[dict[str, Any]]:
    """All records (of one suite), oldest first; unreadable files raise RegistryError."""
    base = Path(root) / suite if suite else Path(root)
    if not base.exists():
        return []
    records = []
    for path in sorted(base.rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{path}: not a readable JSON record ({exc})") from None
        if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
            raise RegistryError(f"{path}: schema: expected {SCHEMA!r}")
        rec["_path"] = str(path)
        records.append(rec)
    records.sort(key=lambda r: (r["provenance"].get("created_at", ""), r["_path"]))
    return records


def recorded_hashes(root: str | Path, suite: str) -> set[tuple[str, str]]:
    """(suite_hash, config_hash) of every record of `suite`: the trials already done."""
    return {(r.get("suite_hash", ""), r["config_hash"]) for r in load_records(root, suite)}
