"""`nasrepro tune`: an Optuna study over one experiment's hyper-parameters, tracked in MLflow.

A tuning trial is the experiment's trial (search, selection, evaluation) with some values
of its resolved config replaced by sampled ones. Parameters are named by dotted paths:

    lambda.lambda_=loguniform(0.01,1)      method_args.lambda.lambda_ (a method of the experiment)
    darts_minus.beta0=uniform(0,2)         method_args.darts_minus.beta0
    search.arch_lr=loguniform(1e-4,1e-3)   a field of SearchSettings
    search.epochs=int(10,50)               int(lo,hi) or int(lo,hi,log)
    space_args.c=categorical(8,16)         selector_args / evaluator_args / space_args

Tuning results are not reproduction results: nothing goes to the registry. The study
lives in an Optuna RDB storage (SQLite in the working directory by default, any SQLAlchemy
URL for parallel workers), every Optuna trial is a child MLflow run under one parent run
per invocation, and the best values are written as a *suggested* suite override under
`suites/tuned/`, never applied to the suite.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import math
import os
import re
import sys
import tempfile
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from nasrepro.filemode import publish_mode
from nasrepro.progress import Bar, emit
from nasrepro.tracking import Tracker  # stdlib-only at import; mlflow loads in Tracker()

if TYPE_CHECKING:
    import optuna

    from nasrepro.search.engine import EpochLog
    from nasrepro.suite import Suite

Progress = Callable[[str], None]
Scalar = bool | int | float | str | None

KINDS = ("uniform", "loguniform", "int", "categorical")
GROUPS = ("search", "selector_args", "evaluator_args", "space_args")
OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {
    "valid_acc": "maximize",
    "valid_loss": "minimize",
}
DEFAULT_OUT = "suites/tuned"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SPEC = re.compile(
    rf"^\s*(?P<path>{_NAME}(?:\.{_NAME})*)\s*=\s*(?P<kind>[A-Za-z_]+)\s*\((?P<args>[^()]*)\)\s*$"
)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_WORD = re.compile(r"^[A-Za-z0-9_.+\-/]+$")
# Arguments the engine passes to selectors and supernets itself; never tunable.
_SELECTOR_FIXED = ("space", "supernet", "ctx", "data", "history")
_SUPERNET_FIXED = ("self", "num_classes", "in_channels")


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


class TuneFailed(RuntimeError):
    """A tuning trial raised; the parent MLflow run is marked FAILED."""


# --------------------------------------------------------------------------- param specs


@dataclass(frozen=True)
class Distribution:
    """What Optuna samples: uniform / loguniform floats, integers, or categorical choices."""

    kind: Literal["uniform", "loguniform", "int", "categorical"]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Scalar, ...] = ()

    def __str__(self) -> str:
        if self.kind == "categorical":
            return f"categorical({','.join(_show(c) for c in self.choices)})"
        tail = ",log" if self.kind == "int" and self.log else ""
        return f"{self.kind}({self.low},{self.high}{tail})"

    def probes(self) -> tuple[Scalar, ...]:
        """Values a parameter must accept: both ends and, for floats, a non-integer interior
        point (so an integer field given `uniform` is refused before any trial runs)."""
        if self.kind == "categorical":
            return self.choices
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return (self.low, self.high)
        if self.kind == "loguniform":
            inner = math.exp(math.log(self.low) + 0.37 * (math.log(self.high) - math.log(self.low)))
        else:
            inner = self.low + 0.37 * (self.high - self.low)
        return (float(self.low), inner, float(self.high))

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(
            name, float(self.low), float(self.high), log=self.kind == "loguniform"
        )


@dataclass(frozen=True)
class ParamSpec:
    """One `--param PATH=KIND(ARGS)` as given."""

    raw: str
    path: tuple[str, ...]
    dist: Distribution

    @property
    def name(self) -> str:
        return ".".join(self.path)


def _show(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bad(raw: str, problem: str) -> ValueError:
    return ValueError(f"--param {raw!r}: {problem}")


def _number(raw: str, token: str) -> float:
    if not _FLOAT.match(token):
        raise _bad(raw, f"{token!r} is not a number")
    value = float(token)
    if not math.isfinite(value):
        raise _bad(raw, f"{token!r} is not a finite number")
    return value


def _scalar(raw: str, token: str) -> Scalar:
    """A categorical choice: true/false/null, an integer, a float, or a (quoted) word."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    if not _WORD.match(token):
        raise _bad(raw, f"choice {token!r} is not a number, true/false/null or a plain word")
    return token


