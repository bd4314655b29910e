"""`nasrepro plan`: unique trials, cache state and estimated cost, without running."""

from __future__ import annotations

import json
import math
import re
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
    times = step_times()
    devices = times["devices"]
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
    # ImageNet's step is scaled (no GPU has measured it): DARTS_V2's CIFAR step x batch
    # 128/96 x cells 14/20 x channels (48/36)^2 x feature-map area (28/32)^2
    c10 = h200["retrain/darts"]
    scaled = c10["ms"] * (128 / 96) * (14 / 20) * (48 / 36) ** 2 * (28 / 32) ** 2
    assert h200["retrain/imagenet"]["status"] == "scaled"
    assert h200["retrain/imagenet"]["ms"] == pytest.approx(scaled, abs=0.01)
    # every ratio is a row of the `nasrepro bench --ratios` results file it names
    ratios = times["ratios"]
    rows = json.loads((ROOT / ratios["file"]).read_text())["ratios"]
    measured = {(r["group"], r["name"]): r["ratio"] for r in rows}
    for group in ("space", "second_order", "method"):
        for name, entry in ratios[group].items():
            if "file" in entry:  # measured later, in a file of its own
                later = json.loads((ROOT / entry["file"]).read_text())["ratios"]
                got = {r["name"]: r["ratio"] for r in later if r["group"] == group}
                assert got[name] == entry["ratio"], (group, name)
            else:
                assert measured[(group, name)] == entry["ratio"], (group, name)
    assert set(ratios["second_order"]) == {"nb201", "darts", "s1", "s2", "s3", "s4"}
    assert set(ratios["space"]) >= {"s1", "s2", "s3", "s4"}


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


def _h(v: float) -> str:
    return f"{v:,.1f}"


def plan_doc_figures(plan: dict) -> dict[str, str]:
    """The figures docs/plan.md quotes for the five suites, from a plan (`--json`)."""
    u, before = plan["unit_totals"], plan["savings"][0]
    phases = ("search", "selection", "retrain_cifar", "retrain_imagenet")
    out = {f"b_{ph}": _h(before["by_phase"][ph]) for ph in phases}
    out |= {f"a_{ph}": _h(u[ph]["hours"]) for ph in phases}
    out |= {f"u_{ph}": f"{u[ph]['units']:,}" for ph in phases}
    out |= {"b_all": _h(before["hours"]), "a_all": _h(u["hours"]), "u_all": f"{u['units']:,}"}
    out["savings"] = "\n".join(
        f"| {x['rule']} | {_h(x['hours'])} | {'—' if x['saved'] is None else _h(x['saved'])} |"
        for x in plan["savings"]
    )
    out["suites"] = "\n".join(
        f"| {name} | "
        + " | ".join(_h(s["units"][ph]["hours"]) for ph in phases)
        + f" | {_h(s['units']['hours'])} | {s['units']['units']:,} |"
        for name, s in sorted(plan["suites"].items())
    )
    out["uncovered"] = str(len(plan["uncovered"]))
    own = issue_comparable_units(plan)
    out |= {f"o_{ph}": _h(sum(u["hours"] for u in own if u["phase"] == ph)) for ph in phases}
    out |= {f"ou_{ph}": f"{sum(u['phase'] == ph for u in own):,}" for ph in phases}
    out["o_all"], out["ou_all"] = _h(sum(u["hours"] for u in own)), f"{len(own):,}"
    return out


# The experiments of issue 25's baselines (suites/README.md, "Conventions"), added after
# issue 21 costed the suites: part 1's R-DARTS(L2)/(DP), DARTS-ADA, SDARTS-ADV,
# GDAS/SETN/RSPS/ENAS on NB201, NB201's query baselines and GDAS' published cell; part 2's
# DrNAS, SNAS (on NB201 and its own DARTS-space search), β-DARTS, GAEA (with its EX-, SS-,
# DARTS+ and PC-DARTS combinations), iDARTS, SGAS (+PT);
# P-DARTS' progressive search (with its w/o-priors, DARTS- and Λ variants).
ISSUE25_BASELINE = re.compile(
    r".*-(rdarts-l2|rdarts-dp|rdarts-ada|sdartsadv)$|nb201-(gdas|setn|rsps|enas)(-bn)?$"
    r"|nb201-(random|rea|reinforce|bohb)$|art-gdas.*"
    r"|nb201-(drnas|snas|idarts|betadarts)$"
    r"|darts-c10-(betadarts|gaea-pcdarts|snas|sgas|sgas-pt|randomnas|fairdarts)$"
    r"|nb201-(ex-|ss-)?gaea-(bilevel|erm)(-25ep|-sc2|-nozero-(c10|c100|in16))?$"
    r"|nb201-drnas-aligned-timing$"
    r"|darts-c100?-(lambda-)?pdarts(minus)?(-nopriors)?$"
)


