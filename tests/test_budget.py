"""The budgeted plan (nasrepro/budget.py): greedy choice on a hand-computed case, the figures
docs/plan.md quotes, plan files (stale ones refused) and `run --plan` running exactly them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from nasrepro.budget import (
    PlanFileError,
    budget_plan,
    check_plan_file,
    format_budget,
    read_plan_file,
    write_plan_file,
)

ROOT = Path(__file__).parents[1]


def _plan(trials, gpu=True, units=None):
    """A `build_plan`-shaped dict: trials (key, hours, cached, [(suite, experiment), ...]),
    each with one unit of work of its hours (keyed "u" + key), unless `units` gives the
    units (key, hours, cached, needers) themselves."""
    if units is None:
        units = [("u" + key, hours, cached, needs) for key, hours, cached, needs in trials]
    return {
        "budget": "full",
        "fidelity_version": 2,
        "device": {"id": "h200", "name": "NVIDIA H200", "gpu": gpu},
        "trials": [
            {
                "key": key,
                "seed": 0,
                "cached": cached,
                "estimate": {"gpu_hours": hours, "hours": hours},
                "needed_by": [{"suite": s, "experiment": e, "claims": []} for s, e in needs],
            }
            for key, hours, cached, needs in trials
        ],
        "units": [
            {
                "kind": "search",
                "key": key,
                "hours": hours,
                "seed": 0,
                "cached": cached,
                "needed_by": [{"suite": s, "experiment": e} for s, e in needs],
            }
            for key, hours, cached, needs in units
        ],
    }


def _suite():
    claim = lambda i, e, nr=None: NS(id=i, experiment=e, not_runnable=nr)  # noqa: E731
    comp = lambda i, a, b: NS(id=i, better=a, worse=b)  # noqa: E731
    return NS(
        suite="p",
        claims=[claim("ca", "a"), claim("cb", "b"), claim("cc", "c"), claim("cd", "d"),
                claim("ce", "e"), claim("cx", None, "no code")],  # fmt: skip
        comparisons=[comp("k1", "ca", "cb"), comp("k2", "ca", "cc"), comp("k3", "cd", "ce"),
                     comp("k4", "ca", "cx")],  # fmt: skip
    )


TRIALS = [
    ("A1", 1.0, False, [("p", "a")]),
    ("A2", 1.0, False, [("p", "a")]),
    ("B1", 3.0, False, [("p", "b")]),
    ("C1", 0.5, False, [("p", "c")]),
    ("S", 2.2, False, [("p", "d"), ("p", "e")]),  # one trial, two experiments
]


def test_greedy_cheapest_decision_first_shared_trials_once():
    # By hand: k3 costs 2.2 (S once, for both sides), k2 2.5 (A1+A2+C1), k1 5 (A+B), k4 can
    # never be decided (cx not runnable). Budget 5: k3 (left 2.8), k2 (left 0.3), k1 now
    # costs B1 = 3 > 0.3: stop. Claims: cb (3) does not fit either.
    out = budget_plan(_plan(TRIALS), [_suite()], 5.0)
    assert [d["id"] for d in out["decisions"]] == ["k3", "k2"]
    assert out["conclusions"]["decided"] == 2 and out["conclusions"]["decidable"] == 3
    assert out["conclusions"]["total"] == 4
    assert out["claims"] == {"decided": 4, "decidable": 5, "total": 6}
    assert [t["key"] for t in out["trials"]] == ["S", "A1", "A2", "C1"]
    assert out["hours"] == pytest.approx(4.7)
    # 7.7 hours: k1 fits after all (3 more), deciding cb too
    more = budget_plan(_plan(TRIALS), [_suite()], 7.7)
    assert [d["id"] for d in more["decisions"]] == ["k3", "k2", "k1"]
    assert more["claims"]["decided"] == 5 and more["hours"] == pytest.approx(7.7)
    # a recorded trial costs nothing: with B1 recorded, k1 costs A1+A2 = 2 < k3's 2.2, and
    # it decides cb on the way; nothing else fits the 2 hours
    cached = [(k, h, k == "B1", n) for k, h, _, n in TRIALS]
    first = budget_plan(_plan(cached), [_suite()], 2.0)
    assert [(d["id"], d["new"]) for d in first["decisions"]] == [("k1", 2)]
    assert [t["key"] for t in first["trials"]] == ["A1", "A2"]
    assert first["claims"]["decided"] == 2 and first["already_recorded"] == 1
    assert budget_plan(_plan(TRIALS), [_suite()], 0.0)["conclusions"]["decided"] == 0
    assert first["units"] == 2 and "decided with no further unit" not in format_budget(first)
    with pytest.raises(ValueError, match="--gpu-hours"):
        budget_plan(_plan(TRIALS), [_suite()], -1)


def test_costs_are_units_of_work_each_once():
    """Two experiments share one search (4 h); `a` also retrains (1 h), `b` reads only the
    search, and `d` is a query baseline with no unit at all. By hand: cd costs 0 (its trial
    only), cb 4, ca 1 more once cb's search is paid: whole trials would have cost 5 + 4."""
    trials = [("TA", 5.0, False, [("p", "a")]), ("TB", 4.0, False, [("p", "b")]),
              ("TD", 9.9, False, [("p", "d")])]  # fmt: skip
    units = [("search", 4.0, False, [("p", "a"), ("p", "b")]), ("retrain", 1.0, False,
             [("p", "a")])]  # fmt: skip
    suite = NS(suite="p", claims=[NS(id=i, experiment=e, not_runnable=None)
                                  for i, e in (("ca", "a"), ("cb", "b"), ("cd", "d"))],
               comparisons=[])  # fmt: skip
    out = budget_plan(_plan(trials, units=units), [suite], 5.0)
    assert [(d["id"], d["hours"], d["new"]) for d in out["decisions"]] == [
        ("cd", 0.0, 0), ("cb", 4.0, 1), ("ca", 1.0, 1)]  # fmt: skip
    assert out["hours"] == pytest.approx(5.0) and out["units"] == 2
    assert [t["key"] for t in out["trials"]] == ["TD", "TB", "TA"]
    # the search already in the store: a costs only its retraining
    stored = [(k, h, k == "search", n) for k, h, _, n in units]
    assert budget_plan(_plan(trials, units=stored), [suite], 1.0)["claims"]["decided"] == 3


