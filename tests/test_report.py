"""Report builder on hand-made suites and hand-made registry records.

Every accuracy in the hand-made records below is MADE UP for the test; none is a NAS-Bench-201
number. The artifact experiment `optimum` is run for real (nb201-table lookup).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from nasrepro.registry import SCHEMA, write_record
from nasrepro.report import (
    COMPARISON_RULE,
    RULE,
    build_report,
    check_report,
    format_summary,
    report_json,
    summary_table,
)
from nasrepro.suite import suite_hash

SUITE_YAML = """\
suite: toy_suite
version: 1
paper:
  file: toy.pdf
  title: A toy paper
verdict:
  margin_floor: 1.0
  z: 2.0
budgets:
  smoke:
    description: 2 epochs, 1 seed
    seeds: 1
    search: {epochs: 2}
experiments:
  main:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: &search
      epochs: 3
      batch_size: 64
      lr: 0.025
      lr_min: 0.001
      momentum: 0.9
      weight_decay: 0.0003
      arch_lr: 0.0003
      arch_weight_decay: 0.001
    selector: argmax
    evaluator: nb201-table
    eval_datasets: [cifar10, cifar100]
    seeds: 3
  single:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: *search
    eval_datasets: [cifar10]
    seeds: 1
  smokeonly:  # each experiment its own configuration: identical ones would share records
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {<<: *search, arch_lr: 0.0004}
    eval_datasets: [cifar10]
    seeds: 1
  optimum:
    genotype: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    space: nb201
    dataset: cifar10
    evaluator: nb201-table
    eval_datasets: [cifar10, cifar100]
    seeds: 1
  never:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {<<: *search, arch_lr: 0.0005}
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {id: c10-mean, paper_file: toy.pdf, table: Table 1, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 93.6, std: 0.3, n_seeds: 4,
     experiment: main}
  - {id: c100-miss, paper_file: toy.pdf, table: Table 1, row: DARTS, method: darts,
     space: nb201, dataset: cifar100, metric: test_acc, value: 60.0, experiment: main}
  - {id: c10-valid, paper_file: toy.pdf, table: Table 1, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: valid_acc, value: 90.0, experiment: main}
  - {id: c10-err, paper_file: toy.pdf, table: Table 2, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_err, value: 6.5, experiment: main}
  - {id: c10-best, paper_file: toy.pdf, table: Table 3, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 94.0, n_seeds: 4,
     protocol: best_by_valid, select_by: search_valid_acc, experiment: main}
  - {id: one-seed, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts-single,
     space: nb201, dataset: cifar10, metric: test_acc, value: 50.0, experiment: single}
  - {id: smoke-only, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.3, experiment: smokeonly}
  - {id: no-records, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.3, experiment: never}
  - {id: imagenet, paper_file: toy.pdf, table: Table 5, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: top1_err, value: 26.7,
     not_runnable: needs the full ImageNet retraining recipe}
  - {id: opt-c100, paper_file: toy.pdf, table: Table 1, row: optimal, method: optimal,
     space: nb201, dataset: cifar100, metric: test_acc, value: 72.51, corrected_value: 73.51,
     correction: "made-up typo for the test", protocol: cell_property, experiment: optimum}
  - {id: opt-c10, paper_file: toy.pdf, table: Table 1, row: optimal, method: optimal,
     space: nb201, dataset: cifar10, metric: test_acc, value: 94.37, protocol: cell_property,
     experiment: optimum}
comparisons:
  - {id: optimal-beats-darts, paper_file: toy.pdf, table: Table 1,
     statement: "the optimal cell beats DARTS on CIFAR-10", better: opt-c10, worse: c10-mean}
  - {id: single-beats-main, paper_file: toy.pdf, table: Table 4,
     statement: "single beats main", better: one-seed, worse: c10-mean}
