"""Decorator registries: spaces, ops, datasets, methods, selectors, evaluators.

Adding a component is one decorated function or class in its own module; nothing in the
engine changes. `nasrepro list` prints these tables.

Each component also declares the arguments it takes (`args={name: Int(1), ...}`): `validate`
and `run` check a suite's `space_args`, `method_args`, `selector_args` and `evaluator_args`
against them before anything runs, so a typo or a wrong type fails in one line instead of
after a search. An evaluator declares the evaluation datasets it serves (`datasets=`), and
may add a `check(args, eval_datasets)` for what single arguments cannot express.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = ("space", "op", "dataset", "method", "selector", "evaluator")
_REGISTRIES: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_DOCS: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}


# ------------------------------------------------------------------- argument declarations


@dataclass(frozen=True)
class Arg:
    """One declared argument: its type, range or choices; strict (no coercion: `true` is
    not 1, "5" is not 5; an integer is accepted where a number is expected)."""

    kind: str  # int | float | bool | str | choice | subset | mapping | list | any
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    required: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        if value is None:
            return None if self.nullable else f"must not be null ({self.describe()})"
        kind = self.kind
        if kind == "any":
            return None
        if kind == "choice":
            if isinstance(value, bool) or value not in self.choices:
                return f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
            return None
        if kind == "subset":
            if not isinstance(value, list | tuple):
                return f"must be {self.describe()}, got {_shown(value)}"
            bad = [v for v in value if isinstance(v, bool) or v not in self.choices]
            if bad:
                return f"unknown {bad[0]!r}: must be {self.describe()}"
            if len(set(value)) != len(value):
                return f"names an entry twice: {list(value)!r}"
            if self.hi is not None and len(value) > self.hi:
                n = len(self.choices)
                return f"may name at most {self.hi:g} of the {n}, got {list(value)!r}"
            return None
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
            "mapping": isinstance(value, Mapping),
            "list": isinstance(value, list | tuple),
        }[kind]
        if not ok:
            return f"must be {self.describe()}, got {_shown(value)}"
        if kind in ("int", "float"):
            if not math.isfinite(value):
                return f"must be a finite number, got {value!r}"
            low_bad = self.lo is not None and (
                value <= self.lo if self.lo_open else value < self.lo
            )
            high_bad = self.hi is not None and (
                value >= self.hi if self.hi_open else value > self.hi
            )
            if low_bad or high_bad:
                return f"must be {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        if self.kind == "choice":
            text = "one of " + ", ".join(map(repr, self.choices))
        elif self.kind == "subset":
            text = "a list of distinct entries of " + ", ".join(map(repr, self.choices))
            if self.hi is not None:
                text += f" (at most {self.hi:g})"
            return text
        else:
            text = {
                "int": "an integer",
                "float": "a number",
                "bool": "true or false",
                "str": "a string",
                "mapping": "a mapping",
                "list": "a list",
                "any": "any value",
            }[self.kind]
            if self.lo is not None or self.hi is not None:
                lb = "(" if self.lo_open else "["
                hb = ")" if self.hi_open else "]"
                lo = "-inf" if self.lo is None else f"{self.lo:g}"
                hi = "inf" if self.hi is None else f"{self.hi:g}"
                text += f" in {lb}{lo}, {hi}{hb}"
        return text + (" or null" if self.nullable else "")


def _shown(value: Any) -> str:
    names = {bool: "true/false", str: "a string", list: "a list", dict: "a mapping"}
    kind = names.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def Int(  # noqa: N802  (reads as a type in declarations)
    lo: int | None = None, hi: int | None = None, *, nullable: bool = False,
    required: bool = False,
) -> Arg:  # fmt: skip
    return Arg("int", lo, hi, nullable=nullable, required=required)


def Float(  # noqa: N802
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
    hi_open: bool = False, nullable: bool = False, required: bool = False,
) -> Arg:  # fmt: skip
    return Arg("float", lo, hi, lo_open, hi_open, nullable=nullable, required=required)


def Bool(*, nullable: bool = False) -> Arg:  # noqa: N802
    return Arg("bool", nullable=nullable)


def Str(*, nullable: bool = False, required: bool = False) -> Arg:  # noqa: N802
    return Arg("str", nullable=nullable, required=required)


def Choice(*choices: Any, nullable: bool = False) -> Arg:  # noqa: N802
    return Arg("choice", choices=tuple(choices), nullable=nullable)


def Subset(*choices: Any, at_most: int | None = None) -> Arg:  # noqa: N802
    """A list of at most `at_most` distinct values, each one of `choices` (e.g. ops to drop
    from a space)."""
    return Arg("subset", hi=at_most, choices=tuple(choices))


def Map(*, nullable: bool = False, required: bool = False) -> Arg:  # noqa: N802
    return Arg("mapping", nullable=nullable, required=required)


@dataclass(frozen=True)
class Declaration:
    """What a component accepts: `args`; for evaluators also `datasets` (None = any) and
    `check(args, eval_datasets)` raising ValueError for cross-argument rules."""

    args: Mapping[str, Arg] = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None
    check: Callable[[dict[str, Any], list[str]], None] | None = None


_DECLARED: dict[str, dict[str, Declaration]] = {kind: {} for kind in KINDS}


def _register(
    kind: str,
    name: str,
    doc: str | None = None,
    declaration: Declaration | None = None,
) -> Callable[[T], T]:
    def deco(obj: T) -> T:
        table = _REGISTRIES[kind]
        if name in table and table[name] is not obj:
            raise ValueError(f"{kind} {name!r} registered twice")
        table[name] = obj
        text = doc or (getattr(obj, "__doc__", None) or "").strip().splitlines()
        _DOCS[kind][name] = text if isinstance(text, str) else (text[0] if text else "")
        if declaration is not None:
            _DECLARED[kind][name] = declaration
        return obj

    return deco


def register_space(
    name: str, doc: str | None = None, *, args: Mapping[str, Arg] | None = None
) -> Callable[[T], T]:
    return _register("space", name, doc, None if args is None else Declaration(args))


def register_op(name: str, doc: str | None = None) -> Callable[[T], T]:
    return _register("op", name, doc)


def register_dataset(
    name: str, doc: str | None = None, *, args: Mapping[str, Arg] | None = None
) -> Callable[[T], T]:
    return _register("dataset", name, doc, None if args is None else Declaration(args))


def register_method(
    name: str, doc: str | None = None, *, args: Mapping[str, Arg] | None = None
) -> Callable[[T], T]:
    return _register("method", name, doc, None if args is None else Declaration(args))


def register_selector(
    name: str, doc: str | None = None, *, args: Mapping[str, Arg] | None = None
) -> Callable[[T], T]:
    return _register("selector", name, doc, None if args is None else Declaration(args))


def register_evaluator(
    name: str,
    doc: str | None = None,
    *,
    args: Mapping[str, Arg] | None = None,
    datasets: Iterable[str] | None = None,
    check: Callable[[dict[str, Any], list[str]], None] | None = None,
) -> Callable[[T], T]:
    declaration = None
    if args is not None:
        declaration = Declaration(args, None if datasets is None else tuple(datasets), check)
    return _register("evaluator", name, doc, declaration)


def declaration(kind: str, name: str) -> Declaration | None:
    """The component's declared arguments, or None if it declares none (unchecked)."""
    load_builtins()
    return _DECLARED[kind].get(name)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close known name, else ' (known: a, b, ...)'."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) if isinstance(name, str) else []
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known) or 'none'})"