def test_docs_plan_figures_are_what_the_code_gives(tmp_path, monkeypatch):
    """docs/plan.md's budget table and the figures around it, recomputed from the suites
    with an empty registry (and no NAS-Bench-201 file: `--datasets` leaves the query
    baselines out)."""
    monkeypatch.delenv("NASREPRO_NB201_FILE", raising=False)
    from nasrepro.plan import build_plan
    from nasrepro.suite import load_suite

    paths = sorted((ROOT / "suites").glob("*.yaml"))
    plan = build_plan(paths, registry=tmp_path)  # an empty registry
    suites = [load_suite(p) for p in paths]
    doc = (ROOT / "docs" / "plan.md").read_text()
    rows = re.findall(
        r"^\| ([\d,]+) \| (\d+) of ([\d,]+) \| (\d+) of ([\d,]+) \| (\d+) \| ([\d.,]+) \| ([\d.,]+) \|$",
        doc,
        re.M,
    )
    assert [r[0] for r in rows] == ["24", "100", "1,000"]
    for limit, conc, conc_total, claims, claims_total, trials, hours, saved in rows:
        out = budget_plan(plan, suites, float(limit.replace(",", "")), 3)
        assert out["conclusions"]["decided"] == int(conc)
        assert f"{out['conclusions']['total']:,}" == conc_total
        assert out["claims"]["decided"] == int(claims)
        assert f"{out['claims']['total']:,}" == claims_total
        assert len(out["trials"]) == int(trials)
        assert f"{out['hours']:,.1f}" == hours
        assert f"{out['sequential']['hours_saved']:,.1f}" == saved
    decided = " / ".join(str(budget_plan(plan, suites, n)["conclusions"]["decided"])
                         for n in (24, 100, 1000))  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    assert f"GPU-hours decide {decided} of the {rows[0][2]} conclusions" in readme
    everything = budget_plan(plan, suites, 1e9)
    c, k = everything["conclusions"], everything["claims"]
    assert f"{c['decidable']} of the {c['total']} conclusions" in doc
    assert f"{k['decidable']:,} of the {k['total']:,} claims" in doc
    assert f"the {everything['hours']:,.0f} GPU-hours of those trials' units" in doc
    c10 = build_plan(paths, registry=tmp_path, datasets=["cifar10"])
    assert f"Of the {plan['totals']['unique_trials']:,} unique full-budget trials" in doc
    assert f"{c10['totals']['unique_trials']:,} need only" in doc
    assert f"{c10['totals']['gpu_hours_after_dedup']:,.0f} H200 GPU-hours" in doc