"""

GENO_A = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "skip_connect~2|"
)
GENO_SKIP = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
    "skip_connect~2|"
)
TABLE_SHA = "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e"


def _history(epochs: int, seed: int) -> list[dict[str, Any]]:
    """α softmax drifting towards skip_connect (op 1) on every edge."""
    hist = []
    for e in range(epochs):
        edges = []
        for edge in range(6):
            w = [1.0, 1.0 + 0.3 * e + 0.05 * seed, 1.0, 1.0 + 0.01 * edge, 1.0]
            total = sum(w)
            edges.append([x / total for x in w])
        hist.append(
            {
                "epoch": e,
                "train_loss": 1.0,
                "train_acc": 50.0,
                "valid_loss": 1.0,
                "valid_acc": 50.0 + {1: 5.0, 2: 2.0}.get(seed, 0.0),
                "lr": 0.025,
                "alpha": {"cell": edges},
                "diagnostics": {},
            }
        )
    return hist


def _record(
    suite_file: Path,
    experiment: str,
    budget: str,
    seed: int,
    metrics: dict[str, dict[str, float]],
    genotype: str = GENO_A,
    digest: str | None = None,
    created: str = "2026-11-26T01:00:00+00:00",
    fixture: bool = False,
    search_change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record of `experiment` at `budget`, identified as the harness identifies it (the
    resolved configuration); `search_change` makes it a record of another configuration."""
    from nasrepro.jobs import FIDELITY_VERSION, group_key, trial_key
    from nasrepro.plan import expand
    from nasrepro.suite import load_suite

    trial = expand(load_suite(suite_file), suite_file, budget, [experiment], seeds=seed + 1)[-1]
    config = {**trial.config, "search": {**trial.config["search"], **(search_change or {})}}
    return {
        "config": config,
        "config_hash": trial_key(config, seed),
        "group_hash": group_key(config),
        "fidelity_version": FIDELITY_VERSION,
        "schema": SCHEMA,
        "suite": "toy_suite",
        "suite_version": 1,
        "suite_hash": digest or suite_hash(suite_file),
        "experiment": experiment,
        "claim_ids": [],
        "budget": budget,
        "budget_description": "2 epochs, 1 seed" if budget == "smoke" else "paper settings",
        "seed": seed,
        "space": "nb201",
        "search_dataset": "cifar10",
        "genotype": genotype,
        "arch_index": 1462,
        "metrics": metrics,
        "evaluation": {
            "evaluator": "nb201-table",
            "source": {
                "backend": "nb201-table",
                "sha256": TABLE_SHA,
                "hp": "200",
                "unavailable": ["valid_acc"],
                "fixture": fixture,
            },
            "fixture": fixture,
        },
        "search": {"epochs": 3, "history": _history(3, seed)},
        "mlflow": {
            "tracking_uri": "sqlite:///x.db",
            "experiment_id": "1",
            "run_id": f"run{experiment}{seed}",
            "parent_run_id": "p",
        },
        "provenance": {
            "git_commit": "abcdef1234567",
            "git_dirty": False,
            "packages": {},
            "device": "cpu",
            "deterministic": True,
            "wall_time_s": 1.5,
            "created_at": created,
        },
    }


@pytest.fixture()
def world(tmp_path: Path) -> tuple[Path, Path]:
    return make_world(tmp_path)


def make_world(tmp_path: Path) -> tuple[Path, Path]:
    """The toy suite and its hand-made records (and the real artifact record) under tmp_path."""
    suite_file = tmp_path / "toy_suite.yaml"
    suite_file.write_text(SUITE_YAML, encoding="utf-8")
    reg = tmp_path / "registry"
    for seed, (c10, c100) in enumerate([(93.0, 70.0), (93.5, 70.5), (94.0, 71.0)]):
        write_record(
            reg,
            _record(
                suite_file,
                "main",
                "full",
                seed,
                {"cifar10": {"test_acc": c10}, "cifar100": {"test_acc": c100}},
                genotype=GENO_SKIP if seed == 2 else GENO_A,
            ),
        )
    write_record(reg, _record(suite_file, "single", "full", 0, {"cifar10": {"test_acc": 54.3}}))
    # A record of another configuration: it would make one-seed "reproduced" if it were used.
    write_record(
        reg,
        _record(
            suite_file,
            "single",
            "full",
            1,
            {"cifar10": {"test_acc": 50.0}},
            search_change={"arch_lr": 0.0006},
        ),
    )
    write_record(reg, _record(suite_file, "smokeonly", "smoke", 0, {"cifar10": {"test_acc": 54.3}}))
    write_record(reg, _artifact_record(suite_file))
    return suite_file, reg


