"""NAS-Bench-201's split index files, shipped in `nasrepro/data/splits/`.

Each file is a dict of named halves, `{"train": ["int", ["0", "5", ...]], ...}`, the format
AutoDL's `load_config` reads (D-X-Y/AutoDL-Projects configs/nas-benchmark/). See
`nasrepro/data/PROVENANCE.md` for their origin and hashes.
"""

from __future__ import annotations

import ast
import functools
import json
from importlib import resources
from typing import Any


def available_splits() -> list[str]:
    folder = resources.files("nasrepro").joinpath("data", "splits")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt"))


def _parse(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # The files are JSON today; a trailing comma or single quotes (hand edits, older
        # copies) still parse as a Python literal.
        return ast.literal_eval(text)


@functools.cache
def _load(name: str) -> dict[str, tuple[int, ...]]:
    path = resources.files("nasrepro").joinpath("data", "splits", name)
    if not path.is_file():
        raise FileNotFoundError(
            f"no split file {name!r} in nasrepro/data/splits "
            f"(available: {', '.join(available_splits())})"
        )
    raw = _parse(path.read_text(encoding="utf-8"))
    out: dict[str, tuple[int, ...]] = {}
    for key, value in raw.items():
        # AutoDL's typed entries are [type, values]; accept a bare list of values too.
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            kind, values = value
            if kind != "int":
                raise ValueError(f"{name}: entry {key!r} has type {kind!r}, expected 'int'")
        else:
            values = value
        out[key] = tuple(int(v) for v in values)
    return out


def load_split(name: str) -> dict[str, list[int]]:
    """The named halves of a split file as lists of ints (parsed once, copied per call)."""
    return {key: list(values) for key, values in _load(name).items()}