def parse_param(raw: str) -> ParamSpec:
    """Parse `PATH=KIND(ARGS)` with a small grammar (no eval); ValueError names the spec.

    KIND is uniform(lo,hi), loguniform(lo,hi) (lo > 0), int(lo,hi) or int(lo,hi,log), or
    categorical(a,b,...) whose choices are numbers, true/false/null or words (quoted words
    may not contain commas).
    """
    m = _SPEC.match(raw)
    if m is None:
        if "=" not in raw:
            raise _bad(raw, "expected PATH=KIND(ARGS), e.g. darts_minus.beta0=uniform(0,2)")
        path = raw.split("=", 1)[0].strip()
        if not re.fullmatch(rf"{_NAME}(\.{_NAME})*", path):
            raise _bad(raw, f"{path!r} is not a dotted name like darts_minus.beta0")
        raise _bad(raw, f"expected KIND(ARGS) after '=' with KIND one of {', '.join(KINDS)}")
    kind = m["kind"]
    if kind not in KINDS:
        raise _bad(raw, f"unknown distribution {kind!r} (known: {', '.join(KINDS)})")
    args = [a.strip() for a in m["args"].split(",")] if m["args"].strip() else []
    if any(not a for a in args):
        raise _bad(raw, "empty argument")
    path = tuple(m["path"].split("."))
    if kind == "categorical":
        if len(args) < 2:
            raise _bad(raw, "categorical needs at least two choices")
        choices = tuple(_scalar(raw, a) for a in args)
        if len({(type(c), c) for c in choices}) != len(choices):
            raise _bad(raw, "categorical choices repeat")
        return ParamSpec(raw, path, Distribution("categorical", choices=choices))
    log = False
    if kind == "int" and len(args) == 3 and args[2] == "log":
        args, log = args[:2], True
    if len(args) != 2:
        tail = " (and optionally log)" if kind == "int" else ""
        raise _bad(raw, f"{kind} takes two bounds (lo,hi){tail}, got {len(args)} argument(s)")
    if kind == "int":
        for a in args:
            if not _INT.match(a):
                raise _bad(raw, f"int bounds must be integers, got {a!r}")
        low, high = int(args[0]), int(args[1])
        if log and low < 1:
            raise _bad(raw, f"int(...,log) needs lo >= 1, got {low}")
        if low >= high:
            raise _bad(raw, f"lo must be below hi, got {low} >= {high}")
        return ParamSpec(raw, path, Distribution("int", low, high, log=log))
    flo, fhi = _number(raw, args[0]), _number(raw, args[1])
    if kind == "loguniform" and flo <= 0:
        raise _bad(raw, f"loguniform needs lo > 0, got {args[0]}")
    if flo >= fhi:
        raise _bad(raw, f"lo must be below hi, got {args[0]} >= {args[1]}")
    return ParamSpec(raw, path, Distribution(kind, flo, fhi))  # type: ignore[arg-type]


# ---------------------------------------------------------------- resolution against a suite


@dataclass(frozen=True)
class TunedParam:
    """A spec resolved against an experiment: where it goes and what the suite says."""

    spec: ParamSpec
    name: str  # canonical: `<method>.<arg>` or `<group>.<key>`; the Optuna parameter name
    group: str  # "method_args" or one of GROUPS
    key: str
    method: str | None
    paper: Any  # at the paper's settings (full budget)
    paper_source: Literal["suite", "default", "unset"]
    at_budget: Any  # what the tuned budget resolves it to before tuning

    @property
    def config_path(self) -> str:
        if self.method is not None:
            return f"method_args.{self.method}.{self.key}"
        return f"{self.group}.{self.key}"

    def apply(self, config: dict[str, Any], value: Scalar) -> None:
        if self.method is not None:
            config["method_args"].setdefault(self.method, {})[self.key] = value
        else:
            config[self.group][self.key] = value


