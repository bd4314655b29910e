"""Units of work: what the claims need, shared by every experiment that needs them, each
computed once (docs/plan.md, "Units of work")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from suite_fixtures import trial_records
from test_queries import two_op_benchmark  # noqa: F401  (a fixture: FIXTURE NB201 file)

import nasrepro.api as nr
from nasrepro.jobs import stable_hash, unit_key
from nasrepro.plan import build_plan, expand, trial_plans
from nasrepro.suite import load_suite
from nasrepro.units import ALL, FIRST, best_seed, experiment_needs, selected_mode, wanted

PAPER = "003_55655e6ae543df8d.txt"
# Tests only: RobustDARTS S2 (two ops per edge), a 3-cell supernet with 2 channels on digits
# 8x8, 2 epochs of 2 steps; retraining 1 epoch of 2 steps of a 2-cell, 4-channel network.
# `a` and `b` differ only in their evaluated datasets: they share searches, selections and
# CIFAR-10 retrainings.
SUITE = f"""\
suite: unittest
version: 1
paper: {{file: {PAPER}, title: units}}
budgets:
  smoke:
    description: "tests only: digits 8x8, S2 with 3 cells and 2 channels, 2 seeds"
    seeds: 2
    dataset: digits
    search: {{epochs: 2, steps_per_epoch: 2, batch_size: 8, image_size: 8}}
    space_args: {{c: 2, layers: 3}}
    evaluator_args:
      retrain: {{dataset: digits, epochs: 1, max_steps: 2, max_eval_batches: 1, batch_size: 8,
                layers: 2, init_channels: 4, image_size: 8, num_workers: 0}}
experiments:
  a:
    space: s2
    space_args: {{c: 16, layers: 8}}
    dataset: cifar10
    methods: [darts]
    search: &search {{epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}}
    evaluator: retrain
    evaluator_args: &retrain
      recipes:
        cifar10: {{layers: 20, init_channels: 36, epochs: 600, batch_size: 96}}
        cifar100: {{layers: 20, init_channels: 36, epochs: 600, batch_size: 96}}
        imagenet: {{layers: 14, init_channels: 48, epochs: 250, batch_size: 128}}
    eval_datasets: [cifar10]
    seeds: 2
  b:
    space: s2
    space_args: {{c: 16, layers: 8}}
    dataset: cifar10
    methods: [darts]
    search: *search
    evaluator: retrain
    evaluator_args: *retrain
    eval_datasets: [cifar10, cifar100, imagenet]
    seeds: 2
claims:
  - {{id: a-mean, paper_file: {PAPER}, table: T1, row: A, method: A, space: s2, dataset: cifar10,
     metric: test_err, value: 3.0, experiment: a}}
  - {{id: b-best, paper_file: {PAPER}, table: T1, row: B, method: B, space: s2, dataset: cifar100,
     metric: test_err, value: 20.0, protocol: best_by_valid, select_by: search_valid_acc,
     experiment: b}}
  - {{id: b-single, paper_file: {PAPER}, table: T1, row: B, method: B, space: s2, dataset: cifar10,
     metric: test_acc, value: 97.0, protocol: single, n_seeds: 1, experiment: b}}
  - {{id: b-params, paper_file: {PAPER}, table: T1, row: B, method: B, space: s2, dataset: imagenet,
     metric: params_m, value: 5.0, experiment: b}}
  - {{id: b-cost, paper_file: {PAPER}, table: T1, row: B, method: B, space: s2, dataset: cifar10,
     metric: search_cost_gpu_days, value: 0.4, experiment: b}}
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "units.yaml"
    path.write_text(SUITE)
    return path


