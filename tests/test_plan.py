"""`nasrepro plan`: unique trials, cache state and estimated cost, without running."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from nasrepro.estimate import estimate, search_split, step_times
from nasrepro.jobs import FIDELITY_VERSION
from nasrepro.plan import build_plan, expand
from nasrepro.registry import SCHEMA, write_record
from nasrepro.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
NB201_DARTS = """\
  {exp}:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {{epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}}
    eval_datasets: [cifar10]
    seeds: {seeds}
"""


def suite_text(name: str, exp: str, seeds: int) -> str:
    return f"""\
suite: {name}
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: {name}}}
budgets:
  smoke:
    description: "tests only"
    seeds: 1
    dataset: digits
    search: {{epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8}}
    space_args: {{c: 2, n: 1}}
experiments:
{NB201_DARTS.format(exp=exp, seeds=seeds)}claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: {exp}}}
"""


def test_measured_step_times_are_the_benchmark_rows():
    devices = step_times()["devices"]
    for device in devices.values():
        for kind, case in device["cases"].items():
            if case["status"] != "measured":
                continue
            data = json.loads((ROOT / case["file"]).read_text())
            rows = data.get("rows") or [r for part in data["parts"].values() for r in part]
            assert any(
                r.get("step_ms") == case["ms"] and r.get("switch", "plain") == "plain" for r in rows
            ), (kind, case)
    h200 = devices["h200"]["cases"]
    partial = json.loads(
        (ROOT / "benchmarks/results/20261126T0133-nvidia-h200-partial.json").read_text()
    )
    plain = {
        (r["space"], r["method"]): r["step_ms"] for r in partial["rows"] if r["switch"] == "plain"
    }
    ratio = plain[("nb201", "darts-2nd")] / plain[("nb201", "darts-1st")]
    assert h200["nb201/second"]["ms"] == pytest.approx(h200["nb201/first"]["ms"] * ratio, abs=0.1)
    assert h200["darts/second"]["ms"] == pytest.approx(h200["darts/first"]["ms"] * ratio, abs=0.1)


def test_search_split_counts_the_split_files():
    s = {"train_limit": None}
    c10 = search_split("cifar10", s, "nb201")
    assert (c10["weights"]["images"], c10["arch"]["images"]) == (25_000, 25_000)
    assert c10["protocol"] == "nb201" and c10["arch"]["set"] == "train"
    c100 = search_split("cifar100", s, "nb201")
    assert c100["weights"]["images"] == 50_000 and c100["arch"]["images"] == 5_000
    assert search_split("svhn", s, "s1")["weights"]["images"] == 73_257 // 2
    limited = search_split("cifar10", {"train_limit": 1000}, "nb201")
    assert limited["weights"]["images"] == limited["arch"]["images"] == 1000


def test_nb201_darts_estimate_by_hand(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(suite_text("suite_a", "d1", 1))
    (trial,) = expand(load_suite(path), path, "full")
    est = estimate(trial, "h200")
    # 50 epochs x ceil(25000 / 64) = 391 steps of the measured 194.88 ms; table lookups cost 0
    assert est["steps_per_epoch"] == math.ceil(25_000 / 64) == 391
    assert est["search_steps"] == 50 * 391
    assert est["hours"] == pytest.approx(50 * 391 * 194.88 / 3.6e6, abs=1e-4)
    assert est["eval_hours"] == 0 and est["gpu_hours"] == est["hours"]


def test_plan_shares_a_baseline_and_shows_cache_and_differences(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(suite_text("suite_a", "nb201-darts-1st", 3))
    b.write_text(suite_text("suite_b", "nb201-darts-1st", 4))  # one more seed, on purpose
    reg = tmp_path / "registry"
    (first,) = [t for t in expand(load_suite(a), a, "full") if t.seed == 0]
    write_record(
        reg,
        {
            "schema": SCHEMA,
            "suite": "suite_a",
            "experiment": "nb201-darts-1st",
            "budget": "full",
            "seed": 0,
            "config_hash": first.config_hash,
            "config": first.config,
            "fidelity_version": FIDELITY_VERSION,
            "metrics": {},
            "genotype": "g",
            "provenance": {"created_at": "2026-12-03T00:00:00+00:00"},
        },
    )
    plan = build_plan([a, b], "full", registry=reg)
    t = plan["totals"]
    assert (t["trials_referenced"], t["unique_trials"], t["cached"], t["to_run"]) == (7, 4, 1, 3)
    one = 50 * 391 * 194.88 / 3.6e6
    assert t["gpu_hours_before_dedup"] == pytest.approx(7 * one, abs=0.01)
    assert t["gpu_hours_after_dedup"] == pytest.approx(4 * one, abs=0.01)
    assert t["gpu_hours_to_run"] == pytest.approx(3 * one, abs=0.01)
    assert [m["suite"] for m in plan["shared"][0]["experiments"]] == ["suite_a", "suite_b"]
    assert plan["differences"] == [
        {
            "experiment": "nb201-darts-1st",
            "suites": ["suite_a", "suite_b"],
            "differences": ["seeds: 3 → 4"],
        }
    ]
    seed0 = next(x for x in plan["trials"] if x["seed"] == 0)
    assert seed0["cached"] and {n["suite"] for n in seed0["needed_by"]} == {"suite_a", "suite_b"}
    assert seed0["search_data"]["weights"]["images"] == 25_000
    assert seed0["config"]["search"]["epochs"] == 50


def test_plan_of_every_suite_at_full_budget_is_fast(capsys, tmp_path):
    from nasrepro.cli import main

    paths = sorted(str(p) for p in (ROOT / "suites").glob("*.yaml"))
    empty = tmp_path / "registry"  # a named registry must exist (a typo is an error)
    empty.mkdir()
    start = time.process_time()
    assert main(["plan", *paths, "--budget", "full", "--json", "--registry", str(empty)]) == 0
    cpu = time.process_time() - start
    plan = json.loads(capsys.readouterr().out)
    assert cpu < 20, cpu  # about 3 s of CPU on an idle core
    t = plan["totals"]
    assert t["unique_trials"] <= t["trials_referenced"] and t["cached"] == 0
    assert t["gpu_hours_after_dedup"] <= t["gpu_hours_before_dedup"]
    # a published cell (artifact experiment) or a search by benchmark queries trains no
    # supernet: no search data
    trained = [x for x in plan["trials"] if not {"genotype", "query"} & set(x["config"])]
    assert all(x["search_data"]["weights"] for x in trained)
    assert all(x["search_data"] is None for x in plan["trials"] if x not in trained)
    assert main(["plan", paths[0], "--device", "nowhere"]) == 2


def test_an_evaluation_only_trial_costs_its_retraining():
    from nasrepro.jobs import Trial

    config = {
        "space": "darts",
        "genotype": "DARTS_V2",
        "dataset": "cifar10",
        "evaluator": "retrain",
        "evaluator_args": {"recipes": {"cifar10": {"epochs": 600, "batch_size": 96}}},
        "eval_datasets": ["cifar10"],
    }
    trial = Trial("s", 1, "s.yaml", "h", "e", "full", "", 0, (), config)
    est = estimate(trial, "h200")
    # the measured DARTS_V2 step (20 cells, 36 channels, batch 96) × 600 × ⌈50000/96⌉
    assert est["search_hours"] == 0
    assert est["eval_hours"] == pytest.approx(600 * 521 * 115.848 / 3.6e6, abs=1e-3)