def _named_params(fn: Any, skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], bool]:
    """(keyword parameters with defaults or inspect.Parameter.empty, takes **kwargs)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {n: p.default for n, p in sig.parameters.items() if p.kind in kinds and n not in skip}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return named, var_kw


def _supernet_params(space_name: str) -> dict[str, Any]:
    """Keyword arguments of the space's supernet class (from build_supernet's return type)."""
    from nasrepro.spaces import build_space

    try:
        space = build_space(space_name)
        cls = typing.get_type_hints(type(space).build_supernet).get("return")
    except Exception:  # an unresolvable annotation: fall back to the suite's own keys
        return {}
    if not inspect.isclass(cls):
        return {}
    return _named_params(cls, _SUPERNET_FIXED)[0]


def _defaults(group: str, config: dict[str, Any]) -> dict[str, Any]:
    """Named arguments a non-method group's consumer takes, with their defaults."""
    from nasrepro import catalog
    from nasrepro.suite import SearchSettings

    if group == "search":
        return {k: f.default for k, f in SearchSettings.model_fields.items()}
    if group == "selector_args":
        known = _named_params(catalog.get("selector", config["selector"]), _SELECTOR_FIXED)[0]
    elif group == "evaluator_args":
        cls = catalog.get("evaluator", config["evaluator"])
        known = _named_params(cls)[0]
        known.update({k: inspect.Parameter.empty for k in getattr(cls, "_OPTIONS", ())})
    else:
        known = _supernet_params(config["space"])
    return known