def test_needs_follow_the_claims_protocols(suite: Path) -> None:
    s = load_suite(suite)
    a, b = experiment_needs(s, "a"), experiment_needs(s, "b")
    assert a.retrain == {"cifar10": frozenset({ALL})}
    # cifar100: best_by_valid picks one seed; cifar10: single = seed 0; imagenet: params only
    assert b.retrain == {"cifar100": frozenset({selected_mode(0)}), "cifar10": frozenset({FIRST})}
    assert b.complexity == {"imagenet": frozenset({ALL})}
    assert experiment_needs(s, "b", "all").retrain == dict.fromkeys(
        ["cifar10", "cifar100", "imagenet"], frozenset({ALL})
    )
    best_of_2 = frozenset({selected_mode(2)})
    assert wanted(best_of_2, 1, {2: None}) is None  # not known before the searches
    assert wanted(best_of_2, 1, {2: 1}) and not wanted(best_of_2, 0, {2: 1})
    assert not wanted(best_of_2, 2, {2: 1})  # not among the first 2
    assert wanted(frozenset({FIRST}), 0, {}) and not wanted(frozenset({FIRST}), 1, {})


def test_best_seed_is_the_verdicts_rule() -> None:
    assert best_seed({0: 50.0, 1: 52.0, 2: 52.0}) == 1  # ties: the lowest seed
    assert best_seed({0: 50.0, 1: None}) is None  # a search without a value yet
    assert best_seed({}) is None


def test_units_are_shared_and_the_plan_counts_each_once(suite: Path, tmp_path: Path) -> None:
    from nasrepro.estimate import unit_hours

    trials = expand(load_suite(suite), suite, "full")
    a0, b0 = trials[0], trials[2]
    assert (a0.experiment, b0.experiment, a0.seed, b0.seed) == ("a", "b", 0, 0)
    assert a0.config_hash != b0.config_hash  # two trials (their eval datasets differ) ...
    assert a0.search_key == b0.search_key and a0.selection_key == b0.selection_key  # one unit
    plan = build_plan([suite], "full", registry=tmp_path / "none")
    u = plan["unit_totals"]
    # 2 searches and selections shared by a and b; CIFAR: a's two seeds (seed 0 also b's
    # single claim) + b's selected seed on cifar100; ImageNet: none (params only)
    assert (u["search"]["units"], u["selection"]["units"]) == (2, 2)
    assert (u["retrain_cifar"]["units"], u["retrain_imagenet"]["units"]) == (3, 0)
    cfg = a0.config
    search, c10 = unit_hours("search", cfg, None, "h200"), unit_hours("retrain", cfg, "cifar10", "h200")
    assert c10 == pytest.approx(600 * math.ceil(50_000 / 96) * 115.848 / 3.6e6, abs=1e-3)
    inet = unit_hours("retrain", b0.config, "imagenet", "h200")
    assert u["hours"] == pytest.approx(2 * search + 3 * c10, abs=0.05)
    rules = {s["rule"].split()[0]: s for s in plan["savings"]}
    # every trial alone, every dataset, every seed: a 2 x (search + c10), b 2 x (search +
    # c10 + c100 + imagenet)
    assert rules["every"]["hours"] == pytest.approx(4 * search + 6 * c10 + 2 * inet, abs=0.05)
    assert rules["retrain"]["saved"] == pytest.approx(2 * inet, abs=0.05)  # imagenet unread
    assert rules["best_by_valid"]["saved"] == pytest.approx(2 * c10, abs=0.05)  # b: 2 of 4
    assert rules["units"]["saved"] == pytest.approx(2 * search + c10, abs=0.05)
    assert rules["units"]["hours"] == pytest.approx(u["hours"], abs=0.01)
    assert plan["uncovered"] == []
    assert plan["suites"]["unittest"]["units"]["hours"] == pytest.approx(u["hours"], abs=0.01)


