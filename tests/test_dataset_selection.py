"""`--datasets`: which datasets a trial reads, the experiments a user's data allow (the others
named with what they lack), and a preflight that loads retraining data before any step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasrepro.dataset_selection import parse_datasets, select_by_datasets, trial_datasets
from nasrepro.plan import expand
from nasrepro.suite import load_suite

SEARCH = """{epochs: 1, steps_per_epoch: 1, batch_size: 8, image_size: 8, lr: 0.025,
             lr_min: 0.001, momentum: 0.9, weight_decay: 5.0e-4, arch_lr: 3.0e-4,
             arch_weight_decay: 1.0e-3}"""
SEARCH_C10 = SEARCH.replace("image_size: 8, ", "")
SUITE = f"""\
suite: data
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: data}}
budgets: {{}}
experiments:
  on-digits:
    space: nb201
    space_args: {{c: 2, n: 1}}
    dataset: digits
    search: {SEARCH}
    evaluator: nb201-table
    eval_datasets: [cifar10, cifar100]
    seeds: 1
  on-c10:
    space: nb201
    space_args: {{c: 2, n: 1}}
    dataset: cifar10
    search: {SEARCH_C10}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 2
  retrain-c100:
    space: darts
    genotype: DARTS_V2
    dataset: cifar10
    evaluator: retrain
    evaluator_args: {{recipes: {{cifar100: {{epochs: 1}}, imagenet: {{epochs: 1}}}}}}
    eval_datasets: [cifar100]
    seeds: 1
  by-queries:
    space: nb201
    dataset: cifar10
    query: {{algorithm: random, time_budget: 12000}}
    evaluator: nb201-api
    eval_datasets: [cifar10]
    seeds: 2
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: on-c10}}
"""


NO_FILE = (
    "data/by-queries: 2 trial(s) skipped: reads the NAS-Bench-201 file (set "
    "NASREPRO_NB201_FILE or the evaluator option `path`)"
)


@pytest.fixture
def suite(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("NASREPRO_NB201_FILE", raising=False)
    path = tmp_path / "data.yaml"
    path.write_text(SUITE)
    return path


def test_what_each_trial_reads(suite):
    trials = {t.experiment: t for t in expand(load_suite(suite), suite)}
    # a table lookup reads no dataset; its eval_datasets are table columns
    assert trial_datasets(trials["on-digits"].config) == {"search": ["digits"], "eval": []}
    assert trial_datasets(trials["on-c10"].config) == {"search": ["cifar10"], "eval": []}
    # a published cell retrained: no search; only the recipes its eval_datasets name
    assert trial_datasets(trials["retrain-c100"].config) == {"search": [], "eval": ["cifar100"]}
    # a search by benchmark queries reads the benchmark file, no dataset
    assert trial_datasets(trials["by-queries"].config) == {"search": [], "eval": []}


def test_select_keeps_what_the_data_allow_and_names_the_rest(suite):
    trials = expand(load_suite(suite), suite)
    kept, skipped = select_by_datasets(trials, ["cifar100"])
    # digits is embedded: always present
    assert [t.experiment for t in kept] == ["on-digits", "retrain-c100"]
    assert [s.line() for s in skipped] == [
        "data/on-c10: 2 trial(s) skipped: searches on cifar10 (not in --datasets)",
        NO_FILE,
    ]
    kept, skipped = select_by_datasets(trials, ["cifar10"])
    assert [s.line() for s in skipped] == [
        "data/retrain-c100: 1 trial(s) skipped: evaluates on cifar100 (not in --datasets)",
        NO_FILE,
    ]
    assert select_by_datasets(trials, None) == (trials, [])


def test_query_experiments_need_the_benchmark_file(suite, tmp_path, monkeypatch):
    """`query:` searches are kept exactly when the NAS-Bench-201 file is given (env or the
    evaluator's `path`) and exists; their `dataset` is a table column, not files."""
    trials = expand(load_suite(suite), suite)
    given = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    monkeypatch.setenv("NASREPRO_NB201_FILE", str(given))
    _, skipped = select_by_datasets(trials, ["svhn"])
    lines = [s.line() for s in skipped]
    want = f"data/by-queries: 2 trial(s) skipped: reads the NAS-Bench-201 file ({given} not found)"
    assert want in lines
    given.write_bytes(b"")  # only presence is checked here; the preflight opens it
    kept, skipped = select_by_datasets(trials, ["svhn"])
    assert [t.experiment for t in kept] == ["on-digits", "by-queries", "by-queries"]
    assert all("by-queries" not in s.line() for s in skipped)
    # a missing dataset and a missing file are both named
    monkeypatch.delenv("NASREPRO_NB201_FILE")
    config = {**trials[-1].config, "dataset": "cifar10"}
    from nasrepro.dataset_selection import Skipped, missing_benchmark_files

    files = tuple(missing_benchmark_files(config))
    assert Skipped("s", "e", 1, ("cifar10",), (), files).reason == (
        "searches on cifar10 (not in --datasets); reads the NAS-Bench-201 file (set "
        "NASREPRO_NB201_FILE or the evaluator option `path`)"
    )


def test_parse_datasets():
    assert parse_datasets("cifar10, svhn,cifar10") == ["cifar10", "svhn"]
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar' \(did you mean 'cifar10'\?\)"):
        parse_datasets("cifar")
    with pytest.raises(ValueError, match="at least one"):
        parse_datasets(" , ")


def test_run_datasets_and_preflight_of_retraining_data(
    suite, tmp_path, monkeypatch, capsys, mlflow_uri
):
    """No CIFAR files anywhere. Without --datasets the suite is refused (exit 2, one line,
    with the hint); --datasets cifar100 runs the digits experiment, skips on-c10 (named), and
    the preflight refuses the CIFAR-100 retraining before any step: nothing recorded."""
    from nasrepro.cli import main

    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "no-data"
    common = ["--registry", "reg", "--tracking-uri", mlflow_uri,
              "--device", "cpu", "--data-root", str(empty)]  # fmt: skip
    assert main(["run", str(suite), *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cifar10" in err[0] and "--datasets NAME" in err[0]

    assert main(["run", str(suite), *common, "--datasets", "cifar100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "experiments.retrain-c100: retraining data: cifar100" in err and "\n" not in err
    assert not (tmp_path / "reg").exists()  # refused before any trial ran

    # what the data allow: the digits experiment (the retraining needs cifar100's files)
    code = main(["run", str(suite), *common, "--datasets", "svhn", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["trials"]["run"] == 1
    assert out["skipped_for_data"] == [
        "data/on-c10: 2 trial(s) skipped: searches on cifar10 (not in --datasets)",
        "data/retrain-c100: 1 trial(s) skipped: evaluates on cifar100 (not in --datasets)",
        NO_FILE,  # not fatal: the other experiments run
    ]


def test_plan_shows_the_same_selection_and_its_cost(suite, tmp_path, capsys):
    """`nasrepro plan --datasets` keeps what `run --datasets` would run, names the rest with
    the same lines, and estimates the kept trials on the chosen device."""
    from nasrepro.cli import main

    (tmp_path / "reg").mkdir()
    reg = ["--registry", str(tmp_path / "reg")]
    assert main(["plan", str(suite), *reg, "--datasets", "cifar10", "--device", "cpu-2core",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["device"]["id"] == "cpu-2core" and out["datasets"] == ["cifar10"]
    assert sorted({n["experiment"] for t in out["trials"] for n in t["needed_by"]}) == [
        "on-c10", "on-digits"
    ]  # fmt: skip
    assert out["skipped_by_datasets"] == [
        "data/retrain-c100: 1 trial(s) skipped: evaluates on cifar100 (not in --datasets)",
        NO_FILE,
    ]
    assert out["totals"]["unique_trials"] == 3  # estimated on the device (hours round to 0 here)
    assert all(t["estimate"]["search_step_ms"] > 0 for t in out["trials"])
    assert all(t["estimate"]["basis"][0].startswith("cpu-2core ") for t in out["trials"])
    assert main(["plan", str(suite), *reg, "--datasets", "cifar10", "--device",
                 "cpu-2core"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "Datasets cifar10: 2 experiment(s) skipped" in text and NO_FILE in text