def check_args(kind: str, name: str, args: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Problems of `args` for component `name`: [(key path below the args, problem)].

    Unknown keys (with a did-you-mean), wrong types, out-of-range values. Required keys are
    checked by `missing_args` on the fully merged arguments.
    """
    decl = declaration(kind, name)
    if decl is None:
        return []
    problems: list[tuple[tuple[str, ...], str]] = []
    for key, value in args.items():
        spec = decl.args.get(key)
        if spec is None:
            what = f"{kind} {name!r}"
            if not decl.args:
                problems.append(((str(key),), f"unknown argument: {what} takes no arguments"))
            else:
                problems.append(
                    ((str(key),), f"unknown argument of {what}{did_you_mean(key, decl.args)}")
                )
            continue
        problem = spec.problem(value)
        if problem is not None:
            problems.append(((str(key),), problem))
    return problems


def missing_args(kind: str, name: str, args: Mapping[str, Any]) -> list[str]:
    decl = declaration(kind, name)
    if decl is None:
        return []
    return [key for key, spec in decl.args.items() if spec.required and key not in args]


def load_builtins() -> None:
    """Import the modules whose decorators fill the registries."""
    import nasrepro.builtins  # noqa: F401


def get(kind: str, name: str) -> Any:
    load_builtins()
    table = _REGISTRIES[kind]
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}{did_you_mean(name, table)}")
    return table[name]


def names(kind: str) -> list[str]:
    load_builtins()
    return sorted(_REGISTRIES[kind])


def describe(kind: str) -> dict[str, str]:
    load_builtins()
    return dict(sorted(_DOCS[kind].items()))
