"""Suite files: one YAML per paper, validated into typed models.

Every error names `file:line: field: problem`, so a researcher fixes a suite without
reading a traceback. YAML is safe-loaded; unknown keys and duplicate keys are errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import types
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

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
    # EX/SS-DARTS Table 3 "optimal": the best test accuracy over the cells of every search
    # epoch, an oracle statistic of an NB201 trial (evaluate/trajectory.py), not a selection
    "trajectory_best_test_acc",
)
# Direction of each metric, for reports (an error falls, an accuracy rises).
HIGHER_IS_BETTER = {"test_acc": True, "valid_acc": True, "trajectory_best_test_acc": True}

# How a claim's number was obtained; the verdict computes the same statistic from records
# (docs/verdicts.md).
PROTOCOLS = ("mean", "best_by_valid", "best_by_test", "retrain_k", "single", "cell_property")
BEST_OF_N = ("best_by_valid", "best_by_test")  # one of the paper's N runs, picked
# FLOP counting conventions (nasrepro/complexity.py; kept here so validation needs no torch)
FLOPS_CONVENTIONS = ("conv_fc", "thop", "flops_counter", "fvcore")
# Record metric that picks the seed for `best_by_valid`: the evaluator's validation accuracy
# on the claim's dataset (short retraining, NB201 valid split), or the search supernet's
# validation accuracy after its last epoch.
SELECT_BY = ("valid_acc", "search_valid_acc")
# Evaluators that are deterministic functions of the cell: an experiment with a fixed
# genotype and one of these is an artifact experiment (budget-independent, seconds on a CPU).
DETERMINISTIC_EVALUATORS = ("complexity", "nb201-table", "nb201-api")


def metric_kind(metric: str) -> str:
    """accuracy (points), complexity (params_m / flops_m, relative) or cost (a ratio)."""
    if metric in ("params_m", "flops_m"):
        return "complexity"
    if metric == "search_cost_gpu_days":
        return "cost"
    return "accuracy"


# Ids name files and folders (registry records, report pages, MLflow experiments): a file
# name holds 255 bytes, and a path several ids, so ids are short and plain.
MAX_ID_CHARS = 80
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
Id = Field(pattern=ID_PATTERN, min_length=1, max_length=MAX_ID_CHARS)


def experiment_id_problem(key: str) -> str | None:
    """Why `key` cannot be an experiment id (None when it can): it names the registry
    folder of the experiment's records."""
    if len(key) > MAX_ID_CHARS:
        return (
            f"experiment id {key[:20]}... is {len(key):,} characters; an id names a registry "
            f"folder: at most {MAX_ID_CHARS}"
        )
    if not re.match(ID_PATTERN, key):
        return f"experiment id {key!r} must be letters, digits, - _ . (not starting with - _ .)"
    return None


class _Model(BaseModel):
    # every number finite: `.nan`, `.inf` and 1e400 (read as inf) are typos, and a claim
    # of inf crashes the verdict
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Paper(_Model):
    file: str = Field(min_length=1)
    title: str = Field(min_length=1)
    venue: str | None = None


