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
    def given_cell(self) -> bool:
        """The experiment scores a published cell (`genotype:`): no search, no selection."""
        return "genotype" in self.config

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
    # Other seeds searched with this one in one packed step (nasrepro/packed_trials.py):
    # the job then only searches; each seed's own job selects, evaluates and records it.
    pack: tuple[Trial, ...] = ()
    pack_measured: bool = True  # pack only if the measured packed step pays
    # Sequential seeds (nasrepro/sequential.py): (minimum, the experiment's n); the record
    # says whether its verdicts stop the experiment here.
    sequential: tuple[int, int] | None = None
    # Images held and augmented on the device (datasets/device_loader.py); None: on a GPU.
    data_on_device: bool | None = None


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
