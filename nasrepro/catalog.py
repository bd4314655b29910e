"""Decorator registries: spaces, ops, datasets, methods, selectors, evaluators.

Adding a component is one decorated function or class in its own module; nothing in the
engine changes. `nasrepro list` prints these tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = ("space", "op", "dataset", "method", "selector", "evaluator")
_REGISTRIES: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_DOCS: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}


def _register(kind: str, name: str, doc: str | None = None) -> Callable[[T], T]:
    def deco(obj: T) -> T:
        table = _REGISTRIES[kind]
        if name in table and table[name] is not obj:
            raise ValueError(f"{kind} {name!r} registered twice")
        table[name] = obj
        text = doc or (getattr(obj, "__doc__", None) or "").strip().splitlines()
        _DOCS[kind][name] = text if isinstance(text, str) else (text[0] if text else "")
        return obj

    return deco


def register_space(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("space", name, doc)


def register_op(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("op", name, doc)


def register_dataset(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("dataset", name, doc)


def register_method(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("method", name, doc)


def register_selector(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("selector", name, doc)


def register_evaluator(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("evaluator", name, doc)


def load_builtins() -> None:
    """Import the modules whose decorators fill the registries."""
    import nasrepro.builtins  # noqa: F401


def get(kind: str, name: str) -> Any:
    load_builtins()
    table = _REGISTRIES[kind]
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise KeyError(f"unknown {kind} {name!r} (known: {known})")
    return table[name]


def names(kind: str) -> list[str]:
    load_builtins()
    return sorted(_REGISTRIES[kind])


def describe(kind: str) -> dict[str, str]:
    load_builtins()
    return dict(sorted(_DOCS[kind].items()))