SUITE = """\
suite: tiny
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: tiny}}
budgets: {{}}
experiments:
  e1:
    space: nb201
    space_args: {{c: 2, n: 1}}
    dataset: digits
    search: {{epochs: {epochs}, steps_per_epoch: 1, batch_size: 8, image_size: 8, lr: 0.025,
             lr_min: 0.001, momentum: 0.9, weight_decay: 5.0e-4, arch_lr: 3.0e-4,
             arch_weight_decay: 1.0e-3}}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 2
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, std: 0.5, n_seeds: 2,
     experiment: e1}}
"""


def test_plan_file_round_trip_and_stale_plans_refused(tmp_path):
    from nasrepro.plan import build_plan
    from nasrepro.suite import load_suite

    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE.format(epochs=1))
    plan = build_plan([suite], device="cpu-2core", registry=tmp_path / "reg")
    out = budget_plan(plan, [load_suite(suite)], 1000.0)
    path = write_plan_file(tmp_path / "plan.json", out, [suite])
    data = read_plan_file(path)
    keys = check_plan_file(path, data)
    assert keys == {str(suite): [t["key"] for t in out["trials"]]} and len(keys[str(suite)]) == 2
    # the suite changes what the trials compute: the plan names trials that no longer exist
    suite.write_text(SUITE.format(epochs=2))
    with pytest.raises(PlanFileError, match=r"trials\[0\].*no longer a trial.*make a new plan"):
        check_plan_file(path, data)
    with pytest.raises(PlanFileError, match="fidelity_version"):
        check_plan_file(path, {**data, "fidelity_version": 1})
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(PlanFileError, match="bad.json: format"):
        read_plan_file(tmp_path / "bad.json")
    with pytest.raises(PlanFileError, match="no such plan file"):
        read_plan_file(tmp_path / "missing.json")


def test_run_plan_runs_exactly_the_planned_trials(tmp_path, monkeypatch, mlflow_uri):
    """`nasrepro run --plan FILE` records exactly the plan's trials (here one of two seeds),
    and refuses a stale plan and options the plan fixes, with one line, exit 2."""
    from nasrepro.cli import main
    from nasrepro.plan import build_plan
    from nasrepro.registry import scan_registry
    from nasrepro.suite import load_suite

    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE.format(epochs=1))
    plan = build_plan([suite], device="cpu-2core", registry=tmp_path / "reg")
    out = budget_plan(plan, [load_suite(suite)], 1000.0)
    out["trials"] = [t for t in out["trials"] if t["seed"] == 1]
    write_plan_file(tmp_path / "plan.json", out, [suite])
    common = ["--registry", "reg", "--tracking-uri", mlflow_uri, "--device", "cpu"]
    assert main(["run", "--plan", "plan.json", *common]) == 0
    records = scan_registry(tmp_path / "reg").records  # (trial records: not the units)
    assert [(r["experiment"], r["seed"]) for r in records] == [("e1", 1)]
    assert records[0]["config_hash"] == out["trials"][0]["key"]
    assert main(["run", "--plan", "plan.json", "--experiment", "e1", *common]) == 2
    suite.write_text(SUITE.format(epochs=2))
    assert main(["run", "--plan", "plan.json", *common]) == 2