class SearchStage(_Model):
    """One stage of a progressive search (search/stages.py): a fresh supernet, searched for
    `search.epochs` epochs. P-DARTS (chenxin061/pdarts train_search.py `main`): 5, 11, 17
    cells, 8 -> 5 -> 3 ops per edge, skip dropout 0.0/0.4/0.7, α frozen for 10 epochs."""

    # Cells and initial channels of this stage's supernet (None: the experiment's space_args).
    layers: int | None = Field(default=None, gt=0)
    c: int | None = Field(default=None, gt=0)
    # PC-DARTS' partial-channel K of this stage (DrNAS' progressive stages); None: space_args.
    partial_channels: int | None = Field(default=None, gt=0)
    # Ops each edge mixes: the first stage keeps the space's; a later stage keeps this many
    # of the previous stage's ops per edge, those of the largest softmax(α).
    ops_per_edge: int | None = Field(default=None, gt=0)
    # Initial dropout rate on the (stride-1) skip connections, decayed within the stage.
    skip_dropout: float = Field(default=0.0, ge=0, lt=1)
    # Leading epochs of the stage that update the weights only (α frozen).
    frozen_epochs: int = Field(default=0, ge=0)


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
    # AutoDL's DARTS-V1/V2 loops (and the NB201 loops built on them) clip over
    # network.parameters(): α's gradient counts in the norm, what the last α step left plus
    # the weight loss' α gradient. Off: the norm over the weights alone (quark0/darts).
    clip_includes_alpha: bool = False
    # Gradient-norm clip of α (and β) before the α step; PC-DARTS' ImageNet search: 5.
    arch_grad_clip: float | None = Field(default=None, gt=0)
    # Weight lr per epoch: cosine (DARTS), cosine one epoch ahead (SmoothDARTS' code as it ran,
    # search/schedule.py) or linear decay (Λ-DARTS ImageNet), after a linear warm-up of
    # lr_warmup_epochs epochs (PC-DARTS ImageNet: 5).
    lr_schedule: Literal["cosine", "cosine_shifted", "linear"] = "cosine"
    lr_warmup_epochs: int = Field(default=0, ge=0)
    # AutoDL DARTS-V1 steps weights then α; V2 (unrolled) and quark0/darts step α first.
    alpha_step: Literal["after_weights", "before_weights"] | None = None
    unrolled_r: float = Field(default=0.01, gt=0)
    steps_per_epoch: int | None = Field(default=None, gt=0)
    train_limit: int | None = Field(default=None, gt=0)
    image_size: int | None = Field(default=None, gt=0)
    deterministic: bool = True
    # Search-data protocol (datasets/search.py); None: the space's papers' own. One that
    # feeds test images to weights or α (NB201's xvalid) runs only when named here.
    data_protocol: str | None = None
    # TF32 convolutions/matmuls on Ampere+ GPUs: off, as the papers ran, unless opted in.
    tf32: bool = False
    # A progressive search (P-DARTS): these stages in turn, each of `epochs` epochs.
    stages: list[SearchStage] | None = Field(default=None, min_length=1)

    def resolved_alpha_step(self) -> str:
        if self.alpha_step is not None:
            return self.alpha_step
        return "after_weights" if self.order == 1 else "before_weights"

    def config(self) -> dict[str, Any]:
        """The settings as a trial's configuration holds them. `stages` is left out when
        unset, so a one-stage search keeps the identity (unit keys) it had before stages."""
        out = self.model_dump(mode="json")
        if out["stages"] is None:
            del out["stages"]
        return out

    def total_epochs(self) -> int:
        """Epochs of the whole search: `epochs` per stage of a progressive search."""
        return self.epochs * len(self.stages or [None])

    @model_validator(mode="after")
    def _stages(self) -> SearchSettings:
        for i, stage in enumerate(self.stages or []):
            if stage.frozen_epochs >= self.epochs:
                raise ValueError(
                    f"stages[{i}].frozen_epochs ({stage.frozen_epochs}) must be below epochs "
                    f"({self.epochs}): the stage would never update α"
                )
            if i == 0 and stage.ops_per_edge is not None:
                raise ValueError("stages[0].ops_per_edge: the first stage mixes the space's ops")
        return self


