"""What a trial is and how it is identified: the layer below planning, running and executors.

A trial's identity is what it computes — its resolved configuration (space, methods and
their arguments, dataset, search/selection/evaluation settings), its seed and the harness's
FIDELITY_VERSION — never the suite file that asked for it. Two suites whose experiments
resolve to the same configuration therefore share trials and records, and editing a suite's
claims, notes or comments changes no trial.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from nasrepro.suite import SearchSettings

# Bump when a change to the harness changes what an unchanged configuration computes (a
# fixed split, a corrected update rule): records of older versions are then set aside and
# their trials run again. Records written before versioning existed count as version 0.
# 2: DARTS-type spaces search on training-set halves (CIFAR-100 no longer steers α with
# test images), the PC-DARTS ImageNet stem, DARTS-PT genotypes from kept edges only.
# 3: Λ-DARTS' extra passes move the BN running statistics and run at λ_t = 0 too (forward
# only; with `noise: fresh` they draw as the reference's do), as the authors' code.
FIDELITY_VERSION = 3


def stable_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def group_key(config: dict[str, Any], fidelity: int = FIDELITY_VERSION) -> str:
    """Identity of the seeds of one configuration (an experiment at a budget)."""
    return stable_hash({"config": config, "fidelity": fidelity})


def trial_key(config: dict[str, Any], seed: int, fidelity: int = FIDELITY_VERSION) -> str:
    """Identity of one trial: configuration, seed and fidelity version."""
    return stable_hash({"config": config, "seed": seed, "fidelity": fidelity})


# ------------------------------------------------------------------------ units of work
# A trial is assembled from units (docs/plan.md, "Units of work"): its search, its selection
# and one retraining per (cell, dataset, recipe, seed). Each unit is identified by what it
# computes, so every experiment and suite that needs the same one shares its record. A unit
# record holds `kind`, `identity`, `seed` and `fidelity_version`, from which `unit_key`
# re-derives its `key`.
UNIT_KINDS = ("search", "selection", "retrain")
# The configuration keys a search depends on: not the selector, evaluator or eval datasets.
SEARCH_KEYS = ("space", "space_args", "dataset", "methods", "method_args", "search")
# Run options of the `retrain` evaluator that change nothing it computes.
RETRAIN_NEUTRAL = ("download", "recipes")


def unit_key(
    kind: str, identity: dict[str, Any], seed: int, fidelity: int = FIDELITY_VERSION
) -> str:
    """Identity of one unit of work: its kind, what it computes, its seed, the fidelity."""
    if kind not in UNIT_KINDS:
        raise ValueError(f"unknown unit kind {kind!r} (known: {', '.join(UNIT_KINDS)})")
    return stable_hash({"unit": kind, "identity": identity, "seed": seed, "fidelity": fidelity})


def search_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What a trial's search computes: the supernet, data, methods and search settings."""
    return {k: config[k] for k in SEARCH_KEYS}