def _check_method_arg(
    spec: ParamSpec, method: str, arg: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Construct the hook with every probe value; returns the hook's keyword defaults."""
    from nasrepro import catalog
    from nasrepro.methods.base import build_hooks

    named, var_kw = _named_params(catalog.get("method", method))
    if arg not in named and not var_kw:
        shown = ", ".join(named) or "none"
        raise _bad(spec.raw, f"method {method!r} has no argument {arg!r} (arguments: {shown})")
    for value in spec.dist.probes():
        try:
            build_hooks([method], {method: {**args, arg: value}})
        except (TypeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if arg not in named:
                raise _bad(spec.raw, f"method {method!r} does not take {arg!r}: {first}") from None
            raise _bad(spec.raw, f"method {method!r} rejects {arg}={value!r}: {first}") from None
    return named


def _check_search(spec: ParamSpec, key: str, search: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from nasrepro.suite import SearchSettings

    for value in spec.dist.probes():
        try:
            SearchSettings.model_validate({**search, key: value})
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise _bad(spec.raw, f"search.{key}={value!r} is invalid: {msg}") from None


def resolve_params(
    suite: Suite,
    suite_path: str | Path,
    experiment: str,
    budget: str,
    specs: list[ParamSpec],
) -> list[TunedParam]:
    """Map each spec to the experiment's config; ValueError names the bad `--param`.

    The first part of a path is a method of the experiment (`darts_minus.beta0`, also
    `method_args.darts_minus.beta0`) or a config group (`search`, `selector_args`,
    `evaluator_args`, `space_args`). Method arguments are checked by building the hook with
    the distribution's end points; search fields by validating SearchSettings with them.
    Selector, evaluator and space arguments must be keys the experiment sets or named
    arguments of its selector, evaluator or supernet; their values are checked when a
    trial runs.
    """
    from nasrepro.plan import resolve_experiment

    path = str(suite_path)
    if experiment not in suite.experiments:
        known = ", ".join(suite.experiments)
        raise ValueError(f"--experiment: no experiment {experiment!r} in the suite ({known})")
    methods = list(suite.experiments[experiment].methods)
    full, _, _ = resolve_experiment(suite, experiment, "full", path)
    at, _, _ = resolve_experiment(suite, experiment, budget, path)
    out: list[TunedParam] = []
    seen: dict[str, str] = {}
    for spec in specs:
        parts = spec.path
        method: str | None = None
        if parts[0] == "method_args" and len(parts) == 3:
            method, key = parts[1], parts[2]
            if method not in methods:
                raise _bad(
                    spec.raw,
                    f"{method!r} is not a method of experiment {experiment!r} "
                    f"(methods: {', '.join(methods) or 'none'})",
                )
        elif parts[0] in methods or parts[0] in GROUPS:
            if len(parts) != 2:
                raise _bad(spec.raw, f"expected {parts[0]}.<argument>, got {spec.name!r}")
            key = parts[1]
            method = parts[0] if parts[0] in methods else None
        else:
            raise _bad(
                spec.raw,
                f"{parts[0]!r} is neither a method of experiment {experiment!r} "
                f"(methods: {', '.join(methods) or 'none'}) nor a config group "
                f"({', '.join(GROUPS)})",
            )
        if method is not None:
            name, group = f"{method}.{key}", "method_args"
            defaults = _check_method_arg(spec, method, key, at["method_args"].get(method, {}))
            paper_args = full["method_args"].get(method, {})
            at_args = at["method_args"].get(method, {})
            default = defaults.get(key, inspect.Parameter.empty)
        else:
            group = parts[0]
            name = f"{group}.{key}"
            defaults = _defaults(group, at)
            exposed = {*defaults, *at[group], *full[group]}
            if key not in exposed:
                shown = ", ".join(sorted(exposed)) or "none"
                raise _bad(
                    spec.raw,
                    f"experiment {experiment!r} does not expose {group}.{key} (tunable: {shown})",
                )
            if group == "search":
                _check_search(spec, key, at["search"])
            paper_args, at_args = full[group], at[group]
            default = defaults.get(key, inspect.Parameter.empty)
        if name in seen:
            raise _bad(spec.raw, f"{name} is already tuned by --param {seen[name]!r}")
        seen[name] = spec.raw
        has_default = default is not inspect.Parameter.empty
        if key in paper_args:
            paper, source = paper_args[key], "suite"
        else:
            paper, source = (default, "default") if has_default else (None, "unset")
        at_value = at_args.get(key, paper)
        out.append(
            TunedParam(spec, name, group, key, method, paper, source, at_value)  # type: ignore[arg-type]
        )
    return out


# ----------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class TunedValue:
    """One tuned parameter of the result: the paper's value and the best trial's."""

    name: str
    config_path: str
    distribution: str
    paper: Any
    paper_source: str
    at_budget: Any
    tuned: Any


@dataclass
class TuneResult:
    suite: str
    suite_path: str
    experiment: str
    budget: str
    study: str
    storage: str  # password hidden
    objective: str
    direction: str
    best_value: float | None
    best_trial: int | None
    best_run_id: str | None
    params: list[TunedValue]
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    new_trials: int
    override_path: Path
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    seed: int = 0
    sampler_seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def best_params(self) -> dict[str, Any]:
        return {p.name: p.tuned for p in self.params}


def default_storage() -> str:
    return f"sqlite:///{Path.cwd() / 'optuna.db'}"


def _shown_storage(url: str) -> str:
    """The storage URL with any password hidden (it goes into tags and files)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: Optuna will refuse it with its own message
        return url


class _TrialTracker(Tracker):
    """The session's tracker, whose `start_run` adds an Optuna trial's tags and sampled
    values to the child run execute_trial opens, and remembers its id."""

    def __init__(self, base: Tracker, tags: dict[str, str], params: dict[str, str]) -> None:
        self.__dict__.update(base.__dict__)  # share the session's MLflow client
        self.extra_tags, self.extra_params = dict(tags), dict(params)
        self.last_run_id: str | None = None

    def start_run(
        self,
        experiment_id: str,
        name: str,
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        run_id = super().start_run(experiment_id, name, {**tags, **self.extra_tags}, parent_run_id)
        self.last_run_id = run_id
        self.log_params(run_id, self.extra_params)
        return run_id


def _count(trials: list[Any]) -> tuple[int, int, int]:
    from optuna.trial import TrialState

    states = [t.state for t in trials]
    return (
        states.count(TrialState.COMPLETE),
        states.count(TrialState.PRUNED),
        states.count(TrialState.FAIL),
    )


def tune_preflight(tracking_uri: str | None, storage: str | None, out: str | Path) -> None:
    """The tracking store, the study's storage and the suggestion's folder, checked in
    seconds before anything is imported, loaded or created (MLflow retries an unreachable
    server for minutes); PreflightError (one line) for the first that cannot be used."""
    from nasrepro.preflight import check_database_url, check_output_dir, check_tracking_uri
    from nasrepro.tracking import resolve_uri

    check_tracking_uri(resolve_uri(tracking_uri))
    check_database_url(storage or default_storage(), "--storage")
    check_output_dir(out, "--out")


def tune_experiment(
    suite_path: str | Path,
    experiment: str,
    params: list[str],
    trials: int,
    *,
    budget: str = "smoke",
    storage: str | None = None,
    study: str | None = None,
    tracking_uri: str | None = None,
    data_root: str | None = None,
    device: str | None = None,
    objective: str = "valid_acc",
    seed: int = 0,
    sampler_seed: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    out: str | Path = DEFAULT_OUT,
    progress: Progress = _stderr,
) -> TuneResult:
    """Run `trials` more Optuna trials of `experiment` at `budget`; write the suggestion.

    Objective: the search's *validation* metric at its final epoch, the supernet's
    accuracy (`valid_acc`, maximized, the default) or loss (`valid_loss`, minimized) on the
    α batches, i.e. the held-out half of the search data the bilevel method already uses
    for its outer problem. Never test accuracy, and never a benchmark lookup (NB201's
    table or the evaluator's score): choosing hyper-parameters on the numbers the claims are
    judged by would make the reproduction circular. Caveat worth keeping in mind for
    collapse papers: the supernet's validation accuracy is exactly the quantity that keeps
    rising while DARTS collapses, so it can favour collapsing settings; read the child
    runs' α and lookup curves before adopting a suggestion.

    Sampler: TPE, multivariate, seeded with `sampler_seed` (default `seed` + the number of
    trials already in the study, so a resumed study does not redraw its first points;
    parallel workers sharing a study should pass distinct sampler seeds). Every trial
    searches with the same `seed`, so trials differ only by their sampled values.

    Pruner: `MedianPruner(n_startup_trials=1, n_warmup_steps=0)` unless `pruner` is given.
    Search trials are few and expensive, so pruning starts once one trial has completed
    (the median of one trial is that trial); from then a trial whose per-epoch objective
    is worse than the median of earlier trials at the same epoch stops there. The
    objective's value is reported every epoch (`trial.report(value, epoch)`); epochs
    without α steps (value NaN) are not reported. A pruned trial's child run is tagged
    `optuna.state=PRUNED` and ends FAILED (execute_trial's handling of any exception).

    Storage: `storage` (any SQLAlchemy URL Optuna accepts) or `sqlite:///<cwd>/optuna.db`;
    study name `<suite>-<experiment>-<budget>` unless `study`; an existing study is loaded
    and extended (`load_if_exists`), so several workers can share one, provided it belongs
    to the same suite, experiment, budget and objective.

    Tracking: one parent MLflow run `tune:<experiment>@<budget>` per invocation, one nested
    child run `trial-<n>` per Optuna trial (params `tune.<param>`, metric
    `tune.objective`), `best_value` and `best.<param>` on the parent. No registry record is
    written. The suggestion goes to `<out>/<suite>.<experiment>.<budget>.yaml`.
    """
    tune_preflight(tracking_uri, storage, out)
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()
    import optuna

    from nasrepro.plan import BUDGETS, expand
    from nasrepro.runner import preflight, resolve_device
    from nasrepro.search.engine import SearchDiverged
    from nasrepro.suite import SearchSettings, load_suite
    from nasrepro.tracking import flatten
    from nasrepro.trial import execute_trial

    if objective not in OBJECTIVES:
        raise ValueError(f"--objective: unknown {objective!r} (known: {', '.join(OBJECTIVES)})")
    if budget not in BUDGETS:
        raise ValueError(f"--budget: unknown {budget!r} (known: {', '.join(BUDGETS)})")
    if trials < 1:
        raise ValueError(f"--trials: must be at least 1, got {trials}")
    if not params:
        raise ValueError("--param: give at least one parameter to tune")
    specs = [parse_param(p) for p in params]
    suite = load_suite(suite_path)
    base = expand(suite, suite_path, budget, [experiment], seeds=1)[0]
    base = replace(base, seed=seed)
    tuned = resolve_params(suite, suite_path, experiment, budget, specs)
    dev = resolve_device(device)
    preflight([base], data_root)
    storage_url = storage or default_storage()

    direction = OBJECTIVES[objective]
    shown_storage = _shown_storage(storage_url)
    study_name = study or f"{suite.suite}-{experiment}-{budget}"
    owner = {
        "nasrepro.suite": suite.suite,
        "nasrepro.experiment": experiment,
        "nasrepro.budget": budget,
        "nasrepro.objective": objective,
    }
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        try:
            ostudy = optuna.create_study(
                storage=storage_url,
                study_name=study_name,
                direction=direction,
                pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
                load_if_exists=True,
            )
        except Exception as exc:  # a bad URL or an unreachable database, on one line
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"--storage {shown_storage!r}: {text}") from None
        if ostudy.direction.name.lower() != direction:
            raise ValueError(
                f"--study {study_name!r}: the stored study {ostudy.direction.name.lower()}s, "
                f"objective {objective!r} needs {direction}"
            )
        attrs = ostudy.user_attrs
        for key, value in owner.items():
            if key in attrs and attrs[key] != value:
                raise ValueError(
                    f"--study {study_name!r}: belongs to {key.split('.')[1]} {attrs[key]!r}, "
                    f"not {value!r}"
                )
            if key not in attrs:
                ostudy.set_user_attr(key, value)
        n_before = len(ostudy.get_trials(deepcopy=False))
        s_seed = seed + n_before if sampler_seed is None else sampler_seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ostudy.sampler = optuna.samplers.TPESampler(multivariate=True, seed=s_seed)

        tracker = Tracker(tracking_uri, kind="tuning")
        exp_id = tracker.experiment_id(suite.suite)
        parent = tracker.start_run(
            exp_id,
            f"tune:{experiment}@{budget}",
            {
                "suite": suite.suite,
                "mlflow.source.name": str(suite_path),  # the suite file, as for `run`
                "experiment": experiment,
                "budget": budget,
                "study": study_name,
                "storage": shown_storage,
                "nasrepro.kind": "tuning",
                "tune.role": "study",
                "objective": objective,
                "direction": direction,
                "method": "+".join(base.config["methods"]) or "darts",
                "space": base.config["space"],
                "dataset": base.config["dataset"],
            },
        )
        tracker.log_params(
            parent,
            {
                **flatten(base.config),
                **{f"tune.space.{p.name}": str(p.spec.dist) for p in tuned},
                "tune.trials": str(trials),
                "tune.seed": str(seed),
                "tune.sampler_seed": str(s_seed),
            },
        )
        label = f"[tune {suite.suite}/{experiment} {budget}]"
        progress(
            f"{label} study {study_name!r} in {shown_storage} ({n_before} trial(s) so far); "
            f"{trials} more on {dev}, {direction} final-epoch {objective}"
        )

        def run_one(ot: optuna.Trial) -> float:
            values = {p.name: p.spec.dist.suggest(ot, p.name) for p in tuned}
            config = copy.deepcopy(base.config)
            for p in tuned:
                p.apply(config, values[p.name])
            config["search"] = SearchSettings.model_validate(config["search"]).config()
            run_tracker = _TrialTracker(
                tracker,
                {
                    "nasrepro.kind": "tuning",
                    "tune.role": "trial",
                    "optuna.study": study_name,
                    "optuna.trial_number": str(ot.number),
                },
                {f"tune.{k}": _show(v) for k, v in values.items()},
            )
            shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
            last: list[float] = []

            def on_epoch(log: EpochLog) -> None:
                value = log.valid_acc if objective == "valid_acc" else log.valid_loss
                last[:] = [value]
                if not math.isfinite(value):
                    return  # no α step this epoch: nothing to compare
                ot.report(value, log.epoch)
                if ot.should_prune():
                    run_id = run_tracker.last_run_id
                    if run_id is not None:
                        run_tracker.set_tags(
                            run_id,
                            {"optuna.state": "PRUNED", "optuna.pruned_at_epoch": str(log.epoch)},
                        )
                    raise optuna.TrialPruned(
                        f"trial {ot.number} pruned at epoch {log.epoch} ({objective} {value:.4g})"
                    )

            try:
                record = execute_trial(
                    replace(base, config=config),
                    tracker=run_tracker,
                    experiment_id=exp_id,
                    parent_run_id=parent,
                    data_root=data_root,
                    device=dev,
                    progress=progress,
                    on_epoch=on_epoch,
                    run_name=f"trial-{ot.number}",
                    evaluate=False,  # tuning sees validation numbers only
                )
            except optuna.TrialPruned as exc:
                progress(f"{label} {exc} [{shown}]")
                raise
            except SearchDiverged as exc:
                run_id = run_tracker.last_run_id
                if run_id is not None:
                    run_tracker.set_tags(run_id, {"optuna.state": "FAIL"})
                progress(f"{label} trial {ot.number} diverged [{shown}]: {exc}")
                raise
            # the registry record is dropped: tuning results are not reproduction results
            run_id = record["mlflow"]["run_id"]
            ot.set_user_attr("mlflow_run_id", run_id)
            value = last[0] if last else float("nan")
            state = "COMPLETE" if math.isfinite(value) else "FAIL"
            tracker.set_tags(run_id, {"optuna.state": state, "tune.objective_name": objective})
            if math.isfinite(value):
                tracker.log_metrics(run_id, {"tune.objective": value}, ot.number)
            progress(f"{label} trial {ot.number}: {objective} {value:.4g} [{shown}]")
            return value  # NaN (no α step in the last epoch) makes Optuna fail the trial

        study_bar = Bar(f"{label} study", trials, "trial")  # rate and ETA over the trials
        try:
            with study_bar:
                ostudy.optimize(
                    run_one,
                    n_trials=trials,
                    catch=(SearchDiverged,),
                    callbacks=[lambda _study, _trial: study_bar.update()],
                )
        except KeyboardInterrupt:
            tracker.end_run(parent, "KILLED")
            raise
        except Exception as exc:
            tracker.end_run(parent, "FAILED")
            raise TuneFailed(f"{suite_path}: experiments.{experiment}: {exc}") from exc
    finally:
        optuna.logging.set_verbosity(verbosity)

    all_trials = ostudy.get_trials(deepcopy=False)
    n_complete, n_pruned, n_failed = _count(all_trials)
    best = None
    if n_complete:
        best = ostudy.best_trial
    notes: list[str] = []
    if best is None:
        notes.append("no trial completed: nothing to suggest")
    values = [
        TunedValue(
            p.name,
            p.config_path,
            str(p.spec.dist),
            p.paper,
            p.paper_source,
            p.at_budget,
            None if best is None else best.params.get(p.name),
        )
        for p in tuned
    ]
    result = TuneResult(
        suite=suite.suite,
        suite_path=str(suite_path),
        experiment=experiment,
        budget=budget,
        study=study_name,
        storage=shown_storage,
        objective=objective,
        direction=direction,
        best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
        best_trial=None if best is None else best.number,
        best_run_id=None if best is None else best.user_attrs.get("mlflow_run_id"),
        params=values,
        n_trials=len(all_trials),
        n_complete=n_complete,
        n_pruned=n_pruned,
        n_failed=n_failed,
        new_trials=len(all_trials) - n_before,
        override_path=Path(out) / f"{suite.suite}.{experiment}.{budget}.yaml",
        tracking_uri=tracker.uri,
        experiment_id=exp_id,
        parent_run_id=parent,
        seed=seed,
        sampler_seed=s_seed,
        notes=notes,
    )
    write_override(result)
    summary = {"n_trials": len(all_trials), "n_complete": n_complete, "n_pruned": n_pruned}
    summary["n_failed"] = n_failed
    if result.best_value is not None:
        summary["best_value"] = result.best_value
        tracker.log_params(
            parent,
            {f"best.{v.name}": _show(v.tuned) for v in values}
            | {"best.trial": str(result.best_trial)},
        )
    tracker.log_metrics(parent, summary, 0)
    tracker.log_file(parent, result.override_path, "tune")
    tracker.end_run(parent)
    return result


# ------------------------------------------------------------------------- the suggestion


def _plain(value: Any) -> Any:
    """Only YAML's plain types in the file (tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_override(result: TuneResult) -> Path:
    """Write the suggested override file (atomically); it is never applied to the suite."""
    override: dict[str, Any] = {}
    for v in result.params:
        if v.tuned is None:
            continue
        parts = v.config_path.split(".")
        node = override
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = v.tuned
    data = {
        "suite": result.suite,
        "suite_file": result.suite_path,
        "experiment": result.experiment,
        "budget": result.budget,
        "study": {"name": result.study, "storage": result.storage},
        "objective": {
            "metric": result.objective,
            "direction": result.direction,
            "of": "final search epoch, supernet on the alpha (validation) batches",
            "best_value": result.best_value,
            "best_trial": result.best_trial,
            "best_mlflow_run": result.best_run_id,
        },
        "trials": {
            "total": result.n_trials,
            "complete": result.n_complete,
            "pruned": result.n_pruned,
            "failed": result.n_failed,
            "this_invocation": result.new_trials,
        },
        "seed": result.seed,
        "params": {
            v.name: {
                "path": v.config_path,
                "distribution": v.distribution,
                "paper": v.paper,
                "paper_source": v.paper_source,
                "at_budget": v.at_budget,
                "tuned": v.tuned,
            }
            for v in result.params
        },
        "override": {"experiments": {result.experiment: override}} if override else None,
        "notes": result.notes,
    }
    header = (
        f"# Suggested by `nasrepro tune` for {result.suite}/{result.experiment} at budget "
        f"{result.budget!r}.\n"
        "# A SUGGESTION, NOT APPLIED: the suite keeps the paper's values. To try these, add a\n"
        "# named variant experiment to the suite with the `override` values below; tuned\n"
        "# results are not the paper's settings and must not be reported as its reproduction.\n"
        f"# Objective: final-epoch {result.objective} of the search ({result.direction}); "
        "no test or benchmark numbers used.\n"
    )
    text = header + yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True)
    path = result.override_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".yaml", dir=path.parent)
    try:
        publish_mode(fd)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------------- CLI


def add_tune_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `nasrepro tune` on the CLI's subparsers."""
    from nasrepro.plan import BUDGETS

    t = subparsers.add_parser(
        "tune",
        help="Optuna study over an experiment's hyper-parameters (suggests, never applies)",
        description=(
            "Tune an experiment's hyper-parameters on the search's validation metric. "
            "Writes a suggested override under suites/tuned/; writes no registry records."
        ),
    )
    t.add_argument("suite", help="suite file, e.g. suites/lambda_darts.yaml")
    t.add_argument("--experiment", required=True, metavar="ID", help="the experiment to tune")
    t.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="SPEC",
        help="PATH=KIND(ARGS), e.g. darts_minus.beta0=uniform(0,2) (repeatable)",
    )
    t.add_argument("--trials", type=int, required=True, metavar="N", help="trials to add")
    t.add_argument(
        "--budget",
        choices=BUDGETS,
        default="smoke",
        help="budget of every trial (default: smoke, unlike `run`'s full: a study runs many "
        "trials, so check the set-up at smoke, then tune at reduced or full)",
    )
    t.add_argument("--storage", help="Optuna storage URL (default: sqlite:///./optuna.db)")
    t.add_argument("--study", help="study name (default: <suite>-<experiment>-<budget>)")
    t.add_argument(
        "--tracking-uri", help="MLflow URI (default: MLFLOW_TRACKING_URI or sqlite:///./mlflow.db)"
    )
    t.add_argument(
        "--data-root",
        help="datasets directory (default: NASREPRO_DATA_ROOT, else ~/.cache/nasrepro/data)",
    )
    t.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    t.add_argument(
        "--objective",
        choices=tuple(OBJECTIVES),
        default="valid_acc",
        help="the supernet's final-epoch validation metric to optimise",
    )
    t.add_argument("--seed", type=int, default=0, help="search seed of every trial")
    t.add_argument("--sampler-seed", type=int, help="default: seed + trials already in study")
    t.add_argument("--out", default=DEFAULT_OUT, help="folder of the suggested override")
    t.set_defaults(func=cmd_tune)


def _fail(message: str, code: int = 2) -> int:
    print(f"nasrepro: error: {message}", file=sys.stderr)
    return code


def cmd_tune(args: argparse.Namespace) -> int:
    """`nasrepro tune`: 0 done, 1 a trial failed while running, 2 invalid input."""
    from nasrepro.preflight import PreflightError

    if args.trials < 1:
        return _fail(f"--trials: must be at least 1, got {args.trials}")
    try:  # before torch is imported: seconds
        tune_preflight(args.tracking_uri, args.storage, args.out)
    except PreflightError as exc:
        return _fail(str(exc), exc.exit_code)
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()
    from nasrepro.datasets.base import DatasetNotFound
    from nasrepro.evaluate.nb201 import Nb201FileError
    from nasrepro.suite import SuiteError

    try:
        result = tune_experiment(
            args.suite,
            args.experiment,
            args.param,
            args.trials,
            budget=args.budget,
            storage=args.storage,
            study=args.study,
            tracking_uri=args.tracking_uri,
            data_root=args.data_root,
            device=args.device,
            objective=args.objective,
            seed=args.seed,
            sampler_seed=args.sampler_seed,
            out=args.out,
        )
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except PreflightError as exc:  # a store, server or folder: named in the line itself
        return _fail(str(exc), exc.exit_code)
    except (DatasetNotFound, Nb201FileError, ValueError) as exc:
        return _fail(f"{args.suite}: {exc}")
    except TuneFailed as exc:
        return _fail(str(exc), 1)
    print(
        f"Study:       {result.study} in {result.storage}: {result.n_trials} trial(s) "
        f"({result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed; "
        f"{result.new_trials} new)"
    )
    if result.best_value is None:
        print("Best:        none (no trial completed)")
    else:
        print(
            f"Best:        final {result.objective} {result.best_value:.4g} "
            f"(trial {result.best_trial}, MLflow run {result.best_run_id})"
        )
        for v in result.params:
            print(f"  {v.name}: paper {_show(v.paper)} -> tuned {_show(v.tuned)}")
    print(f"Suggestion:  {result.override_path} (not applied to {result.suite_path})")
    print(
        f"MLflow runs: {result.tracking_uri} (experiment id {result.experiment_id}, "
        f"parent run {result.parent_run_id})"
    )
    return 0
