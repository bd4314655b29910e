"""Trials are identified by what they compute, not by the suite file that asks for them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nasrepro.jobs import FIDELITY_VERSION
from nasrepro.plan import experiment_records
from nasrepro.registry import RecordIndex, scan_registry
from nasrepro.runner import run_suite
from nasrepro.suite import load_suite

BASELINE = """\
  nb201-darts-1st:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 1
"""


def suite_text(name: str, experiment: str = "nb201-darts-1st", extra: str = "") -> str:
    return f"""\
suite: {name}
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: {name}}}
budgets:
  smoke:
    description: "tests only: digits, 1 epoch of 2 steps"
    seeds: 1
    dataset: digits
    search: {{epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8}}
    space_args: {{c: 2, n: 1}}
experiments:
{BASELINE.replace("nb201-darts-1st", experiment)}{extra}claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: {experiment}}}
"""


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory):
    """A workdir where suite_a's baseline ran once (registry, MLflow store, suite file)."""
    import os

    root = tmp_path_factory.mktemp("ran")
    (root / "a.yaml").write_text(suite_text("suite_a"))
    cwd, uri = os.getcwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(root)
    try:
        summary = run_suite(root / "a.yaml", budget="smoke", progress=lambda line: None)
    finally:
        os.chdir(cwd)
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri
    assert len(summary.records) == 1
    return root


@pytest.fixture
def after_one_run(ran_once, world):
    """A private copy of `ran_once` as the current directory."""
    import shutil

    shutil.copytree(ran_once, world, dirs_exist_ok=True)
    return world


def _records(root: Path) -> list[Path]:
    return sorted((root / "registry").rglob("*.json"))


def _run(path: Path, lines: list[str] | None = None):
    return run_suite(path, budget="smoke", progress=(lines.append if lines is not None else print))


def _backing(root: Path, path: Path, experiment: str = "nb201-darts-1st"):
    index = RecordIndex(scan_registry(root / "registry").records)
    return experiment_records(load_suite(path), experiment, "smoke", index)


def test_comments_and_claims_reuse_every_record_a_setting_makes_a_new_trial(after_one_run):
    world = after_one_run
    path = world / "a.yaml"
    path.write_text(
        "# a comment\n"
        + suite_text("suite_a")
        + "  - {id: c2, paper_file: 003_55655e6ae543df8d.txt, table: Table 2, row: DARTS, "
        "method: DARTS, space: nb201, dataset: cifar10, metric: test_acc, value: 60.0, "
        "experiment: nb201-darts-1st, note: added later}\n"
    )
    again = _run(path)
    assert again.records == [] and again.skipped == 1
    assert len(_records(world)) == 1
    backing = _backing(world, path)  # the edited suite uses the record; nothing set aside
    assert len(backing.used) == 1 and backing.set_aside == []
    # a setting that enters the configuration is a new trial; the old record is set aside
    path.write_text(suite_text("suite_a").replace("arch_lr: 3.0e-4", "arch_lr: 6.0e-4"))
    assert len(_run(path).records) == 1
    backing = _backing(world, path)
    assert len(backing.used) == 1
    assert [s.reason for s in backing.set_aside] == [
        "different configuration: search.arch_lr: 0.0003 → 0.0006"
    ]


def test_a_baseline_shared_by_two_suites_runs_once(after_one_run):
    world = after_one_run
    (first,) = _records(world)
    b = world / "b.yaml"
    # another paper's suite, another experiment id, the same configuration
    b.write_text(suite_text("suite_b", experiment="darts1-baseline"))
    lines: list[str] = []
    second = _run(b, lines)
    assert second.records == [] and second.skipped == 1
    assert any("recorded by this or another suite" in line for line in lines)
    backing = _backing(world, b, "darts1-baseline")
    assert [Path(r["_path"]).resolve() for r in backing.used] == [first.resolve()]
    assert backing.shared == backing.used  # written for suite_a
    assert _records(world) == [first]
    from nasrepro.report import build_report

    build_report([b], world / "registry", world / "out")
    page = (world / "out" / "suite_b.md").read_text(encoding="utf-8")
    assert "same configuration, recorded for suite_a/nb201-darts-1st" in page


def test_identical_experiments_of_one_suite_run_once(world):
    path = world / "a.yaml"
    path.write_text(suite_text("suite_a", extra=BASELINE.replace("nb201-darts-1st", "copy")))
    lines: list[str] = []
    summary = _run(path, lines)
    assert len(summary.records) == 1
    assert any("copy resolves to the same trials as nb201-darts-1st" in x for x in lines)


def test_a_corrupt_record_is_named_on_one_line_and_skipped(after_one_run, capsys):
    world = after_one_run
    path = world / "a.yaml"
    bad = world / "registry" / "suite_a" / "x" / "smoke" / "seed0-000000000000-broken.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema": "nasrepro.record/2", "seed": 0')  # cut short
    partial = bad.with_name("seed1-000000000000-partial.json")
    partial.write_text(json.dumps({"schema": "nasrepro.record/2", "seed": 1}))
    lines: list[str] = []
    again = _run(path, lines)
    assert again.skipped == 1
    warnings = [x for x in lines if "warning" in x]
    assert len(warnings) == 2
    bad, partial = bad.relative_to(world), partial.relative_to(world)  # as the registry path
    assert any(f"{bad}: not a readable JSON record" in w for w in warnings)
    assert any(f"{partial}: incomplete record: lacks" in w for w in warnings)
    from nasrepro.cli import main

    assert main(["report", str(path), "--registry", "registry", "--out", "out"]) == 0
    err = capsys.readouterr().err
    assert f"nasrepro: warning: {partial}: incomplete record" in err and "Traceback" not in err


def test_legacy_records_are_named_and_set_aside_unverified(after_one_run):
    # Records written before digests (schema /1, /2) parse, but nothing vouches for their
    # content: they are set aside with the reason, never used.
    world = after_one_run
    path = world / "a.yaml"
    record = json.loads(_records(world)[0].read_text())
    legacy = {k: v for k, v in record.items() if k not in ("fidelity_version", "cost", "digest")}
    legacy["schema"] = "nasrepro.record/1"
    folder = world / "registry" / "suite_a" / "nb201-darts-1st" / "smoke"
    (folder / "seed0-legacy.json").write_text(json.dumps(legacy))
    scan = scan_registry(world / "registry")
    assert len(scan.records) == 1 and len(scan.problems) == 1
    assert [why for _, why in scan.rejected] == [
        "schema nasrepro.record/1: written before record digests, unverified "
        "(re-run the trial to record it again)"
    ]
    backing = experiment_records(
        load_suite(path), "nb201-darts-1st", "smoke", RecordIndex(scan.records)
    )
    assert [r.get("fidelity_version") for r in backing.used] == [FIDELITY_VERSION]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_jobs_lie_below_runner_and_executors():
    root = Path(__file__).resolve().parents[1] / "nasrepro"
    below = [root / "jobs.py", root / "execute.py", *sorted((root / "executor").glob("*.py"))]
    for path in below:
        assert "nasrepro.runner" not in _imports(path), path
    assert "nasrepro.executor" not in _imports(root / "execute.py")
    assert not {"nasrepro.runner", "nasrepro.executor", "nasrepro.plan"} & _imports(
        root / "jobs.py"
    )
