"""Every figure the docs quote about the suites, the verdicts and the plan has one source:
the code. These tests recompute each one and find it in the text, so a change to the
suites, the records or the cost model that moves a number fails here until the docs say it.
(Timings are measurements, quoted with their load in the README only.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nasrepro.plan import build_plan
from nasrepro.report import summary_table
from nasrepro.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))


def _text(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_plan(SUITES, "full", None, "h200", tmp_path_factory.mktemp("empty"))


def test_verdict_counts_are_the_committed_records():
    rows = summary_table(SUITES, ROOT / "reports" / "records")
    total = {v: sum(r.verdicts[v] for r in rows) for v in rows[0].verdicts}
    judged = total["reproduced"] + total["not reproduced"] + total["inconclusive"]
    artifact = sum(r.classes["artifact"] for r in rows)
    assert judged == artifact  # every artifact claim is judged, nothing else is
    readme = _text("README.md")
    assert (
        f"the {judged} artifact claims judged ({total['reproduced']} *reproduced*, "
        f"{total['not reproduced']} *not reproduced*" in readme
    )
    assert f"Judged so far: the {judged} artifact claims" in readme
    assert (
        f"Verdicts of the {judged} artifact claims" in _text("suites/README.md")
        and f"{total['reproduced']} reproduced, {total['not reproduced']} not reproduced"
        in _text("suites/README.md")
    )


WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def test_missed_parameter_counts_and_other_conventions_are_counted():
    """The README's breakdown of the artifact verdicts: parameter counts that disagree with
    the published cells, FLOPs reproduced only under another paper's counting convention."""
    from nasrepro.report import report_json

    claims = report_json(SUITES, ROOT / "reports" / "records")["claims"]
    params = [c for c in claims if c["metric"] == "params_m" and c["verdict"] == "not reproduced"]
    other = [
        c
        for c in claims
        if c["metric"] == "flops_m"
        and c["verdict"] == "reproduced"
        and c["convention"] not in (None, "conv_fc")
    ]
    readme = _text("README.md")
    assert f"{WORDS[len(params)]} parameter counts disagree with the published cells" in readme
    assert f"the {WORDS[len(other)]} FLOPs that only another paper's counting" in readme
    quoted = re.search(r"\*reproduced \(convention ([^)]*)\)\*", readme).group(1).split(" / ")
    assert sorted(quoted) == sorted({c["convention"] for c in other})


def test_index_titles_are_whole():
    index = (ROOT / "reports" / "index.md").read_text(encoding="utf-8")
    for path in SUITES:
        s = load_suite(path)
        assert f"| [{s.suite}]({s.suite}.md) | {s.paper.title} |" in index


def test_claim_and_comparison_totals():
    suites = [load_suite(p) for p in SUITES]
    claims = sum(len(s.claims) for s in suites)
    comparisons = sum(len(s.comparisons) for s in suites)
    assert f"({claims:,} claims and {comparisons} comparisons in all)" in _text("README.md")
    assert f"| **total** | {claims} |" in _text("suites/README.md")


def test_plan_figures_in_readme_and_plan_doc(plan):
    t = plan["totals"]
    before, after = t["gpu_hours_before_dedup"], t["gpu_hours_after_dedup"]
    assert (
        f"reference {t['trials_referenced']:,} trials, {t['unique_trials']:,} of them unique: "
        f"about {round(before, -2):,.0f} H200 GPU-hours before and {round(after, -2):,.0f}"
        in _text("README.md")
    )
    doc = (ROOT / "docs" / "plan.md").read_text(encoding="utf-8")
    for name, s in plan["suites"].items():
        row = (
            f"| {name} | {s['experiments']} | {s['trials_referenced']} | {s['unique_trials']} | "
            f"{s['gpu_hours_before_dedup']:,.1f} | {s['gpu_hours_after_dedup']:,.1f} |"
        )
        assert row in doc, row
    experiments = sum(s["experiments"] for s in plan["suites"].values())
    assert (
        f"| **all five** | {experiments} | {t['trials_referenced']:,} | **{t['unique_trials']:,}** | "
        f"{before:,.1f} | **{after:,.1f}** |" in doc
    )
    text = " ".join(doc.split())
    shared = t["trials_referenced"] - t["unique_trials"]
    assert (
        f"{shared} of the {t['trials_referenced']:,} trial references are to trials another "
        f"suite also needs ({len(plan['shared'])} shared configurations), saving about "
        f"{round(before - after, -2):,.0f} GPU-hours ({round(100 * (before - after) / before)}%)"
        in text
    )
    phases = {
        key: sum(x["estimate"][key] for x in plan["trials"])
        for key in ("search_hours", "select_hours", "eval_hours")
    }
    assert f"Of the {after:,.0f} GPU-hours, about {phases['search_hours']:,.0f} are searches" in text
    assert (
        f"{phases['select_hours']:,.0f} DARTS-PT tuning and {phases['eval_hours']:,.0f} retraining"
        in text
    )
    assert f"{len(plan['differences'])} experiments share an id across suites but differ" in text


def test_the_artifact_run_time_is_quoted_in_one_place():
    """The README's *Timings* is the one place that says how long the main job takes."""
    timed = re.compile(r"--artifacts[^\n]*(about \d+ ?(s|min|minutes|seconds))")
    for page in ("suites/README.md", "docs/verdicts.md", "docs/plan.md", "docs/design.md"):
        assert not timed.search((ROOT / page).read_text(encoding="utf-8")), page
    assert "### Timings" in (ROOT / "README.md").read_text(encoding="utf-8")