def test_a_shared_unit_runs_once_and_best_of_n_retrains_one_cell(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasrepro.executor import LocalExecutor
    from nasrepro.runner import run_suite
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import run_retrain_unit

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reg = tmp_path / "registry"
    # pack=2: the two CIFAR-10 retrainings of seeds 0 and 1 at once, in two processes
    summary = run_suite(suite, budget="smoke", executor=LocalExecutor(["cpu"]), pack=2)
    records = [json.loads(p.read_text()) for p in trial_records(reg)]
    assert len(records) == 4 and len(summary.records) == 4
    units = {
        kind: [json.loads(p.read_text()) for p in (reg / "_units" / kind).rglob("*.json")]
        for kind in ("search", "selection", "retrain")
    }
    # a and b share each seed's search and selection: 2 of each, computed once
    assert len(units["search"]) == len(units["selection"]) == 2
    by_seed = {u["seed"]: u for u in units["search"]}
    valid = {s: u["result"]["history"][-1]["valid_acc"] for s, u in by_seed.items()}
    chosen = best_seed(valid)
    retrains = sorted((u["identity"]["dataset"], u["seed"]) for u in units["retrain"])
    # cifar10: a's two seeds (b's single claim reads seed 0 of them); cifar100: the one cell
    # best_by_valid selects
    assert retrains == sorted([("cifar10", 0), ("cifar10", 1), ("cifar100", chosen)])
    b = {r["seed"]: r for r in records if r["experiment"] == "b"}
    other = 1 - chosen
    assert set(b[chosen]["units"]["retrain"]) == {"cifar100"} | ({"cifar10"} if chosen == 0 else set())
    assert "cifar100" in b[other]["units"]["not_retrained"]
    assert "test_acc" not in b[other]["metrics"]["cifar100"]
    assert b[other]["metrics"]["imagenet"]["params_m"] > 0  # counted, never trained
    assert b[0]["units"]["search"] == [r for r in records if r["experiment"] == "a"][0]["units"]["search"]
    # a rerun of the same command computes nothing and records nothing
    again = run_suite(suite, budget="smoke", executor=LocalExecutor(["cpu"]))
    assert again.records == [] and again.units == [] and again.skipped == 4
    # the packed retraining (two processes at once) is the math of one retraining alone
    a1 = next(t for t in expand(load_suite(suite), suite, "smoke", ["a"]) if t.seed == 1)
    packed = next(u for u in units["retrain"] if u["identity"]["dataset"] == "cifar10" and u["seed"] == 1)
    alone = run_retrain_unit(
        a1, "cifar10", packed["identity"]["genotype"], tracker=NullTracker(), run_id="",
        data_root=None, device="cpu",
    )  # fmt: skip
    assert alone["key"] == packed["key"]
    assert alone["result"]["metrics"] == packed["result"]["metrics"]


def test_claims_never_judge_a_bf16_variant(suite: Path) -> None:
    """Mixed precision is a recipe variant: another retraining unit and another trial, so
    an fp32 claim's experiment never uses its records."""
    from nasrepro.jobs import retrain_identity

    bf16 = SUITE.replace(
        "cifar10: {layers: 20, init_channels: 36, epochs: 600, batch_size: 96}",
        "cifar10: {layers: 20, init_channels: 36, epochs: 600, batch_size: 96, precision: bf16}",
        1,
    )
    other = suite.with_name("bf16.yaml")
    other.write_text(bf16.replace("suite: unittest", "suite: bf16"))
    fp32_trial = expand(load_suite(suite), suite, "full", ["a"])[0]
    bf16_trial = expand(load_suite(other), other, "full", ["a"])[0]
    assert fp32_trial.config_hash != bf16_trial.config_hash
    one = retrain_identity(fp32_trial.config, "cifar10", "g")
    two = retrain_identity(bf16_trial.config, "cifar10", "g")
    assert (one["recipe"]["precision"], two["recipe"]["precision"]) == ("fp32", "bf16")
    assert unit_key("retrain", one, 0) != unit_key("retrain", two, 0)
    assert fp32_trial.search_key == bf16_trial.search_key  # the search is shared
    with pytest.raises(ValueError, match="precision"):
        load_suite_with(suite, "precision: fp16")


def load_suite_with(suite: Path, recipe_extra: str) -> None:
    from nasrepro.trial import build_evaluator

    trial = expand(load_suite(suite), suite, "full", ["a"])[0]
    args = json.loads(json.dumps(trial.config["evaluator_args"]))
    key, value = (x.strip() for x in recipe_extra.split(":"))
    args["recipes"]["cifar10"][key] = value
    build_evaluator({**trial.config, "evaluator_args": args})


def test_trial_plans_know_each_experiments_seeds(suite: Path) -> None:
    s = load_suite(suite)
    plans = trial_plans(s, expand(s, suite, "smoke"), "smoke")
    assert {p.n_seeds for p in plans} == {2}
    assert stable_hash(sorted(p.trial.config_hash for p in plans))  # four distinct trials


def test_best_of_n_waits_for_the_selected_seeds_retraining(suite: Path) -> None:
    """The report picks the seed among every search, not among the retrained ones: while
    the selected seed's retraining is missing, no other seed stands in for it."""
    from nasrepro.report.records import take

    claim = next(c for c in load_suite(suite).claims if c.id == "b-best")

    def rec(seed: int, valid: float, err: float | None) -> dict:
        metrics = {"cifar100": {} if err is None else {"test_err": err}}
        return {"seed": seed, "metrics": metrics, "search": {"history": [{"valid_acc": valid}]}}

    waiting = take(claim, [rec(0, 60.0, 21.0), rec(1, 70.0, None)])
    assert waiting.samples == [] and waiting.missing == 2
    ready = take(claim, [rec(0, 60.0, None), rec(1, 70.0, 19.5)])
    assert [(s.seed, s.value, s.select) for s in ready.samples] == [(1, 19.5, 70.0)]


def test_a_query_experiment_has_no_units_and_is_recorded_by_the_runner(
    two_op_benchmark, monkeypatch, tmp_path  # noqa: F811  (the fixture imported above)
):
    """A search by benchmark queries trains nothing: no search or selection unit, no
    retraining; the runner runs it in its assembly stage and records it once."""
    from test_queries import _pin

    from nasrepro.runner import run_suite

    _pin(monkeypatch, two_op_benchmark)
    path = tmp_path / "q.yaml"
    path.write_text(
        """\
suite: qs
version: 1
paper: {file: 003_55655e6ae543df8d.txt, title: qs}
budgets:
  smoke: {description: "tests only", seeds: 2}
experiments:
  q1:
    space: nb201
    dataset: cifar10
    query: {algorithm: random, time_budget: 12000}
    evaluator: nb201-api
    eval_datasets: [cifar10]
    seeds: 2
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: RS, method: RS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 93.7, experiment: q1}
"""
    )
    trials = nr.plan(str(path), budget="smoke")
    assert [t.search_key for t in trials] == [None, None] and not trials[0].searched
    summary = run_suite(
        path, budget="smoke", device="cpu", registry=tmp_path / "registry",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", progress=lambda line: None,
    )  # fmt: skip
    assert len(summary.records) == 2 and summary.units == [] and summary.waiting == []
    recs = [json.loads(p.read_text()) for p in trial_records(tmp_path / "registry")]
    assert len(recs) == 2 and all(r["search"]["query"]["queries"] > 0 for r in recs)
    assert not (tmp_path / "registry" / "_units").exists()


def test_best_by_valid_reads_the_search_unit_s_own_score_first():
    """A search unit keeps the method's selection score (RobustDARTS' infer() accuracy,
    `valid_acc`); best_by_valid reads it before the last epoch's supernet accuracy."""
    from nasrepro.units import search_valid_acc

    history = [{"valid_acc": 50.0}, {"valid_acc": 55.0}, {"valid_acc": None}]
    assert search_valid_acc({"history": history}) == 55.0
    own = {"value": 61.5, "epoch": 1, "how": "infer"}
    assert search_valid_acc({"history": history, "valid_acc": own}) == 61.5
    assert search_valid_acc({"history": [], "valid_acc": None}) is None


def test_a_selection_covered_by_every_seed_names_its_experiment(tmp_path: Path) -> None:
    """b's best_by_valid claim on CIFAR-10 needs no unit of its own (a retrains every seed
    of the same cell there), but those retrainings are needed by b too: the report's *What
    is left* of a paper with only b left must count them."""
    path = tmp_path / "units.yaml"
    path.write_text(
        SUITE.replace(
            "dataset: cifar100,\n     metric: test_err, value: 20.0",
            "dataset: cifar10,\n     metric: test_err, value: 20.0",
        )
    )
    plan = build_plan([path], "full", registry=tmp_path / "none")
    c10 = [u for u in plan["units"] if u["kind"] == "retrain" and u["dataset"] == "cifar10"]
    assert sorted(u["seed"] for u in c10) == [0, 1]  # a's two seeds; no best-of unit
    for u in c10:
        assert {"suite": "unittest", "experiment": "b"} in u["needed_by"]
        assert {"suite": "unittest", "experiment": "a"} in u["needed_by"]
