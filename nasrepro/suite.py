"""Suite files: one YAML per paper, validated into typed models.

Every error names `file:line: field: problem`, so a researcher fixes a suite without
reading a traceback. YAML is safe-loaded; unknown keys and duplicate keys are errors.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

METRICS = (
    "test_acc",
    "valid_acc",
    "test_err",
    "valid_err",
    "top1_err",
    "top5_err",
    "params_m",
    "flops_m",
    "search_cost_gpu_days",
)
# Direction of each metric, for reports (an error falls, an accuracy rises).
HIGHER_IS_BETTER = {"test_acc": True, "valid_acc": True}

Id = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", min_length=1, max_length=80)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paper(_Model):
    file: str = Field(min_length=1)
    title: str = Field(min_length=1)
    venue: str | None = None


class SearchSettings(_Model):
    """The bilevel search at the paper's settings (full budget)."""

    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    order: Literal[1, 2] = 1
    lr: float = Field(gt=0)
    lr_min: float = Field(ge=0)
    momentum: float = Field(ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(ge=0)
    arch_lr: float = Field(gt=0)
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = Field(ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0)
    # AutoDL DARTS-V1 steps weights then α; V2 (unrolled) and quark0/darts step α first.
    alpha_step: Literal["after_weights", "before_weights"] | None = None
    unrolled_r: float = Field(default=0.01, gt=0)
    steps_per_epoch: int | None = Field(default=None, gt=0)
    train_limit: int | None = Field(default=None, gt=0)
    image_size: int | None = Field(default=None, gt=0)
    deterministic: bool = True

    def resolved_alpha_step(self) -> str:
        if self.alpha_step is not None:
            return self.alpha_step
        return "after_weights" if self.order == 1 else "before_weights"


class Experiment(_Model):
    description: str | None = None
    space: str
    space_args: dict[str, Any] = {}
    dataset: str
    methods: list[str] = []
    method_args: dict[str, dict[str, Any]] = {}
    search: SearchSettings
    selector: str = "argmax"
    selector_args: dict[str, Any] = {}
    evaluator: str = "nb201-table"
    evaluator_args: dict[str, Any] = {}
    eval_datasets: list[str] = Field(min_length=1)
    seeds: int = Field(gt=0, le=100)
    # Search settings for one budget only, applied after the suite's budget rule (e.g. the
    # ImageNet stem's three stride-2 convs need larger smoke images than CIFAR cells).
    budget_search: dict[Literal["reduced", "smoke"], dict[str, Any]] = {}
    # Declared with the paper's settings but not executable yet (a method, space or
    # evaluator still missing): the runner skips it and the report says why.
    pending: str | None = Field(default=None, min_length=1)


class BudgetRule(_Model):
    """How a budget derives from the paper's settings: declared overrides, nothing silent."""

    description: str
    seeds: int | None = Field(default=None, gt=0)
    dataset: str | None = None
    search: dict[str, Any] = {}
    space_args: dict[str, Any] = {}
    # space name -> space_args for experiments on that space only (applied after
    # `space_args`), so one budget can shrink NB201 (`n`) and DARTS (`layers`) supernets.
    space_args_by_space: dict[str, dict[str, Any]] = {}
    # Keyed by component name like method_args, so one budget can shrink PT's tuning and a
    # retraining recipe without touching experiments that use other selectors/evaluators.
    method_args: dict[str, dict[str, Any]] = {}
    selector_args: dict[str, dict[str, Any]] = {}
    evaluator_args: dict[str, dict[str, Any]] = {}


class Claim(_Model):
    id: str = Id
    paper_file: str
    table: str = Field(min_length=1)
    row: str = Field(min_length=1)
    method: str = Field(min_length=1)
    space: str
    dataset: str
    metric: Literal[METRICS]  # type: ignore[valid-type]
    value: float
    std: float | None = Field(default=None, ge=0)
    n_seeds: int | None = Field(default=None, gt=0)
    statistic: Literal["mean", "best"] = "mean"
    experiment: str | None = None
    not_runnable: str | None = None
    note: str | None = None


class Verdict(_Model):
    abs_tolerance: float = Field(default=1.0, ge=0)
    z: float = Field(default=2.0, gt=0)


class Suite(_Model):
    suite: str = Id
    version: int = Field(ge=1)
    paper: Paper
    verdict: Verdict = Verdict()
    budgets: dict[Literal["reduced", "smoke"], BudgetRule]
    experiments: dict[str, Experiment]
    claims: list[Claim] = Field(min_length=1)

    @field_validator("experiments")
    @classmethod
    def _experiment_ids(cls, v: dict[str, Experiment]) -> dict[str, Experiment]:
        for key in v:
            if not key or not key.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise ValueError(f"experiment id {key!r} must be letters, digits, - _ .")
        return v


class SuiteError(ValueError):
    """An invalid suite; `str()` is the one-line `file:line: field: problem`."""

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field or '<root>'}: {problem}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may be overridden by explicit keys; that is intended
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads `3e-4` (no dot) as a string; suites mean the number, as YAML 1.2 does.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