class Experiment(_Model):
    description: str | None = None
    space: str
    space_args: dict[str, Any] = {}
    dataset: str
    methods: list[str] = []
    method_args: dict[str, dict[str, Any]] = {}
    # Exactly one of `search` (the cell is searched) and `genotype` (a published cell: a name
    # from nasrepro/nets/genotypes.py, a Genotype(...) string or an NB201 arch string).
    search: SearchSettings | None = None
    genotype: str | None = Field(default=None, min_length=1)
    # A search by benchmark queries instead of a supernet (NAS-Bench-201's random search,
    # REA, REINFORCE, BOHB; nasrepro/search/queries.py): {algorithm: rea, <its arguments>}.
    query: dict[str, Any] | None = None
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

    @model_validator(mode="after")
    def _search_or_genotype(self) -> Experiment:
        given = [k for k in ("search", "genotype", "query") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an experiment has exactly one of `search`, `genotype` and `query`")
        if self.query is not None:
            from nasrepro.search.queries import check_query

            problem = check_query(self.query)
            if problem is not None:
                raise ValueError(f"query: {problem}")
            if self.evaluator != "nb201-api" or self.space != "nb201":
                raise ValueError(
                    "a `query` search reads the NAS-Bench-201 file: space nb201, "
                    "evaluator nb201-api"
                )
            searched = [
                k
                for k in ("methods", "method_args", "selector", "selector_args", "budget_search")
                if k in self.model_fields_set
            ]
            if searched:
                raise ValueError(
                    f"an experiment with a `query` search trains no supernet: drop {searched[0]}"
                )
        if self.genotype is not None:
            searched = [
                k
                for k in ("methods", "method_args", "selector", "selector_args", "budget_search")
                if k in self.model_fields_set
            ]
            if searched:
                raise ValueError(
                    f"an experiment with a fixed `genotype` runs no search: drop {searched[0]}"
                )
        return self

    @property
    def is_artifact(self) -> bool:
        """A published cell scored by a deterministic evaluator (no search, no training)."""
        return self.genotype is not None and self.evaluator in DETERMINISTIC_EVALUATORS


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
    protocol: Literal[PROTOCOLS] = "mean"  # type: ignore[valid-type]
    select_by: Literal[SELECT_BY] | None = None  # type: ignore[valid-type]
    # A known typo in the paper: judged against corrected_value, both shown with the reason.
    corrected_value: float | None = None
    correction: str | None = Field(default=None, min_length=1)
    # The claim's own margin, in the metric kind's unit (points, M params/FLOPs, cost ratio);
    # replaces the one derived from the paper's std and ranked rows (docs/verdicts.md).
    margin: float | None = Field(default=None, gt=0)
    # flops_m: the counting convention the number was printed under (default: the suite's
    # verdict.flops_convention); the note cites the evidence.
    convention: Literal[FLOPS_CONVENTIONS] | None = None  # type: ignore[valid-type]
    experiment: str | None = None
    not_runnable: str | None = None
    note: str | None = None
    # The YAML text of `value` / `corrected_value` ("3.30" keeps its printed digits).
    _value_text: str | None = PrivateAttr(default=None)
    _corrected_text: str | None = PrivateAttr(default=None)
    _std_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _protocol_fields(self) -> Claim:
        if self.select_by is not None and self.protocol not in BEST_OF_N:
            raise ValueError("`select_by` goes only with protocols best_by_valid, best_by_test")
        if self.protocol == "best_by_test" and self.n_seeds is None:
            raise ValueError("protocol best_by_test is the best of the paper's N: give n_seeds")
        if self.convention is not None and self.metric != "flops_m":
            raise ValueError("`convention` is a FLOP counting convention: only for flops_m")
        if (self.corrected_value is None) != (self.correction is None):
            raise ValueError("`corrected_value` and `correction` go together")
        if self.protocol in ("single", "cell_property") and (self.n_seeds or 1) != 1:
            raise ValueError(f"protocol {self.protocol} is one number: n_seeds must be 1")
        if metric_kind(self.metric) == "cost" and self.margin is not None and self.margin < 1:
            raise ValueError("a search-cost margin is a ratio: at least 1")
        if self.protocol == "cell_property" and self.std is not None:
            raise ValueError("protocol cell_property is one deterministic number: no std")
        return self

    @property
    def judged_value(self) -> float:
        """The value the verdict compares with: the corrected one for a known typo."""
        return self.value if self.corrected_value is None else self.corrected_value

    @property
    def value_text(self) -> str | None:
        """`value` as the suite prints it (None for a claim built outside load_suite)."""
        return self._value_text

    @property
    def corrected_text(self) -> str | None:
        return self._corrected_text

    @property
    def judged_text(self) -> str | None:
        """The judged value as printed in the suite (its decimals give the rounding)."""
        return self._value_text if self.corrected_value is None else self._corrected_text

    @property
    def std_text(self) -> str | None:
        """`std` as the suite prints it ("0.00": half a unit is 0.005)."""
        return self._std_text

    @property
    def resolved_select_by(self) -> str:
        return self.select_by or "valid_acc"


class Comparison(_Model):
    """A paper's conclusion "method A beats method B": two claims of the same column."""

    id: str = Id
    paper_file: str
    table: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    better: str  # claim id of the method claimed to be better
    worse: str  # claim id of the method it beats
    margin: float = Field(default=0.0, ge=0)  # claimed minimum margin, metric units
    note: str | None = None


class Verdict(_Model):
    z: float = Field(default=2.0, gt=0)  # comparisons: multiplier of the standard error
    level: float = Field(default=0.90, gt=0.5, lt=1)  # claims: confidence level of Δ's CI
    margin_floor: float = Field(default=0.05, gt=0)  # points: the smallest accuracy margin
    relative_floor: float = Field(default=0.01, ge=0)  # params_m / flops_m
    cost_ratio: float = Field(default=1.5, ge=1)  # search cost within [1/r, r] x claimed
    # The FLOP counting convention of the paper's own rows, and the evidence (the authors'
    # file that counts); claims copied from another paper declare theirs (`convention`).
    flops_convention: Literal[FLOPS_CONVENTIONS] = "conv_fc"  # type: ignore[valid-type]
    flops_evidence: str | None = Field(default=None, min_length=1)


class Suite(_Model):
    suite: str = Id
    version: int = Field(ge=1)
    paper: Paper
    verdict: Verdict = Verdict()
    budgets: dict[Literal["reduced", "smoke"], BudgetRule]
    experiments: dict[str, Experiment]
    claims: list[Claim] = Field(min_length=1)
    comparisons: list[Comparison] = []

    @field_validator("experiments")
    @classmethod
    def _experiment_ids(cls, v: dict[str, Experiment]) -> dict[str, Experiment]:
        for key in v:
            problem = experiment_id_problem(key)
            if problem:
                raise ValueError(problem)
        return v


class SuiteError(ValueError):
    """An invalid suite; `str()` is the one-line `file:line: field: problem`."""

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        field, problem = _clip(field, 120), _clip(problem, MAX_PROBLEM_CHARS)
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field or '<root>'}: {problem}")


