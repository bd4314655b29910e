"""Committed records checked against records the code computes now (CI).

The committed pages come from the committed records (reports/records/). A digest only proves
that a record was not edited after it was written; it cannot prove that the code computes
those numbers. So CI re-derives every committed record from scratch (the main job's
`nasrepro run ... --artifacts` writes fresh records to registry/) and
`nasrepro report --verify-against registry` fails when a committed record has no fresh record
of the same trial, or one whose measured content (metrics, genotype, arch index) differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasrepro.registry import scan_registry
from nasrepro.report.records import MEASURED, measured_content


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def _difference(committed: dict[str, Any], fresh: dict[str, Any]) -> str:
    a = _flat("", {k: committed.get(k) for k in MEASURED})
    b = _flat("", {k: fresh.get(k) for k in MEASURED})
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = "; ".join(
        f"{k}: committed {json.dumps(a.get(k))[:40]}, computed {json.dumps(b.get(k))[:40]}"
        for k in keys[:3]
    )
    more = f" (and {len(keys) - 3} more)" if len(keys) > 3 else ""
    return shown + more


def verify_against(committed: str | Path, fresh: str | Path) -> list[str]:
    """One line per committed record that the fresh registry does not re-derive (empty: every
    committed record matches a freshly computed record of its trial); files under
    `committed` that are not verified records are listed too."""
    ours = scan_registry(committed, missing_ok=False)
    theirs = scan_registry(fresh, missing_ok=False)
    problems = [f"{line} (committed)" for line in ours.problems]
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for rec in theirs.records:
        by_trial.setdefault(rec["config_hash"], []).append(rec)
    for rec in ours.records:
        again = by_trial.get(rec["config_hash"], [])
        if not again:
            problems.append(
                f"{rec['_path']}: no record of trial {rec['config_hash'][:12]} under {fresh}: "
                "not re-derived (run `nasrepro run suites/*.yaml --budget full --artifacts`)"
            )
        elif measured_content(rec) not in {measured_content(r) for r in again}:
            problems.append(
                f"{rec['_path']}: differs from what the code computes "
                f"({Path(again[0]['_path']).name}): {_difference(rec, again[0])}"
            )
    return problems