def selection_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What a trial's selection computes: its search's result, read by the selector."""
    return {
        "search": search_identity(config),
        "selector": config["selector"],
        "selector_args": config["selector_args"],
    }


def retrain_identity(config: dict[str, Any], dataset: str, genotype: str) -> dict[str, Any]:
    """What one retraining computes: the cell (its canonical genotype string), the dataset,
    the resolved recipe for that dataset and the run options that change the training
    (substituted data, step caps, image size, loader workers, processes, report rule), and
    the numerics the trial sets (deterministic algorithms, TF32). Another experiment that
    retrains the same cell on the same dataset with the same recipe and seed shares it."""
    from nasrepro.evaluate.retrain import RetrainEvaluator

    evaluator = RetrainEvaluator(**config["evaluator_args"])
    search = config.get("search") or {}
    run = {k: v for k, v in evaluator.run.items() if k not in RETRAIN_NEUTRAL}
    # `source` cites where a recipe comes from: documentation, not part of the training
    recipe = {k: v for k, v in evaluator.recipes[dataset].items() if k != "source"}
    return {
        "space": config["space"],
        "genotype": genotype,
        "dataset": dataset,
        "recipe": recipe,
        "run": run,
        "deterministic": bool(search.get("deterministic", True)),
        "tf32": bool(search.get("tf32", False)),
    }


@dataclass(frozen=True)
class Trial:
    """One search + selection + evaluation; `config_hash` is its identity everywhere.

    suite/experiment/budget/claim_ids say who asked for it (they label the record and the
    MLflow runs); they do not enter its identity.
    """

    suite: str
    suite_version: int
    suite_path: str
    suite_hash: str
    experiment: str
    budget: str
    budget_description: str
    seed: int
    claim_ids: tuple[str, ...]
    config: dict[str, Any] = field(hash=False)

    @property
    def group_hash(self) -> str:
        return group_key(self.config)

    @property
    def config_hash(self) -> str:
        return trial_key(self.config, self.seed)

    @property
    def search_key(self) -> str | None:
        """The trial's search unit (None for a published cell or benchmark queries: no
        supernet is searched)."""
        if not self.searched:
            return None
        return unit_key("search", search_identity(self.config), self.seed)

    @property
    def selection_key(self) -> str | None:
        if not self.searched:
            return None
        return unit_key("selection", selection_identity(self.config), self.seed)

    @property
    def given_cell(self) -> bool:
        """The experiment scores a published cell (`genotype:`): no search, no selection."""
        return "genotype" in self.config

    @property
    def searched(self) -> bool:
        """A supernet is searched, then selected from: the trial has search and selection
        units."""
        return not (self.given_cell or self.benchmark_query)

    @property
    def benchmark_query(self) -> bool:
        """The experiment searches by benchmark queries (`query:`): no supernet, no data."""
        return "query" in self.config

    @property
    def search(self) -> SearchSettings:
        return SearchSettings.model_validate(self.config["search"])


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker process needs to run one trial and record it (picklable)."""

    trial: Trial
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    data_root: str | None
    device: str
    registry: str
    checkpoint_dir: str
    rerun: bool = False
    # Processes of a data-parallel search; None = one per GPU of `device` for ImageNet
    # searches whose methods allow it, else 1 (see execute.search_processes).
    search_processes: int | None = None
    fast: bool = False  # fused NB201 mixed ops, CUDA graphs (execute_trial)
    # Config hashes of the parent run's trials: the last of them to finish ends the parent.
    siblings: tuple[str, ...] = ()
    # Datasets to retrain (None: every evaluated dataset); the others get params and FLOPs.
    retrain: list[str] | None = None
    # Other seeds searched with this one in one packed step (nasrepro/packed_trials.py):
    # the job then only searches; each seed's own job selects, evaluates and records it.
    pack: tuple[Trial, ...] = ()
    pack_measured: bool = True  # pack only if the measured packed step pays
    # Sequential seeds (nasrepro/sequential.py): (minimum, the experiment's n); the record
    # says whether its verdicts stop the experiment here.
    sequential: tuple[int, int] | None = None
    # Images held and augmented on the device (datasets/device_data.py); None: on a GPU.
    data_on_device: bool | None = None
    hours: float | None = None  # the plan's estimate (cluster time limits; packed searches)


@dataclass(frozen=True)
class UnitJob:
    """One unit of work for an executor (picklable): a `search` job computes a trial's
    search and its selection (two units, `search_key` and `selection_key` of `trial`), a
    `retrain` job one retraining (`key`) of `genotype` on `dataset` with the trial's recipe
    and seed. `trial` is the trial it is computed for: it names the MLflow child run
    (`run_id`) and labels the unit record; every other trial needing the unit reuses it."""

    kind: str  # "search" | "retrain"
    trial: Trial
    key: str  # the selection unit (search jobs) or the retraining unit
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    run_id: str | None  # the trial's child run, opened by the runner (None: open one)
    data_root: str | None
    device: str
    registry: str
    checkpoint_dir: str
    dataset: str | None = None  # retrain jobs
    genotype: str | None = None  # retrain jobs
    search_processes: int | None = None
    fast: bool = False
    gpus: int = 1  # the GPU request of a cluster job (from the plan)
    hours: float | None = None  # the plan's estimate (cluster time limits)
    # Images held and augmented on the device (datasets/device_data.py); None: on a GPU.
    data_on_device: bool | None = None

    @property
    def label(self) -> str:
        t = self.trial
        what = f" retrain {self.dataset}" if self.kind == "retrain" else ""
        return f"[{t.suite}/{t.experiment} {t.budget} seed {t.seed}{what}]"


@dataclass(frozen=True)
class PackedJob:
    """Several small retraining jobs run at once on one device (one cluster job): each is
    its own process, so each keeps its own seed, RNG streams and checkpoints."""

    jobs: tuple[UnitJob, ...]

    @property
    def label(self) -> str:
        return f"[packed: {len(self.jobs)} retrainings]"


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """`key: old → new` for every dotted key whose value differs (sorted)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{where}: (absent) → {json.dumps(new[key], default=str)}")
            elif key not in new:
                out.append(f"{where}: {json.dumps(old[key], default=str)} → (absent)")
            else:
                out.extend(config_diff(old[key], new[key], where))
        return out
    if json.dumps(old, default=str) == json.dumps(new, default=str):
        return []
    return [
        f"{prefix or '<config>'}: {json.dumps(old, default=str)} → {json.dumps(new, default=str)}"
    ]