# A problem quotes what the suite says; a megabyte string must not become a megabyte line.
MAX_PROBLEM_CHARS = 400


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text):,} characters)"


# libyaml's parser where PyYAML has it: suites are thousands of lines (`nasrepro plan` reads
# all of them); the constructor stays Python, so duplicate keys are still refused.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def json_key(key: Any) -> str | None:
    """The key `key` becomes in the suite's JSON form (how the schema sees it): `1` and
    `'1'` are both "1", `true` is "true"; None for a key JSON cannot hold (a date, a list)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return None


_KIND = {"date": "a date", "datetime": "a date and time", "bytes": "binary"}


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[str, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may be overridden by explicit keys; that is intended
        if isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node, deep=deep)
            name = json_key(key)
        else:  # a list or mapping as a key (`? [a, b]`)
            key, name = None, None
        if name is None:
            kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            if isinstance(key_node, yaml.ScalarNode):
                kind = _KIND.get(type(key).__name__, f"a {type(key).__name__}")
            shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "(a collection)"
            raise yaml.constructor.ConstructorError(
                None, None, f"key {shown} is {kind}, not text: quote it", key_node.start_mark
            )
        if name in seen:
            first = seen[name]
            also = "" if first == key else f" ({first!r} and {key!r} are the same key once read)"
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {name!r}{also}", key_node.start_mark
            )
        seen[name] = key
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


# Integers past 64 bits are typos or attacks: Python refuses to read one of more than
# 4,300 digits (a traceback), and a 400-digit claim became an infinite float.
MAX_INT_CHARS = 24


def _construct_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    digits = sum(c.isalnum() for c in node.value)
    if len(node.value) > MAX_INT_CHARS or digits > 19:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"an integer of {digits:,} digits is out of range (at most 64 bits)",
            node.start_mark,
        )
    value = int(yaml.SafeLoader.construct_yaml_int(loader, node))
    if not -(2**63) <= value < 2**63:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer {value} is out of range (at most 64 bits)", node.start_mark
        )
    return value


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
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
        if exp.genotype is not None:
            bad = _genotype_problem(exp.space, exp.genotype)
            if bad:
                problems.append(((*base, "genotype"), bad))
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
            else:
                bad = _protocol_problem(claim, suite.experiments[claim.experiment])
                if bad:
                    problems.append(((*base, "protocol"), bad))
    by_id = {c.id: c for c in suite.claims}
    for i, comp in enumerate(suite.comparisons):
        base = ("comparisons", i)
        if comp.id in seen:
            problems.append(((*base, "id"), f"duplicate id {comp.id!r}"))
        seen.add(comp.id)
        for side in ("better", "worse"):
            if getattr(comp, side) not in by_id:
                problems.append(((*base, side), f"no claim {getattr(comp, side)!r}"))
        a, b = by_id.get(comp.better), by_id.get(comp.worse)
        if a is None or b is None:
            continue
        if a.id == b.id:
            problems.append(((*base, "worse"), "a claim cannot be compared with itself"))
        elif (a.metric, a.dataset) != (b.metric, b.dataset):
            problems.append(
                (
                    (*base, "worse"),
                    f"claims {a.id!r} and {b.id!r} differ in metric/dataset "
                    f"({a.metric} on {a.dataset} vs {b.metric} on {b.dataset})",
                )
            )
        elif metric_kind(a.metric) != "accuracy":
            problems.append(
                ((*base, "better"), f"comparisons are on accuracy/error metrics, not {a.metric}")
            )
    return problems


# Published DARTS genotypes print in about 450 characters (NB201 arch strings in 120):
# a longer string is refused before it is parsed.
MAX_GENOTYPE_CHARS = 2_000


def _genotype_problem(space: str, genotype: str) -> str | None:
    """Why `genotype` is not a cell of `space` (None when it is)."""
    if len(genotype) > MAX_GENOTYPE_CHARS:
        return (
            f"genotype string is {len(genotype):,} characters; at most {MAX_GENOTYPE_CHARS:,} "
            "(a published cell prints in a few hundred)"
        )
    if space == "nb201":
        from nasrepro.spaces.nb201 import Nb201Genotype

        try:
            Nb201Genotype.from_arch_str(genotype)
        except ValueError as exc:
            return str(exc)
        return None
    from nasrepro.nets.genotypes import get_genotype

    try:
        get_genotype(genotype)
    except (KeyError, ValueError, SyntaxError) as exc:
        return str(exc.args[0] if exc.args else exc)
    return None


def _protocol_problem(claim: Claim, exp: Experiment) -> str | None:
    """A protocol that its experiment cannot compute (None when it can)."""
    if exp.pending:
        return None
    if claim.protocol == "cell_property" and not exp.is_artifact:
        return (
            "protocol cell_property needs an experiment with a fixed `genotype` and a "
            f"deterministic evaluator ({', '.join(DETERMINISTIC_EVALUATORS)})"
        )
    if exp.is_artifact and claim.protocol != "cell_property":
        return (
            f"experiment {claim.experiment!r} scores a published cell: use protocol cell_property"
        )
    if claim.metric == "trajectory_best_test_acc" and not (
        exp.genotype is None and exp.space == "nb201" and exp.evaluator.startswith("nb201")
    ):
        return (
            "metric trajectory_best_test_acc is recorded by NB201 searches scored by an NB201 "
            f"table; experiment {claim.experiment!r} is not one"
        )
    if claim.protocol == "retrain_k" and exp.genotype is None:
        return "protocol retrain_k retrains one given cell: its experiment needs a `genotype`"
    if claim.protocol in BEST_OF_N and exp.genotype is not None:
        return (
            f"protocol {claim.protocol} chooses among searched cells: its experiment has a "
            "`genotype`"
        )
    return None


def _read_yaml(path: Path, shown: str) -> tuple[Any, yaml.Node | None]:
    """(data, node tree for line numbers) of one YAML file, or SuiteError."""
    if not path.is_file():
        raise SuiteError(shown, None, "", "file not found")
    text = _read_text(path, shown)
    root, data = _parse_yaml(text, shown)
    return data, root


# experiment id -> (file shown in errors, its node tree) for experiments from an include
_Sources = dict[str, tuple[str, "yaml.Node | None"]]


# What `include:` may read: at most this many files, this many bytes in all (2,000
# includes of a 1 MB file took 29.5 s), from the suite's repository or the folders of
# NASREPRO_INCLUDE_DIRS.
MAX_INCLUDES = 64
MAX_INCLUDED_BYTES = 4 * MAX_SUITE_BYTES
INCLUDE_DIRS_ENV = "NASREPRO_INCLUDE_DIRS"


def suite_repository(path: Path) -> Path:
    """The repository a suite belongs to: the nearest folder above it holding `.git`, or
    the suite's own folder outside a repository."""
    folder = path.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def _include_paths(
    path: Path, shown: str, includes: list[str], root: yaml.Node | None
) -> list[Path]:
    """The files `include:` names, each checked before any is read: inside the suite's
    repository or an allowed folder (symlinks resolved), a file, listed once, and all of
    them together at most MAX_INCLUDED_BYTES."""
    repo = suite_repository(path)
    allowed = [repo] + [
        Path(d).resolve() for d in os.environ.get(INCLUDE_DIRS_ENV, "").split(os.pathsep) if d
    ]
    if len(includes) > MAX_INCLUDES:
        line = _line_of(root, ("include",))
        problem = f"{len(includes):,} files; a suite includes at most {MAX_INCLUDES}"
        raise SuiteError(shown, line, "include", problem)
    seen: set[Path] = set()
    total = 0
    out = []
    for i, name in enumerate(includes):
        line = _line_of(root, ("include", i))
        inc = path.parent / name
        real = inc.resolve()
        if not any(real.is_relative_to(folder) for folder in allowed):
            raise SuiteError(
                shown,
                line,
                f"include[{i}]",
                f"{real} is outside the suite's repository {repo} (an included file must be "
                f"in it, or in a folder listed in {INCLUDE_DIRS_ENV})",
            )
        if not inc.is_file():
            raise SuiteError(shown, line, f"include[{i}]", f"file not found: {inc}")
        if real in seen:
            raise SuiteError(shown, line, f"include[{i}]", f"includes {name} twice")
        seen.add(real)
        total += real.stat().st_size
        if total > MAX_INCLUDED_BYTES:
            raise SuiteError(
                shown,
                line,
                f"include[{i}]",
                f"included files exceed {MAX_INCLUDED_BYTES:,} bytes in all ({total:,} with "
                f"{name})",
            )
        out.append(inc)
    return out


