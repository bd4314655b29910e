"""Sequential seeds (nasrepro/sequential.py): the stopping rule on a hand-computed sequence of
decisions, and the runner's waves with an injected verdict source (one record per seed, the
last saying why it stopped, the report noting it)."""

from __future__ import annotations

import pytest

from nasrepro.sequential import Decision, decide, run_in_order


def test_rule_on_a_hand_computed_sequence():
    # paper n = 6, minimum 3. Verdicts after k seeds (by hand):
    #   k=3: claim inconclusive                       -> run seed 3
    #   k=4: claim reproduced, conclusion inconclusive -> run seed 4
    #   k=5: claim reproduced, conclusion held          -> stop early (5 of 6)
    script = {
        3: ({"c1": "inconclusive"}, {"k1": "untested"}),
        4: ({"c1": "reproduced"}, {"k1": "inconclusive"}),
        5: ({"c1": "reproduced"}, {"k1": "held"}),
    }
    asked, ran = [], []

    def verdicts(k):
        asked.append(k)
        return script[k]

    d = run_in_order(6, 3, ran.append, verdicts)
    assert ran == [0, 1, 2, 3, 4]  # in order, never skipping one
    assert asked == [3, 4, 5]  # no verdict is read below the minimum
    assert d == Decision(True, True, 5, 6, d.why) and "after 5 of 6 seeds" in d.why
    assert "claim c1 reproduced" in d.why and "conclusion k1 held" in d.why


@pytest.mark.parametrize(
    ("seeds", "n", "claims", "conclusions", "stop", "early"),
    [
        (2, 6, {"c": "reproduced"}, {}, False, False),  # below the minimum: no verdict read
        (3, 6, {"c": "not reproduced"}, {"k": "not held"}, True, True),
        (3, 6, {"c": "reproduced"}, {"k": "untested"}, False, False),  # the other side can run
        (3, 6, {"c": "reproduced", "d": "not run"}, {}, True, True),  # cannot change: ignored
        (3, 6, {}, {}, False, False),  # nothing reads these seeds yet: keep going
        (6, 6, {"c": "inconclusive"}, {}, True, False),  # the paper's n: the end, not early
        (2, 2, {}, {}, True, False),  # n below the minimum: the minimum is n
    ],
)
def test_rule_cases(seeds, n, claims, conclusions, stop, early):
    d = decide(seeds, n, 3, claims, conclusions)
    assert (d.stop, d.early) == (stop, early), d.why


def test_minimum_must_be_positive():
    with pytest.raises(ValueError, match="min_seeds"):
        decide(0, 3, 0, {}, {})


SUITE = """\
suite: seq
version: 1
paper: {file: 003_55655e6ae543df8d.txt, title: seq}
budgets: {}
experiments:
  e1:
    space: nb201
    space_args: {c: 2, n: 1}
    dataset: digits
    search: {epochs: 1, steps_per_epoch: 1, batch_size: 8, image_size: 8, lr: 0.025,
             lr_min: 0.001, momentum: 0.9, weight_decay: 5.0e-4, arch_lr: 3.0e-4,
             arch_weight_decay: 1.0e-3}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 5
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, std: 0.5, n_seeds: 5,
     experiment: e1}
"""


def test_runner_stops_an_experiment_once_its_verdicts_are_decided(tmp_path, monkeypatch, mlflow_uri):
    """Injected verdicts: inconclusive below 3 records, reproduced from 3 on. Minimum 2 of
    5 seeds: wave 1 runs seeds 0 and 1, wave 2 seed 2, then the rule stops (seeds 3, 4
    never run). The third record says why; the report notes it."""
    import nasrepro.sequential as sequential
    from nasrepro.registry import scan_registry
    from nasrepro.report.analysis import analyse
    from nasrepro.runner import run_suite

    seen = []

    def scripted(analysis, experiment):
        n = sequential.recorded_seeds(analysis, experiment)
        seen.append(n)
        return {"c1": "reproduced" if n >= 3 else "inconclusive"}, {}

    monkeypatch.setattr(sequential, "experiment_verdicts", scripted)
    suite = tmp_path / "seq.yaml"
    suite.write_text(SUITE)
    registry = tmp_path / "reg"
    summary = run_suite(
        suite, registry=registry, tracking_uri=mlflow_uri, device="cpu",
        checkpoint_dir=tmp_path / "ck", sequential=2, progress=lambda line: None,
    )  # fmt: skip
    records = sorted(scan_registry(registry).records, key=lambda r: r["seed"])
    assert [r["seed"] for r in records] == [0, 1, 2]
    assert [r["sequential"]["stopped_early"] for r in records] == [False, False, True]
    last = records[-1]["sequential"]
    assert last["seeds"] == 3 and last["paper_n"] == 5 and last["min_seeds"] == 2
    assert "after 3 of 5 seeds" in last["why"] and "claim c1 reproduced" in last["why"]
    assert "after 3 of 5" in summary.stopped_early["e1"]
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(tracking_uri=mlflow_uri).get_run(summary.run_ids[0])
    assert parent.info.status == "FINISHED"  # the seeds left out are not a failure
    assert "after 3 of 5" in parent.data.tags["nasrepro.sequential"]
    row = next(r for r in analyse(suite, registry).rows if r.claim.id == "c1")
    assert any(n.startswith("seeds stopped early: stopped after 3 of 5") for n in row.notes)


def test_simulated_saving_with_injected_verdicts():
    """One experiment of n = 5 seeds at 2 h each, minimum 3; the injected judge decides a
    claim from 4 samples on: every replicate runs 4 seeds, saving 1 seed = 2 h. A second
    experiment whose conclusion with the first stays inconclusive runs all 6 of its seeds."""
    from types import SimpleNamespace as NS

    from nasrepro.sequential import simulate_savings

    claim = lambda i, e: NS(id=i, experiment=e, not_runnable=None, protocol="mean",  # noqa: E731
                            metric="test_acc", judged_value=90.0, std=0.5)  # fmt: skip
    suite = NS(suite="s", claims=[claim("a", "e1"), claim("b", "e2")], comparisons=[],
               experiments={"e1": NS(pending=None), "e2": NS(pending=None)},
               verdict=NS(z=2.0))  # fmt: skip

    def judge_claim(suite, claim, samples):
        decided = len(samples) >= 4 or claim.id == "b" and len(samples) >= 3
        return NS(verdict="reproduced" if decided else "inconclusive", reproduced=len(samples))

    out = simulate_savings([suite], {("s", "e1"): (5, 2.0)}, 3, replicates=3,
                           judge_claim=judge_claim)  # fmt: skip
    assert out["hours_all_seeds"] == 10.0 and out["hours_sequential"] == 8.0
    assert out["hours_saved"] == 2.0 and out["seeds_sequential"] == 4.0
    suite.comparisons = [NS(id="k", better="a", worse="b", margin=0.0)]
    out = simulate_savings([suite], {("s", "e1"): (5, 2.0), ("s", "e2"): (6, 1.0)}, 3,
                           replicates=2, judge_claim=judge_claim,
                           judge_comparison=lambda a, b, **kw: NS(verdict="inconclusive"))
    assert out["hours_saved"] == 0.0 and out["seeds_sequential"] == 11.0  # fmt: skip