# A suite is a page of YAML: anything far larger is a mistake or an attack.
MAX_SUITE_BYTES = 1 << 20
# Nodes after expanding every alias: `&a [*b, *b, ...]` chains grow exponentially (a
# 1.5 KB "billion laughs" file would exhaust memory when the config is hashed).
MAX_EXPANDED_NODES = 200_000


def _expanded_nodes(root: yaml.Node, limit: int) -> int | None:
    """Nodes of the document with aliases expanded, or None past `limit`; a recursive
    alias counts as past the limit. Memoized per node, so linear in the file."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            return limit + 1  # a node that contains itself expands forever
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > limit:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    n = size(root)
    return n if n <= limit else None


def _read_text(path: Path, shown: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError(
                shown, None, "", f"file is {size:,} bytes; a suite is at most {MAX_SUITE_BYTES:,}"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(shown, None, "", f"cannot be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SuiteError(
            shown, line, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None


def _parse_yaml(text: str, shown: str) -> tuple[yaml.Node | None, Any]:
    """(node tree for line numbers, data); one parse, aliases checked before they expand."""
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_nodes(root, MAX_EXPANDED_NODES) is None:
            raise SuiteError(
                shown,
                None,
                "",
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (or refer to "
                "themselves); write the settings out or use fewer nested aliases",
            )
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(shown, line, "", f"invalid YAML: {problem}") from None
    except RecursionError:
        raise SuiteError(shown, None, "", "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return root, data


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `loc` (deepest existing ancestor if absent)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    # a field is shown at its key, the line a reader looks for
                    line, nxt = k.start_mark.line + 1, v
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{err['msg'].replace('Input should be', 'must be')}, got {err['input']!r}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg[0].lower() + msg[1:]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose field `loc[-1]` would be, following Suite's field types."""
    import typing

    node: Any = Suite
    for part in loc[:-1]:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return None
            node = field.annotation
        else:  # a dict value or list item: the container's element type
            args = [a for a in typing.get_args(node) if a is not type(None)]
            node = args[-1] if args else None
        while typing.get_origin(node) in (typing.Union, types.UnionType):
            node = next((a for a in typing.get_args(node) if a is not type(None)), None)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _key_hint(loc: tuple[Any, ...]) -> str:
    from nasrepro.catalog import did_you_mean

    model = _model_at(loc)
    return did_you_mean(str(loc[-1]), model.model_fields) if model is not None else ""


def _trim_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic puts "[key]" parts for dict keys of Literal type; keep the user's view.
    return tuple(p for p in loc if p not in ("[key]",))


