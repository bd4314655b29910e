"""The tiny one-experiment suite that the run/resume/tracking tests share (a test fixture).

The experiment is NB201 DARTS 1st order at the Λ-DARTS paper's settings; the smoke budget
shrinks it to digits at 8x8, C channels and 1 cell per stage, so a trial takes seconds.
"""

from __future__ import annotations


def nb201_darts_suite(
    name: str,
    *,
    seeds: int,
    smoke_seeds: int,
    smoke_epochs: int,
    smoke_steps: int = 2,
    channels: int = 2,
    claim: str = "",
) -> str:
    """YAML text of suite `name` with experiment `d1` and claim `c1` on it; `claim` adds
    fields to c1 (e.g. "std: 0.5, n_seeds: 4")."""
    extra = f", {claim}" if claim else ""
    return f"""\
suite: {name}
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: {name}}}
budgets:
  smoke:
    description: "tests only: digits, {smoke_epochs} epoch(s) of {smoke_steps} steps"
    seeds: {smoke_seeds}
    dataset: digits
    search: {{epochs: {smoke_epochs}, steps_per_epoch: {smoke_steps}, batch_size: 16, image_size: 8}}
    space_args: {{c: {channels}, n: 1}}
experiments:
  d1:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {{epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: {seeds}
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30{extra}, experiment: d1}}
"""


def trial_records(registry):  # type: ignore[no-untyped-def]
    """The trial records under a registry folder (a pathlib.Path), sorted: not the unit
    records and kept states of the shared store (`_units/`, nasrepro/store.py)."""
    return sorted(
        p for p in registry.rglob("*.json") if not p.relative_to(registry).parts[0].startswith("_")
    )