def _apply_includes(
    path: Path, shown: str, data: dict[str, Any], root: yaml.Node | None
) -> _Sources:
    """Merge the experiments of the files under `include:` (paths relative to the suite)
    into `data`, in order, before the suite's own. An included file holds only
    `experiments:`; an id defined twice is an error naming both places."""
    sources: _Sources = {}
    includes = data.pop("include", None)
    if includes is None:
        return sources
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SuiteError(shown, _line_of(root, ("include",)), "include", "must be a list of paths")
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    for inc in _include_paths(path, shown, includes, root):
        inc_shown = str(inc)
        inc_data, inc_root = _read_yaml(inc, inc_shown)
        if not isinstance(inc_data, dict) or not isinstance(inc_data.get("experiments"), dict):
            raise SuiteError(
                inc_shown,
                1,
                "experiments",
                "an included file is a mapping with `experiments:` only",
            )
        extra = sorted(k for k in inc_data if k != "experiments")
        if extra:
            raise SuiteError(
                inc_shown,
                _line_of(inc_root, (extra[0],)),
                extra[0],
                "unknown key (an included file holds only `experiments`)",
            )
        for key, body in inc_data["experiments"].items():
            exp_id = json_key(key) or str(key)  # as the schema reads it: 1 and '1' are one id
            line = _line_of(inc_root, ("experiments", exp_id))
            if exp_id in merged:
                raise SuiteError(
                    inc_shown, line, f"experiments.{exp_id}", f"also defined in {where[exp_id]}"
                )
            merged[exp_id] = body
            where[exp_id] = f"{inc_shown}:{line}"
            sources[exp_id] = (inc_shown, inc_root)
    own = data.get("experiments")
    if isinstance(own, dict):
        for key, body in own.items():
            exp_id = json_key(key) or str(key)
            if exp_id in merged:
                line = _line_of(root, ("experiments", exp_id))
                raise SuiteError(
                    shown, line, f"experiments.{exp_id}", f"also defined in {where[exp_id]}"
                )
            merged[exp_id] = body
    elif own is not None:
        return sources  # not a mapping: the schema check reports it at the suite's line
    data["experiments"] = merged
    return sources