def _artifact_record(suite_file: Path) -> dict[str, Any]:
    """The artifact experiment run for real: a published cell looked up in the NB201 table."""
    from nasrepro.plan import expand
    from nasrepro.suite import load_suite
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import execute_trial

    (trial,) = expand(load_suite(suite_file), suite_file, "full", ["optimum"])
    record = execute_trial(
        trial,
        tracker=NullTracker(),
        experiment_id="",
        parent_run_id="",
        data_root=None,
        device="cpu",
        progress=lambda line: None,
    )
    assert record is not None
    return record


def _tables(md: str) -> list[list[dict[str, str]]]:
    """Every Markdown table of a page as rows of header -> cell (anchors stripped)."""
    tables, lines = [], md.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("| ") and lines[i + 1].startswith("|---"):
            headers = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("| "):
                    break
                cells = [c.strip() for c in body.strip().strip("|").split(" | ")]
                cells[0] = re.sub(r"<a id=\"[^\"]+\"></a>", "", cells[0])
                rows.append(dict(zip(headers, cells, strict=True)))
            tables.append(rows)
    return tables


def _rows(md: str) -> dict[str, dict[str, str]]:
    """Claim id -> cells of the per-table sections (judged rows and folded not-run rows)."""
    part = md.split("## Claims by table", 1)[1].split("\n## ", 1)[0]
    return {r["claim"]: r for t in _tables(part) for r in t}


def _section(md: str, heading: str) -> str:
    return md.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _claims(suite_file: Path, reg: Path) -> dict[str, dict[str, Any]]:
    return {c["claim_id"]: c for c in report_json([suite_file], reg)["claims"]}


# ------------------------------------------------------------------------ build_report()


