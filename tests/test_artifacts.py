"""Artifact experiments: published cells scored without a search (params, FLOPs, lookups)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasrepro import catalog
from nasrepro.plan import expand
from nasrepro.suite import load_suite
from nasrepro.tracking import NullTracker
from nasrepro.trial import execute_trial

SUITE = """\
suite: art
version: 1
paper: {file: p.txt, title: Artifacts}
budgets:
  smoke:
    description: tiny
    seeds: 1
    evaluator_args:
      retrain: {dataset: digits, epochs: 1, max_steps: 2, layers: 2, init_channels: 4}
experiments:
  v2:
    genotype: DARTS_V2
    space: darts
    dataset: cifar10
    evaluator: complexity
    evaluator_args: {cifar: {layers: 5, init_channels: 8}}
    eval_datasets: [cifar10, cifar100]
    seeds: 1
  v2-retrain:
    genotype: DARTS_V2
    space: darts
    dataset: cifar10
    evaluator: retrain
    evaluator_args: {recipes: {cifar10: {epochs: 600}}}
    eval_datasets: [cifar10]
    seeds: 10
claims:
  - {id: p, paper_file: p.txt, table: T, row: DARTS, method: DARTS, space: darts,
     dataset: cifar10, metric: params_m, value: 0.1, protocol: cell_property, experiment: v2}
  - {id: r, paper_file: p.txt, table: T, row: DARTS, method: DARTS, space: darts,
     dataset: cifar10, metric: test_err, value: 2.76, std: 0.09, n_seeds: 10,
     protocol: retrain_k, experiment: v2-retrain}
"""


def test_published_parameter_counts_match_their_printed_digits():
    """quark0's count (auxiliary tower excluded) of the published cells at the published sizes:
    DARTS (2nd order) 3.3M on CIFAR-10 and 4.7M on ImageNet; PC-DARTS 3.6M on CIFAR-10."""
    ev = catalog.get("evaluator", "complexity")()
    v2 = ev.score("DARTS_V2", ["cifar10", "imagenet"], ["test_acc"]).metrics
    assert v2["cifar10"]["params_m"] == pytest.approx(3.349342, abs=1e-9)  # = `nasrepro info`
    assert round(v2["cifar10"]["params_m"], 1) == 3.3
    assert round(v2["imagenet"]["params_m"], 1) == 4.7
    pc = ev.score("PC_DARTS", ["cifar10"], []).metrics
    assert round(pc["cifar10"]["params_m"], 1) == 3.6
    # 100 classes: the classifier grows by (100 − 10) · (576 + 1) parameters (576 features)
    c100 = ev.score("DARTS_V2", ["cifar100"], []).metrics["cifar100"]["params_m"]
    assert (c100 - v2["cifar10"]["params_m"]) * 1e6 == pytest.approx(90 * 577)


def test_complexity_options_and_errors():
    ev = catalog.get("evaluator", "complexity")
    small = ev(cifar={"layers": 5, "init_channels": 8}).score("DARTS_V1", ["cifar10"], [])
    assert small.metrics["cifar10"]["params_m"] < 0.2
    assert small.source["networks"]["cifar10"]["layers"] == 5
    with pytest.raises(ValueError, match="takes options"):
        ev(layers=5)
    with pytest.raises(ValueError, match="unknown size option"):
        ev(cifar={"depth": 3})
    with pytest.raises(ValueError, match="unknown dataset"):
        ev().score("DARTS_V1", ["mnist"], [])


def test_given_cell_trial_runs_no_search(tmp_path: Path):
    path = tmp_path / "art.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    (trial,) = expand(suite, path, "full", ["v2"])
    assert trial.given_cell
    record = execute_trial(
        trial,
        tracker=NullTracker(),
        experiment_id="",
        parent_run_id="",
        data_root=None,
        device="cpu",
        progress=lambda line: None,
    )
    assert record is not None and record["search"] is None
    assert record["given_genotype"] == "DARTS_V2"
    assert record["genotype"].startswith("Genotype(normal=[('sep_conv_3x3', 0)")
    assert set(record["metrics"]) == {"cifar10", "cifar100"}
    assert record["metrics"]["cifar10"]["params_m"] < 0.2
    assert record["evaluation"]["source"]["unavailable"] == ["test_acc", "valid_acc"]


def test_retrained_given_cell_takes_the_budget(tmp_path: Path):
    path = tmp_path / "art.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    full = expand(suite, path, "full", ["v2-retrain"])
    smoke = expand(suite, path, "smoke", ["v2-retrain"])
    assert len(full) == 10 and len(smoke) == 1  # K retrainings of one cell; smoke: 1 seed
    assert full[0].config["evaluator_args"] == {"recipes": {"cifar10": {"epochs": 600}}}
    assert smoke[0].config["evaluator_args"]["dataset"] == "digits"
    assert "search" not in smoke[0].config and smoke[0].config["genotype"] == "DARTS_V2"


def test_run_artifacts_selects_only_published_cells_with_deterministic_evaluators(tmp_path: Path):
    from nasrepro.cli import _artifact_experiments

    path = tmp_path / "art.yaml"
    path.write_text(SUITE)
    assert _artifact_experiments(str(path), None) == ["v2"]  # not the retraining of DARTS_V2
    assert _artifact_experiments(str(path), ["v2-retrain"]) == []