def issue_comparable_units(plan: dict) -> list[dict]:
    """The units some experiment outside issue 25's baselines needs: the work issue 21's
    figures (and its 6,000 GPU-h target) are about."""
    return [
        u
        for u in plan["units"]
        if any(not ISSUE25_BASELINE.fullmatch(w["experiment"]) for w in u["needed_by"])
    ]


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
    # the issue's target, on the experiments it costed: at most 6,000 H200 GPU-hours, every
    # runnable claim covered (issue 25's baselines add theirs: docs/plan.md gives both)
    assert sum(u["hours"] for u in issue_comparable_units(plan)) <= 6000
    assert [c for c in plan["uncovered"] if c["kind"] == "plan"] == []
    # the figures docs/plan.md and the README quote are what the code gives
    doc = (ROOT / "docs" / "plan.md").read_text()
    figures = plan_doc_figures(plan)
    table = (
        f"| search | {figures['b_search']} | {figures['a_search']} | {figures['u_search']} |\n"
        f"| selection (PT tuning) | {figures['b_selection']} | {figures['a_selection']} | "
        f"{figures['u_selection']} |\n"
        f"| CIFAR/SVHN retraining | {figures['b_retrain_cifar']} | "
        f"{figures['a_retrain_cifar']} | {figures['u_retrain_cifar']} |\n"
        f"| ImageNet retraining | {figures['b_retrain_imagenet']} | "
        f"{figures['a_retrain_imagenet']} | {figures['u_retrain_imagenet']} |\n"
        f"| **all five** | {figures['b_all']} | **{figures['a_all']}** | {figures['u_all']} |"
    )
    assert table in doc
    assert figures["savings"] in doc and figures["suites"] in doc
    assert f"Every runnable claim is covered; {figures['uncovered']} claims" in doc
    own = "\n".join(
        f"| {name} | {figures['o_' + ph]} | {figures['ou_' + ph]} |"
        for name, ph in (
            ("search", "search"),
            ("selection (PT tuning)", "selection"),
            ("CIFAR/SVHN retraining", "retrain_cifar"),
            ("ImageNet retraining", "retrain_imagenet"),
        )
    )
    assert own + f"\n| **without the baselines** | **{figures['o_all']}** | {figures['ou_all']} |" in doc
    readme = " ".join((ROOT / "README.md").read_text().split())
    units = plan["unit_totals"]
    assert (
        f"{units['units']:,} units of work, about {units['hours']:,.0f} H200 GPU-hours"
        in readme
    )


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


def test_every_method_is_costed_by_a_named_factor():
    """A method's search-step factor is measured, counted or says it is assumed (a method
    added later gets the assumed x1.0 until a ratio case measures it)."""
    from nasrepro import catalog
    from nasrepro.estimate import _method_factor

    for name in catalog.names("method"):
        basis: list[str] = []
        factor = _method_factor({"methods": [name], "method_args": {}}, basis)
        assert factor > 0
        if name != "darts":
            assert len(basis) == 1 and basis[0].startswith(name.split("/")[0]), (name, basis)
            assert any(w in basis[0] for w in ("measured", "counted", "assumed")), basis
    basis = []
    assert _method_factor({"methods": ["brand_new"], "method_args": {}}, basis) == 1.0
    assert basis == ["brand_new: x1.0 per step (assumed, not measured: no ratio case)"]
    basis = []
    grid = {"rdarts": {"weight_decays": [1, 2, 3], "drop_path_probs": [0.0, 0.2]}}
    assert _method_factor({"methods": ["rdarts"], "method_args": grid}, basis) == 6
    basis = []
    adv = _method_factor({"methods": ["sdarts_adv"], "method_args": {}}, basis)
    assert adv == pytest.approx(1 + 8 / 3, abs=1e-3) and "counted" in basis[0]
    basis = []
    enas = _method_factor({"methods": ["enas"], "method_args": {}}, basis)
    # RSPS' measured one-path step, plus 50 x 20 controller forwards per 196 weight steps
    assert enas == pytest.approx(0.057 * (1 + 1000 / (3 * 196)), abs=1e-4)
    assert "measured" in basis[0] and "counted" in basis[0]


def test_dropped_nb201_ops_scale_the_step_by_their_convolution_work():
    """GAEA's space without `none`: x1 (the zero op does no work); without the 3x3
    convolution, the 1x1's share of the mixed ops' convolution work (1 of 1 + 9)."""
    from nasrepro.estimate import _drop_ops_factor

    basis: list[str] = []
    nb201 = {"space": "nb201", "space_args": {"drop_ops": ["none"]}}
    assert _drop_ops_factor(nb201, basis) == 1.0 and "counted" in basis[-1]
    three = {"space": "nb201", "space_args": {"drop_ops": ["nor_conv_3x3", "none"]}}
    assert _drop_ops_factor(three, basis) == 0.1
    assert _drop_ops_factor({"space": "nb201", "space_args": {}}, basis) == 1.0
    assert len(basis) == 2