def test_report_verdicts(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    written = build_report([suite_file], reg, out)
    md = (out / "toy_suite.md").read_text(encoding="utf-8")
    rows = _rows(md)
    verdict = {cid: cells.get("verdict", cells.get("class")) for cid, cells in rows.items()}
    assert verdict == {
        "c10-mean": "✓ reproduced",
        "c100-miss": "✗ not reproduced",
        "c10-valid": "needs GPU + data",  # folded: not run
        "c10-err": "? inconclusive",  # no claimed spread: 3 seeds give ±1.19 against ±1
        "c10-best": "? inconclusive",
        "one-seed": "? inconclusive",
        "smoke-only": "other budget",
        "no-records": "needs GPU + data",
        "imagenet": "not runnable",
        "opt-c100": "✓ reproduced",
        "opt-c10": "✓ reproduced",
    }
    mean = rows["c10-mean"]
    assert mean["claimed"] == "93.6 ± 0.3 (n=4)" and mean["reproduced ± sd (n)"] == "93.50 ± 0.50 (n=3)"
    assert mean["Δ"] == "-0.10" and mean["margin"] == "1.00"  # the floor
    assert mean["CI of Δ"] == "[-0.86, +0.66]"  # 90% CI of Δ, inside ±1
    # best by the supernet's validation accuracy: seed 1 (93.5), not the best test seed 2
    assert rows["c10-best"]["reproduced ± sd (n)"] == "93.50 (seed 1 of 3 by search_valid_acc)"
    assert rows["c10-best"]["protocol"] == "best by valid"
    assert "test_err derived as 100 − test_acc" in rows["c10-err"]["notes"]
    assert rows["c10-err"]["reproduced ± sd (n)"] == "6.50 ± 0.50 (n=3)"
    # one-seed: the record of another configuration (50.0) is set aside, leaving 54.30 alone
    assert rows["one-seed"]["reproduced ± sd (n)"] == "54.30 (n=1)"
    assert rows["smoke-only"]["reproduced ± sd (n)"] == "smoke: 54.30 (n=1)"
    assert rows["smoke-only"]["Δ"] == "—"
    # the known typo is judged against the corrected value; both shown, the reason in its row
    assert rows["opt-c100"]["claimed"] == "72.51 → 73.51"
    assert rows["opt-c100"]["notes"] == (
        "typo: made-up typo for the test · 73.51 vs 73.51: to the printed digit"  # + the reason
    )
    assert rows["opt-c100"]["reproduced ± sd (n)"] == "73.51"
    assert rows["opt-c100"]["protocol"] == "cell property"
    assert "1 record(s) set aside (see 'Records set aside')" in rows["one-seed"]["notes"]
    assert "## Records set aside" in md and "search.arch_lr" in md
    assert rows["c10-valid"]["notes"].startswith(
        "valid_acc on cifar10 is unavailable from the evaluator that ran (nb201-table)"
    )
    assert rows["no-records"]["notes"] == "no records of experiment never at its current configuration"
    assert rows["imagenet"]["notes"] == "not runnable: needs the full ImageNet retraining recipe"
    assert "| declared: needs the full ImageNet retraining recipe | 1 |" in md
    assert " ".join(RULE.split()) in " ".join(md.replace("\n> ", " ").split())
    assert " ".join(COMPARISON_RULE.split()) in " ".join(md.replace("\n> ", " ").split())
    assert "nb201-table (embedded NATS 200-epoch table, sha256 cb5d77…)" in md
    assert "#### smoke budget (smoke)" in md and "54.30 (smoke)" in md
    assert f"  {GENO_A}" in md and f"  {GENO_SKIP}" in md
    assert "figures/toy_suite__main__full.png" in md
    assert "figures/toy_suite__claims__table-1.png" in md
    assert "[^" not in md  # no footnotes: every note sits in its row
    assert written[-1] == out / "index.md"
    unfolded = re.sub(r"<details>.*?</details>", "", md, flags=re.S)
    prose = [ln for ln in unfolded.splitlines() if not ln.startswith("|")]
    assert max(len(line) for line in prose) <= 200  # tables and folded blocks aside


def test_page_opens_with_verdicts_judged_claims_and_what_is_left(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    """The first screen: verdict counts, every judged claim with Δ, margin, verdict and a
    reason, the tested conclusions, what is left with its cost; then the tables, the
    not-run rows folded."""
    from nasrepro.plan import build_plan

    suite_file, reg = world
    build_report([suite_file], reg, tmp_path / "out")
    md = (tmp_path / "out" / "toy_suite.md").read_text(encoding="utf-8")
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads[:4] == [
        "## Judged claims",
        "## Conclusions tested",
        "## What is left",
        "## Claims by table",
    ]
    top = md.split("## Judged claims", 1)[0]
    assert "**Verdicts: 3 reproduced · 1 not reproduced · 3 inconclusive · 3 not run · 1 other" in (
        " ".join(top.split())
    )
    assert "**Conclusions: 2 of 2 tested** (1 held, 1 inconclusive)" in " ".join(top.split())
    (judged,) = _tables(_section(md, "Judged claims"))
    ids = [re.match(r"\[([^\]]+)\]\(#claim-\1\)", r["claim"]).group(1) for r in judged]
    # every judged claim, the misses first, then the undecided; not-run and other-budget
    # claims are not there
    assert ids[:4] == ["c100-miss", "c10-err", "c10-best", "one-seed"]
    assert sorted(ids) == sorted(
        ["c10-mean", "c100-miss", "c10-err", "c10-best", "one-seed", "opt-c100", "opt-c10"]
    )
    miss = judged[0]
    assert (miss["claimed"], miss["Δ"], miss["margin"]) == ("60.0", "+10.50", "1.00")
    assert miss["CI of Δ"] == "[+9.31, +11.69]"
    assert miss["why"] == "90% CI of Δ [+9.31, +11.7] outside ±1"  # the verdict's own reason
    assert "1 more seed(s) would decide" in judged[1]["why"]
    assert "convention" not in judged[0]  # no FLOPs claim here: no counting convention
    assert '<a id="claim-c100-miss"></a>c100-miss' in md  # the link's target, in its table
    (tested,) = _tables(_section(md, "Conclusions tested"))
    assert [r["conclusion"] for r in tested] == ["optimal-beats-darts", "single-beats-main"]
    # what is left: smoke-only (smokeonly has no full record) and no-records (never); the
    # valid_acc claim has records that lack its metric, the ImageNet one is not runnable
    (left,) = _tables(_section(md, "What is left"))
    plan = build_plan([suite_file], "full", ["smokeonly", "never"], "h200", reg)
    # the units of work those experiments still need, each once (not whole trials)
    hours = sum(u["hours"] for u in plan["units"] if not u["cached"])
    assert left == [
        {
            "table": "Table 4",
            "claims": "2",
            "experiments": "2",
            "trials": "2",
            "datasets": "cifar10",
            "GPU-hours (NVIDIA H200)": f"{hours:,.1f}",
            "command": '`nasrepro run toy_suite.yaml --table "Table 4"`',
        },
        {
            "table": "**all**",
            "claims": "2",
            "experiments": "2",
            "trials": "2",
            "datasets": "cifar10",
            "GPU-hours (NVIDIA H200)": f"{hours:,.1f}",
            "command": "`nasrepro run toy_suite.yaml`",
        },
    ]
    assert "1 claim(s) cannot be run here" in " ".join(_section(md, "What is left").split())
    table1 = md.split("### Table 1", 1)[1].split("### ", 1)[0]
    folded = table1.split("<details>", 1)[1]
    assert "1 claim(s) of Table 1 not run (1 needs GPU + data)" in folded
    assert "c10-valid" in folded and "c10-mean" not in folded


def test_own_rows_first_and_conclusions(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    build_report([suite_file], reg, tmp_path / "out")
    md = (tmp_path / "out" / "toy_suite.md").read_text(encoding="utf-8")
    table1 = md.split("### Table 1", 1)[1].split("### ", 1)[0]
    ids = [r["claim"] for t in _tables(table1) for r in t]
    # `optimal` is a method the paper's comparisons claim better: its rows come first
    assert ids == ["opt-c100", "opt-c10", "c10-mean", "c100-miss", "c10-valid"]
    comps = {c["id"]: c for c in report_json([suite_file], reg)["comparisons"]}
    # d = 94.363 (table) − 93.5 = 0.863 > 2 · 0.5/√3 = 0.577
    assert comps["optimal-beats-darts"]["verdict"] == "held"
    assert comps["optimal-beats-darts"]["difference"] == pytest.approx(94.363 - 93.5, abs=1e-3)
    assert comps["optimal-beats-darts"]["se"] == pytest.approx(0.5 / math.sqrt(3))
    assert comps["single-beats-main"]["verdict"] == "inconclusive"  # one seed: no SE


def test_json_fields_and_classes(world: tuple[Path, Path]) -> None:
    suite_file, reg = world
    claims = _claims(suite_file, reg)
    c = claims["c10-mean"]
    assert c["suite"] == "toy_suite" and c["table"] == "Table 1" and c["method"] == "darts"
    assert c["protocol"] == "mean" and c["metric"] == "test_acc" and c["budget"] == "full"
    assert c["claimed"] == {
        "value": 93.6,
        "std": 0.3,
        "n": 4,
        "corrected_value": None,
        "correction": None,
        "judged_value": 93.6,
    }
    assert c["reproduced"]["value"] == pytest.approx(93.5)
    assert c["reproduced"]["std"] == pytest.approx(0.5) and c["reproduced"]["n"] == 3
    assert c["margin"] == pytest.approx(1.0) and c["verdict"] == "reproduced"
    assert c["margin_basis"] == "floor 1 (above half the gap 0.77 to opt-c10)"
    assert c["ci_low"] < 0 < c["ci_high"] and c["label"] == "reproduced"
    assert c["reason"].startswith("90% CI of Δ [-0.858, +0.658] inside ±1")
    assert claims["c10-err"]["seeds_to_decide"] == 1
    assert claims["c10-best"]["reproduced"]["chosen_seed"] == 1
    assert claims["opt-c100"]["claimed"]["judged_value"] == 73.51
    assert claims["smoke-only"]["budget"] == "smoke" and claims["smoke-only"]["reproduced"] is None
    classes = {cid: x["class"] for cid, x in claims.items()}
    assert classes["opt-c10"] == classes["opt-c100"] == "artifact"
    assert classes["imagenet"] == "not runnable"
    assert classes["c10-mean"] == "needs GPU + data"


def test_index_and_summary(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    build_report([suite_file], reg, out)
    index = (out / "index.md").read_text(encoding="utf-8")
    (rows,) = _tables(index)
    row, total = rows
    assert total["paper"] == "**all**" and total["claims"] == "11"
    assert total["GPU-hours to run the rest (NVIDIA H200)"].endswith("(shared units once)")
    md = (out / "toy_suite.md").read_text(encoding="utf-8")
    (left,) = _tables(_section(md, "What is left"))
    assert row == {
        "paper": "[toy_suite](toy_suite.md)",
        "title": "A toy paper",
        "claims": "11",
        "✓ reproduced": "3",
        "✗ not reproduced": "1",
        "? inconclusive": "3",
        "not run": "4",  # 3 not run + 1 at another budget only
        "conclusions tested": "2 / 2",
        "GPU-hours to run the rest (NVIDIA H200)": left[-1]["GPU-hours (NVIDIA H200)"],
    }
    (r,) = summary_table([suite_file], reg)
    assert r.claims == 11
    assert r.verdicts == {
        "reproduced": 3,
        "not reproduced": 1,
        "inconclusive": 3,
        "not run": 3,
        "other budget": 1,
    }
    assert r.classes == {"artifact": 2, "needs GPU + data": 8, "not runnable": 1}
    assert r.conclusions == {"held": 1, "not held": 0, "inconclusive": 1, "untested": 0}
    text = format_summary([r])
    assert "toy_suite" in text and "not reproduced" in text and "other budget" in text


def test_figures_are_pngs(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    written = build_report([suite_file], reg, out)
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == [
        "toy_suite__claims__table-1.png",
        "toy_suite__claims__table-2.png",
        "toy_suite__claims__table-3.png",
        "toy_suite__claims__table-4.png",
        "toy_suite__main__full.png",
        "toy_suite__single__full.png",
        "toy_suite__smokeonly__smoke.png",
    ]
    for name in figs:
        path = out / "figures" / name
        assert path in written
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.rglob(".*")]  # atomic writes leave no temporary files


def test_claims_figure_is_readable(world: tuple[Path, Path]) -> None:
    """One figure per table: at least 800 px wide, every label at least 10 pt and inside the
    image, the whole title, a margin bar per judged claim, markers by verdict."""
    from matplotlib.text import Text

    from nasrepro.report.analysis import analyse
    from nasrepro.report.claims_plot import STYLE, claims_figure

    suite_file, reg = world
    a = analyse(suite_file, reg)
    rows = [r for r in a.rows if r.claim.table == "Table 1"]
    fig = claims_figure(rows, "toy_suite", "Table 1")
    assert fig.get_size_inches()[0] * fig.dpi >= 800
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert "toy_suite · Table 1: claimed vs reproduced (full budget)" in [t.get_text() for t in texts]
    for t in texts:
        box = t.get_window_extent(renderer)
        assert t.get_fontsize() >= 10, t.get_text()
        assert box.x0 >= -1 and box.y0 >= -1, t.get_text()
        assert box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1, t.get_text()
    (ax,) = [ax for ax in fig.axes if ax.get_title(loc="left")]  # one metric: one panel
    judged = [r for r in rows if r.judgement is not None]
    bars = sorted(round(p.get_width(), 6) for p in ax.patches)
    assert bars == sorted(round(2 * r.judgement.tolerance, 6) for r in judged)
    marks = {marker for marker, _, _ in STYLE.values()}
    colours = [line.get_color() for line in ax.lines if line.get_marker() in marks]
    expected = sorted(STYLE[r.verdict][1] for r in judged)
    assert sorted(colours) == expected  # one marker per claim, coloured by its verdict
    labels = [t.get_text() for t in fig.axes[-1].get_yticklabels()]
    assert "60.0 → 70.50  ✗ not reproduced" in labels


def test_output_is_deterministic_and_check_finds_stale_pages(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    suite_file, reg = world
    a = build_report([suite_file], reg, tmp_path / "a")
    b = build_report([suite_file], reg, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    assert check_report([suite_file], reg, tmp_path / "a") == []
    page = tmp_path / "a" / "toy_suite.md"
    page.write_text(page.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    (tmp_path / "a" / "index.md").unlink()
    problems = check_report([suite_file], reg, tmp_path / "a")
    assert problems == [
        f"{tmp_path / 'a' / 'index.md'}: missing",
        f"{page}: differs from the regenerated page",
    ]


def test_records_of_one_trial_count_once_or_conflict_never_by_time(tmp_path: Path) -> None:
    suite_file = tmp_path / "toy_suite.yaml"
    suite_file.write_text(SUITE_YAML, encoding="utf-8")
    reg = tmp_path / "registry"

    def write(value: float, created: str, fixture: bool = False) -> None:
        write_record(
            reg,
            _record(
                suite_file,
                "single",
                "full",
                0,
                {"cifar10": {"test_acc": value}},
                created=created,
                fixture=fixture,
            ),
        )

    # identical results (a re-run on a deterministic CPU): counted once
    write(50.05, "2026-11-26T01:00:00+00:00", fixture=True)
    write(50.05, "2026-11-27T01:00:00+00:00", fixture=True)
    build_report([suite_file], reg, tmp_path / "out")
    md = (tmp_path / "out" / "toy_suite.md").read_text(encoding="utf-8")
    row = _rows(md)["one-seed"]
    assert row["reproduced ± sd (n)"] == "50.05 (n=1) (fixture)"
    assert row["verdict"] == "? inconclusive"
    assert "FIXTURE" in md and "1 further record(s) with identical results counted once" in md
    # a forged record with a future created_at does not win: the seed is a conflict
    write(99.0, "2099-01-01T00:00:00+00:00")
    claims = {c["claim_id"]: c for c in report_json([suite_file], reg)["claims"]}
    assert claims["one-seed"]["verdict"] == "not run" and claims["one-seed"]["reproduced"] is None
    assert any("have records that disagree" in n for n in claims["one-seed"]["notes"])
    build_report([suite_file], reg, tmp_path / "out")
    md = (tmp_path / "out" / "toy_suite.md").read_text(encoding="utf-8")
    assert "## Conflicting records" in md and "| single | full | 0 |" in md


def test_cli_report_json_and_check(world: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    import json

    from nasrepro.cli import main

    suite_file, reg = world
    out = tmp_path / "pages"
    base = ["report", str(suite_file), "--registry", str(reg), "--out", str(out)]
    assert main([*base, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["claims"]) == 11 and data["rule"] == RULE
    assert not out.exists()  # --json writes nothing
    assert main([*base, "--check"]) == 1  # nothing committed yet
    assert main(base) == 0
    assert main([*base, "--check"]) == 0
    capsys.readouterr()


def test_search_cost_is_read_from_measured_gpu_time_only() -> None:
    from nasrepro.report.records import take
    from nasrepro.suite import Claim

    claim = Claim(
        id="cost",
        paper_file="toy.pdf",
        table="T",
        row="DARTS",
        method="darts",
        space="nb201",
        dataset="cifar10",
        metric="search_cost_gpu_days",
        value=0.4,
        experiment="main",
    )
    gpu = {"seed": 0, "cost": {"search_seconds": 43200.0, "search_gpus": 1, "device_name": "H200"}}
    two = {"seed": 1, "cost": {"search_seconds": 21600.0, "search_gpus": 2, "device_name": "H200"}}
    cpu = {"seed": 2, "cost": {"search_seconds": 9.0, "search_gpus": 0, "device_name": "cpu"}}
    none = {"seed": 3, "metrics": {}}
    taken = take(claim, [gpu, two, cpu, none])
    assert [s.value for s in taken.samples] == [0.5, 0.5]  # 12 h x 1 GPU, 6 h x 2 GPUs
    assert taken.devices == ("H200",) and taken.cpu_only == 1 and taken.missing == 1