def _locate(
    shown: str, root: yaml.Node | None, sources: _Sources, loc: tuple[Any, ...]
) -> tuple[str, int | None]:
    """File and line of `loc`: an included experiment's fields are in its own file."""
    if len(loc) >= 2 and loc[0] == "experiments" and loc[1] in sources:
        inc_shown, inc_root = sources[loc[1]]
        return inc_shown, _line_of(inc_root, loc)
    return shown, _line_of(root, loc)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite; raises SuiteError with a one-line message."""
    path = Path(path)
    shown = str(path)
    data, root = _read_yaml(path, shown)
    if not isinstance(data, dict):
        raise SuiteError(shown, 1, "", "a suite must be a YAML mapping")
    sources = _apply_includes(path, shown, data, root)
    _check_experiment_ids(data, shown, root, sources)
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
        file, line = _locate(shown, root, sources, loc)
        raise SuiteError(file, line, _dotted(loc), problem + more) from None
    _keep_value_texts(suite, root)
    from nasrepro.suite_args import check_arguments, check_resolved, check_search_overrides

    problems = _check_references(suite)
    problems = problems or check_arguments(suite) or check_search_overrides(suite)
    if problems:
        loc, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        file, line = _locate(shown, root, sources, loc)
        raise SuiteError(file, line, _dotted(loc), problem + more)
    _check_budgets(suite, shown, root)
    problems = check_resolved(suite, shown)
    if problems:
        loc, problem = problems[0]
        file, line = _locate(shown, root, sources, loc)
        raise SuiteError(file, line, _dotted(loc), problem)
    return suite


def _check_experiment_ids(
    data: dict[str, Any], shown: str, root: yaml.Node | None, sources: _Sources
) -> None:
    """Each experiment id can name a folder, before anything is validated or run (a
    300-character id used to pass validate and fail when its record was written)."""
    experiments = data.get("experiments")
    if not isinstance(experiments, dict):
        return  # the schema check reports it
    for key in experiments:
        name = json_key(key) or str(key)
        problem = experiment_id_problem(name)
        if problem:
            file, line = _locate(shown, root, sources, ("experiments", name))
            raise SuiteError(file, line, f"experiments.{name}", problem)


def _keep_value_texts(suite: Suite, root: yaml.Node | None) -> None:
    """Give each claim the YAML text of its value: 3.30 and 3.3 print different digits."""
    for i, claim in enumerate(suite.claims):
        claim._value_text = _scalar_text(root, ("claims", i, "value"))
        claim._corrected_text = _scalar_text(root, ("claims", i, "corrected_value"))
        claim._std_text = _scalar_text(root, ("claims", i, "std"))


def _scalar_text(root: yaml.Node | None, loc: tuple[Any, ...]) -> str | None:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node.value if isinstance(node, yaml.ScalarNode) else None


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
