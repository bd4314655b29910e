"""The best cell over a search's trajectory: an oracle statistic, not a selector.

EX/SS-DARTS Table 3's last row ("optimal") is "the best accuracies ever obtained by DARTS",
taken "as the upper bound of the performance of all stop methods" (§3): over the cells
DARTS derives at the end of every search epoch of a run, the highest test accuracy. It
reads test accuracy to choose, so no user could select that cell; the harness records it
as a measured statistic of an NB201 trial (`trajectory_best_test_acc`, per evaluated
dataset), beside the cell its selector chose, and reports it labelled as an oracle.

Per dataset, separately: a stop method keeps one epoch's cell, whose accuracy on each
dataset is at most that dataset's best over the epochs, so each column's bound is its own
maximum (the cells reaching them may differ between datasets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

METRIC = "trajectory_best_test_acc"


def epoch_cells(history: Sequence[Mapping[str, Any]], ops: Sequence[str]) -> list[tuple[int, str]]:
    """(epoch, NB201 arch string) of the argmax cell of each epoch's logged α (the cell the
    space derives, `nb201.derive_argmax`: per edge the first largest weight of `ops`)."""
    from nasrepro.spaces.nb201 import derive_argmax

    out = []
    for log in history:
        weights = torch.tensor(log["alpha"]["cell"], dtype=torch.float64)
        out.append((int(log["epoch"]), derive_argmax(weights, tuple(ops)).to_arch_str()))
    return out


def trajectory_best(
    cells: Sequence[tuple[int, str]],
    score: Callable[[str], Mapping[str, float]],
    datasets: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Per dataset: the highest test accuracy over `cells` ({dataset: accuracy} from
    `score`, called once per distinct cell), the first epoch reaching it and its cell."""
    if not cells:
        return {}
    scores: dict[str, Mapping[str, float]] = {}
    for _, arch in cells:
        if arch not in scores:
            scores[arch] = score(arch)
    out: dict[str, dict[str, Any]] = {}
    for ds in datasets:
        epoch, arch = max(cells, key=lambda c: (scores[c[1]][ds], -c[0]))
        out[ds] = {"test_acc": float(scores[arch][ds]), "epoch": epoch, "genotype": arch}
    return out


def applies(config: Mapping[str, Any]) -> bool:
    """Whether a trial has the oracle: an NB201 search scored by an NB201 table."""
    return config.get("space") == "nb201" and str(config.get("evaluator", "")).startswith("nb201")


def trajectory_oracle(
    config: Mapping[str, Any], history: Sequence[Mapping[str, Any]], evaluator: Any
) -> dict[str, dict[str, Any]]:
    """The oracle of a trial (`applies`; {} otherwise, or without a history): every epoch's
    argmax cell looked up by the trial's `evaluator` on each evaluated dataset."""
    if not applies(config):
        return {}
    from nasrepro.spaces.nb201 import kept_ops

    ops = kept_ops((config.get("space_args") or {}).get("drop_ops", ()))
    datasets = list(config["eval_datasets"])

    def score(arch: str) -> dict[str, float]:
        got = evaluator.score(arch, datasets, ["test_acc"]).metrics
        return {ds: float(got[ds]["test_acc"]) for ds in datasets}

    return trajectory_best(epoch_cells(history, ops), score, datasets)