def _check_references(suite: Suite) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-references pydantic cannot see: registries, experiment ids, claim ↔ experiment."""
    from nasrepro import catalog

    problems: list[tuple[tuple[Any, ...], str]] = []

    def known(kind: str, name: str, loc: tuple[Any, ...]) -> None:
        if name not in catalog.names(kind):
            hint = catalog.did_you_mean(name, catalog.names(kind))
            problems.append((loc, f"unknown {kind} {name!r}{hint}"))

    for eid, exp in suite.experiments.items():
        base = ("experiments", eid)
        if exp.pending:
            continue  # declared with the paper's settings; names may not be registered yet
        known("space", exp.space, (*base, "space"))
        known("dataset", exp.dataset, (*base, "dataset"))
        known("selector", exp.selector, (*base, "selector"))
        known("evaluator", exp.evaluator, (*base, "evaluator"))
        for i, m in enumerate(exp.methods):
            known("method", m, (*base, "methods", i))
        for m in exp.method_args:
            if m not in exp.methods:
                problems.append(
                    (
                        (*base, "method_args", m),
                        f"arguments for method {m!r} which is not in methods",
                    )
                )
    for name, rule in suite.budgets.items():
        for kind, table in (
            ("selector", rule.selector_args),
            ("evaluator", rule.evaluator_args),
            ("method", rule.method_args),
        ):
            for key in table:
                known(kind, key, ("budgets", name, f"{kind}_args", key))
        if rule.dataset is not None:
            known("dataset", rule.dataset, ("budgets", name, "dataset"))
        bad = sorted(set(rule.search) - set(SearchSettings.model_fields))
        if bad:
            hint = catalog.did_you_mean(bad[0], SearchSettings.model_fields)
            problems.append((("budgets", name, "search", bad[0]), f"unknown search setting{hint}"))
    seen: set[str] = set()
    for i, claim in enumerate(suite.claims):
        base = ("claims", i)
        if claim.id in seen:
            problems.append(((*base, "id"), f"duplicate claim id {claim.id!r}"))
        seen.add(claim.id)
        if claim.experiment is None and not claim.not_runnable:
            problems.append((base, "a claim needs `experiment` or a `not_runnable` reason"))
        if claim.experiment is not None:
            if claim.experiment not in suite.experiments:
                problems.append(
                    ((*base, "experiment"), f"no experiment {claim.experiment!r} in this suite")
                )
            elif suite.experiments[claim.experiment].space != claim.space:
                problems.append(
                    (
                        (*base, "space"),
                        f"claim space {claim.space!r} differs from experiment {claim.experiment!r}",
                    )
                )
    return problems


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite; raises SuiteError with a one-line message."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise SuiteError(shown, None, "", "file not found")
    text = _read_text(path, shown)
    root, data = _parse_yaml(text, shown)
    if not isinstance(data, dict):
        raise SuiteError(shown, 1, "", "a suite must be a YAML mapping")
    try:
        # strict: no silent coercion (`epochs: true` is not 1, "5" is not 5); validated as
        # JSON so that YAML lists still fill tuple fields
        suite = Suite.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key is both "unknown" and "missing": name the spelling, with a hint
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = _trim_loc(tuple(err["loc"]))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        problem = _message(err)
        if err["type"] == "extra_forbidden" and loc:
            problem += _key_hint(loc)
        raise SuiteError(shown, _line_of(root, loc), _dotted(loc), problem + more) from None
    from nasrepro.suite_args import check_arguments, check_resolved, check_search_overrides

    problems = _check_references(suite)
    problems = problems or check_arguments(suite) or check_search_overrides(suite)
    if problems:
        loc, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SuiteError(shown, _line_of(root, loc), _dotted(loc), problem + more)
    _check_budgets(suite, shown, root)
    problems = check_resolved(suite, shown)
    if problems:
        loc, problem = problems[0]
        raise SuiteError(shown, _line_of(root, loc), _dotted(loc), problem)
    return suite


def _check_budgets(suite: Suite, shown: str, root: yaml.Node | None) -> None:
    """Every experiment must resolve at every declared budget (merged settings validate)."""
    from nasrepro.plan import resolve_experiment

    for budget in suite.budgets:
        for exp_id in suite.experiments:
            try:
                resolve_experiment(suite, exp_id, budget, shown)
            except SuiteError as exc:
                loc = tuple(exc.field.split("."))
                raise SuiteError(shown, _line_of(root, loc), exc.field, exc.problem) from None


def suite_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
