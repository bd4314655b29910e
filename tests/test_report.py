"""Report builder and verdict rule, on hand-made suites and hand-made registry records.

Every accuracy below is MADE UP for the test; none is a NAS-Bench-201 number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from nasrepro.jobs import FIDELITY_VERSION, group_key, trial_key
from nasrepro.plan import expand
from nasrepro.registry import SCHEMA, write_record
from nasrepro.report import build_report, format_summary, judge, summary_table
from nasrepro.report.verdict import RULE
from nasrepro.suite import load_suite, suite_hash

SUITE_YAML = """\
suite: toy_suite
version: 1
paper:
  file: toy.pdf
  title: A toy paper
verdict:
  abs_tolerance: 1.0
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
  smokeonly:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {<<: *search, arch_lr: 0.0004}
    eval_datasets: [cifar10]
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
     statistic: best, experiment: main}
  - {id: one-seed, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 50.0, experiment: single}
  - {id: smoke-only, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.3, experiment: smokeonly}
  - {id: no-records, paper_file: toy.pdf, table: Table 4, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.3, experiment: never}
  - {id: imagenet, paper_file: toy.pdf, table: Table 5, row: DARTS, method: darts,
     space: nb201, dataset: cifar10, metric: top1_err, value: 26.7,
     not_runnable: needs the full ImageNet retraining recipe}
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
                "valid_acc": 50.0,
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
    legacy: bool = False,
) -> dict[str, Any]:
    """A record of `experiment` at `budget`, identified as the harness identifies it (the
    resolved configuration); `search_change` makes it a record of another configuration,
    `legacy` one written before fidelity versioning (schema /1)."""
    trial = expand(load_suite(suite_file), suite_file, budget, [experiment], seeds=seed + 1)[-1]
    config = {**trial.config, "search": {**trial.config["search"], **(search_change or {})}}
    identity = {
        "config": config,
        "config_hash": trial_key(config, seed),
        "group_hash": group_key(config),
        "fidelity_version": FIDELITY_VERSION,
    }
    if legacy:
        del identity["fidelity_version"]
    return {
        **identity,
        "schema": "nasrepro.record/1" if legacy else SCHEMA,
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
    # A record of another configuration (the suite said 5 epochs when it ran) and one
    # written before fidelity versioning: either would make one-seed "reproduced" if used.
    write_record(
        reg,
        _record(
            suite_file,
            "single",
            "full",
            1,
            {"cifar10": {"test_acc": 50.0}},
            digest="0" * 64,
            search_change={"epochs": 5},
        ),
    )
    legacy = _record(suite_file, "single", "full", 2, {"cifar10": {"test_acc": 50.0}}, legacy=True)
    folder = reg / "toy_suite" / "single" / "full"
    (folder / "seed2-legacy.json").write_text(json.dumps(legacy), encoding="utf-8")
    write_record(reg, _record(suite_file, "smokeonly", "smoke", 0, {"cifar10": {"test_acc": 54.3}}))
    return suite_file, reg


def _rows(md: str) -> dict[str, list[str]]:
    """Claim id -> cells of the claims table (the first Markdown table on the page)."""
    rows = {}
    for line in md.split("## Claims", 1)[1].split("Summary:", 1)[0].splitlines():
        if line.startswith("| ") and not line.startswith("| claim "):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


# ----------------------------------------------------------------------------- judge()


def test_judge_reproduced_within_z_se() -> None:
    # s² = 2.5, SE = sqrt(2²/4 + 2.5/5) = sqrt(1.5), tol = 2·sqrt(1.5) ≈ 2.449 > Δ = 2 > 1
    j = judge(50.0, 2.0, 4, [50.0, 51.0, 52.0, 53.0, 54.0], "mean", 1.0, 2.0)
    assert j.verdict == "reproduced"
    assert j.reproduced_mean == pytest.approx(52.0)
    assert j.reproduced_std == pytest.approx(math.sqrt(2.5))
    assert j.delta == pytest.approx(2.0)
    assert j.tolerance == pytest.approx(2 * math.sqrt(1.5))
    assert j.n == 5


def test_judge_reproduced_via_abs_floor() -> None:
    j = judge(50.0, None, None, [50.8, 50.8], "mean", 1.0, 2.0)
    assert (j.verdict, j.tolerance) == ("reproduced", 1.0)
    assert j.reproduced_std == pytest.approx(0.0)
    # two-decimal numbers exactly at the floor count as within it
    assert judge(54.30, None, None, [55.30], "mean", 1.0, 2.0).verdict == "reproduced"


def test_judge_not_reproduced_with_two_seeds() -> None:
    # s = 0.1414, SE = 0.1, z·SE = 0.2 < floor 1.0, Δ = 3.1
    j = judge(50.0, None, None, [53.0, 53.2], "mean", 1.0, 2.0)
    assert j.verdict == "not reproduced"
    assert j.delta == pytest.approx(3.1)
    assert j.tolerance == 1.0


def test_judge_inconclusive_with_one_seed() -> None:
    j = judge(50.0, None, None, [53.0], "mean", 1.0, 2.0)
    assert j.verdict == "inconclusive"
    assert j.reproduced_std is None and j.n == 1
    assert judge(50.0, None, None, [50.5], "mean", 1.0, 2.0).verdict == "reproduced"


def test_judge_claim_n_defaults_to_n() -> None:
    # SE = sqrt(2²/2 + 2/2) = sqrt(3)
    j = judge(50.0, 2.0, None, [50.0, 52.0], "mean", 1.0, 2.0)
    assert j.tolerance == pytest.approx(2 * math.sqrt(3.0))
    assert j.verdict == "reproduced"


def test_judge_best_statistic_follows_metric_direction() -> None:
    j = judge(95.0, None, 4, [93.0, 94.0, 95.0], "best", 1.0, 2.0)
    assert (j.verdict, j.reproduced, j.reproduced_mean) == ("reproduced", 95.0, 94.0)
    err = judge(5.0, None, 4, [5.0, 6.0, 7.0], "best", 1.0, 2.0, higher_is_better=False)
    assert (err.verdict, err.reproduced, err.delta) == ("reproduced", 5.0, 0.0)
    miss = judge(95.0, None, None, [90.0, 91.0], "best", 1.0, 2.0)
    assert (miss.verdict, miss.delta) == ("not reproduced", -4.0)


def test_judge_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        judge(50.0, None, None, [], "mean", 1.0, 2.0)
    with pytest.raises(ValueError):
        judge(50.0, None, None, [50.0], "median", 1.0, 2.0)


def test_rule_is_quoted_verbatim_in_docstring() -> None:
    assert " ".join(RULE.split()) in " ".join((judge.__doc__ or "").split())


# ------------------------------------------------------------------------ build_report()


def test_report_verdicts(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    written = build_report([suite_file], reg, out)
    md = (out / "toy_suite.md").read_text(encoding="utf-8")
    rows = _rows(md)
    verdict = {cid: cells[8] for cid, cells in rows.items()}
    assert verdict == {
        "c10-mean": "reproduced",
        "c100-miss": "not reproduced",
        "c10-valid": "not run",
        "c10-err": "reproduced",
        "c10-best": "reproduced",
        "one-seed": "inconclusive",
        "smoke-only": "other budget",
        "no-records": "not run",
        "imagenet": "not run",
    }
    assert rows["c10-mean"][5] == "93.60 ± 0.30 (n=4)"
    assert rows["c10-mean"][6] == "93.50 ± 0.50 (n=3)"
    assert rows["c10-mean"][7].startswith("-0.10")
    assert rows["c10-best"][5] == "best of 4: 94.00"
    assert rows["c100-miss"][5] == "60.00 (n=?)"
    assert rows["c10-best"][6].startswith("best of 3: 94.00")
    assert "test_err derived as 100 − test_acc" in rows["c10-err"][9]
    assert rows["c10-err"][6] == "6.50 ± 0.50 (n=3)"
    # one-seed: the stale record (50.0) is ignored, leaving 54.30 alone
    assert rows["one-seed"][6] == "54.30 (n=1)"
    assert "2 record(s) set aside" in rows["one-seed"][9]
    assert rows["smoke-only"][6] == "smoke: 54.30 (n=1)"
    assert rows["smoke-only"][7] == "—"
    assert (
        "valid_acc on cifar10 is unavailable from the evaluator that ran (nb201-table)"
        in (rows["c10-valid"][9])
    )
    assert "no records of experiment never" in rows["no-records"][9]
    assert "not runnable: needs the full ImageNet retraining recipe" in rows["imagenet"][9]
    assert "## Records set aside" in md
    assert "different configuration: search.epochs: 5 → 3" in md
    assert f"fidelity version 0 (before versioning), current is {FIDELITY_VERSION}" in md
    assert RULE in md
    assert "nb201-table (embedded NATS 200-epoch table, sha256 cb5d77…)" in md
    assert "#### smoke budget (smoke)" in md and "54.30 (smoke)" in md
    assert f"`{GENO_A}` × 2" in md and f"`{GENO_SKIP}` × 1" in md
    assert "figures/toy_suite__main__full.png" in md
    assert written[-1] == out / "index.md"


def test_index_and_summary(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    build_report([suite_file], reg, out)
    index = (out / "index.md").read_text(encoding="utf-8")
    line = next(x for x in index.splitlines() if x.startswith("| toy_suite"))
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    assert cells[3:9] == ["9", "3", "1", "1", "3", "1"]
    assert cells[9] == "[toy_suite](toy_suite.md)"
    rows = summary_table([suite_file], reg)
    assert len(rows) == 1
    r = rows[0]
    assert (
        r.claims,
        r.reproduced,
        r.not_reproduced,
        r.inconclusive,
        r.not_run,
        r.other_budget,
    ) == (9, 3, 1, 1, 3, 1)
    text = format_summary(rows)
    assert "toy_suite" in text and "not reproduced" in text and "other budget" in text


def test_figures_are_pngs(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    out = tmp_path / "out"
    written = build_report([suite_file], reg, out)
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == [
        "toy_suite__main__full.png",
        "toy_suite__single__full.png",
        "toy_suite__smokeonly__smoke.png",
    ]
    for name in figs:
        path = out / "figures" / name
        assert path in written
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_is_deterministic(world: tuple[Path, Path], tmp_path: Path) -> None:
    suite_file, reg = world
    a = build_report([suite_file], reg, tmp_path / "a")
    b = build_report([suite_file], reg, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_rerun_seed_keeps_newest_and_fixture_is_flagged(tmp_path: Path) -> None:
    suite_file = tmp_path / "toy_suite.yaml"
    suite_file.write_text(SUITE_YAML, encoding="utf-8")
    reg = tmp_path / "registry"
    write_record(
        reg,
        _record(
            suite_file,
            "single",
            "full",
            0,
            {"cifar10": {"test_acc": 40.0}},
            created="2026-11-26T01:00:00+00:00",
        ),
    )
    write_record(
        reg,
        _record(
            suite_file,
            "single",
            "full",
            0,
            {"cifar10": {"test_acc": 50.2}},
            created="2026-11-27T01:00:00+00:00",
            fixture=True,
        ),
    )
    build_report([suite_file], reg, tmp_path / "out")
    md = (tmp_path / "out" / "toy_suite.md").read_text(encoding="utf-8")
    row = _rows(md)["one-seed"]
    assert row[6] == "50.20 (n=1) (fixture)" and row[8] == "reproduced"
    assert "FIXTURE" in row[9]
    assert "1 older record(s) of a re-run seed superseded" in md
