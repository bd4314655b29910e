"""`nasrepro judge` (numbers from anywhere, the reports' rule) and `report --verify-against`
(committed records re-derived from scratch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nasrepro.cli import main

ROOT = Path(__file__).resolve().parents[1]
DARTS_MINUS = str(ROOT / "suites" / "darts_minus.yaml")


def test_judge_prints_the_verdict_and_exits_0_whatever_it_is(capsys):
    assert main(["judge", DARTS_MINUS, "t1-dartsminus-c10-err", "--values", "2.66,2.91,3.16"]) == 0
    out = capsys.readouterr().out
    assert "claimed:    2.63 ± 0.07" in out and "margin ±0.14 (2σ 0.14)" in out
    assert "verdict: inconclusive — 90% CI of Δ [-0.12, +0.68] straddles ±0.14" in out
    argv = ["judge", DARTS_MINUS, "t2-dartsminus-best-c10-flops", "--values", "568.27", "--json"]
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["label"] == "reproduced (convention thop)" and got["conventions"] == {
        "thop": 568.27
    }
    assert got["rounding"] == "printed digit" and got["margin"] == pytest.approx(5.68)


def test_judge_uses_the_report_function(tmp_path, capsys):
    # the same claim and numbers through the report path give the same judgement
    from nasrepro.report.analysis import judge_values
    from nasrepro.report.verdict import Sample
    from nasrepro.suite import load_suite

    suite = load_suite(DARTS_MINUS)
    claim = next(c for c in suite.claims if c.id == "t7-dartsminus-zela-s1-c10-err")
    values, selects = [2.9, 2.68, 3.1], [80.0, 79.0, 81.0]
    j = judge_values(suite, claim, [Sample(i, v, s) for i, (v, s) in enumerate(zip(values, selects, strict=True))])
    argv = ["judge", DARTS_MINUS, claim.id, "--values", "2.9,2.68,3.1", "--select-by",
            "80,79,81", "--json"]
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["verdict"], got["margin"], got["ci_low"]) == (j.verdict, j.margin, j.ci_low)
    assert got["protocol"] == "best_by_test"  # DARTS- Table 7: "lowest error rate of 3"
    assert (got["best_by_test"], got["best_by_valid"]) == (2.68, 3.1)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["t1-dartsminus-c10-err", "--values", "2.6,x"], "--values: item 2 'x' is not a number"),
        (["t1-dartsminus-c10-err", "--values", "2.6,inf"], "--values: item 2 'inf' is not finite"),
        (["no-such-claim", "--values", "1"], "no claim 'no-such-claim'"),
        (["t1-dartsminus-c10-err", "--values", "1,2", "--select-by", "3"],
         "--select-by: 1 value(s) for 2 seed(s)"),
        (["t7-darts-s1-c10-err", "--values", "3,4"], "give --select-by"),
    ],
)
def test_judge_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(["judge", DARTS_MINUS, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err and err.startswith("nasrepro: error: ")


def test_verify_against_finds_a_committed_record_the_code_does_not_compute(tmp_path, capsys):
    from nasrepro.registry import record_digest

    committed = ROOT / "reports" / "records"
    fresh = tmp_path / "fresh"
    shutil.copytree(committed, fresh)  # the same records: every one re-derived
    assert main(["report", "--registry", str(committed), "--verify-against", str(fresh),
                 "--json"]) == 0
    assert "every record re-derived" in capsys.readouterr().out
    # a committed record whose numbers the code does not give (digest recomputed: only the
    # re-derivation can catch it)
    victim = next(iter(sorted(fresh.rglob("*.json"))))
    data = json.loads(victim.read_text())
    ds = next(iter(k for k, v in data["metrics"].items() if isinstance(v, dict)))
    metric = next(iter(data["metrics"][ds]))
    data["metrics"][ds][metric] += 1.0
    data["digest"] = record_digest(data)
    victim.write_text(json.dumps(data))
    assert main(["report", "--registry", str(fresh), "--verify-against", str(committed),
                 "--json"]) == 1
    err = capsys.readouterr().err
    assert f"{victim}: differs from what the code computes" in err
    assert f"metrics.{ds}.{metric}: committed" in err
