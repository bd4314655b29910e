"""End to end through the CLI: run (smoke) → MLflow runs, registry records, report."""

import json
from pathlib import Path

import pytest

from nasrepro.cli import main

SUITE = """\
suite: clitest
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: CLI test}}
budgets:
  smoke:
    description: "tests only: synthetic-free digits, 1 epoch of 2 steps"
    seeds: 2
    dataset: digits
    search: {{epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8}}
    space_args: {{c: 2, n: 1}}
experiments:
  d1:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {{epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3,
             order: {order}}}
    evaluator: {evaluator}
    eval_datasets: [cifar10, cifar100]
    seeds: 4
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, std: 0.0, n_seeds: 4,
     experiment: d1}}
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _suite(path: Path, order: int = 1, evaluator: str = "nb201-table") -> Path:
    path.write_text(SUITE.format(order=order, evaluator=evaluator))
    return path


def test_smoke_run_end_to_end(workdir, capsys):
    suite = _suite(workdir / "clitest.yaml", order=2)
    args = ["run", str(suite), "--budget", "smoke", "--device", "cpu"]
    assert main([*args, "--out", "reports"]) == 0
    out = capsys.readouterr().out
    assert "Registry records:  2 new" in out and "mlflow.db" in out

    records = sorted((workdir / "registry" / "clitest" / "d1" / "smoke").glob("*.json"))
    assert len(records) == 2
    rec = json.loads(records[0].read_text())
    assert rec["budget"] == "smoke" and rec["search_dataset"] == "digits"
    assert rec["config"]["search"]["order"] == 2
    assert rec["evaluation"]["evaluator"] == "nb201-table"
    assert 0 < rec["metrics"]["cifar10"]["test_acc"] < 100
    assert rec["provenance"]["deterministic"] is True and rec["provenance"]["wall_time_s"] > 0
    assert len(rec["search"]["history"]) == 1
    # the trajectory oracle: the best per-epoch lookup, recorded beside the selected cell
    for ds in ("cifar10", "cifar100"):
        best = max(h["diagnostics"][f"lookup.{ds}.test_acc"] for h in rec["search"]["history"])
        assert rec["metrics"][ds]["trajectory_best_test_acc"] == best
        assert rec["search"]["trajectory_oracle"][ds]["test_acc"] == best

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/clitest")
    trials = "tags.`nasrepro.kind` = 'reproduction'"  # the trial runs, not the claims view
    runs = client.search_runs([exp.experiment_id], filter_string=trials)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)
    child = children[0]
    assert child.data.params["search.order"] == "2"
    assert "alpha.entropy_mean" in child.data.metrics
    assert "lookup.cifar10.test_acc" in child.data.metrics
    assert rec["mlflow"]["run_id"] in {r.info.run_id for r in children}

    report = (workdir / "reports" / "clitest.md").read_text()
    assert "other budget" in report and "smoke: " in report
    assert (workdir / "reports" / "index.md").exists()
    assert list((workdir / "reports" / "figures").glob("*.png"))

    # the report command regenerates the same page from suites + registry alone
    before = report
    assert main(["report", str(suite)]) == 0
    assert (workdir / "reports" / "clitest.md").read_text() == before


def test_invalid_suite_exits_2_and_logs_nothing(workdir, capsys):
    suite = workdir / "bad.yaml"
    suite.write_text(SUITE.format(order=3, evaluator="nb201-table"))
    assert main(["run", str(suite), "--budget", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"{suite}:") and "experiments.d1.search.order" in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "registry").exists()
    assert main(["validate", str(suite)]) == 2


def test_missing_benchmark_file_exits_2_before_logging(workdir, capsys, monkeypatch):
    monkeypatch.delenv("NASREPRO_NB201_FILE", raising=False)
    suite = _suite(workdir / "api.yaml", evaluator="nb201-api")
    assert main(["run", str(suite), "--budget", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NASREPRO_NB201_FILE" in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "registry").exists()


def test_unknown_experiment_is_refused(workdir, capsys):
    suite = _suite(workdir / "x.yaml")
    assert main(["run", str(suite), "--budget", "smoke", "--experiment", "zz"]) == 2
    assert "no experiment 'zz'" in capsys.readouterr().err


def test_info_json(capsys):
    assert main(["info", "--space", "nb201", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 1_686_106 and info["arch_params"] == 30 and info["flops"] > 0
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["info", "--space", "nb201", "--genotype", arch, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["params"], info["arch_params"]) == (1_531_546, 0) and info["flops"] > 0
    assert info["network"] == "search-sized discrete network"
    # 100 classes change only the classifier: 64·90 weights + 90 biases more
    assert (
        main(["info", "--space", "nb201", "--genotype", arch, "--num-classes", "100", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["params"] == 1_531_546 + 64 * 90 + 90
    assert main(["info", "--space", "nb201", "--genotype", "|bad|"]) == 2


def test_list_shows_every_registry(capsys):
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "nb201" in listed["space"] and "darts" in listed["method"]
    assert {"cifar10", "cifar100", "svhn", "imagenet16-120", "digits", "synthetic"} <= set(
        listed["dataset"]
    )
    assert {"nb201-table", "nb201-api"} <= set(listed["evaluator"])
    assert "argmax" in listed["selector"] and "nb201/nor_conv_3x3" in listed["op"]


def test_info_eval_network_of_a_named_genotype(capsys):
    # quark0/darts logs "param size = 3.349342MB" for DARTS_V2 (auxiliary head excluded)
    assert (
        main(["info", "--space", "darts", "--genotype", "DARTS_V2", "--net", "cifar", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["params"] == 3_349_342
    assert main(["info", "--space", "nb201", "--genotype", "DARTS_V2", "--net", "cifar"]) == 2
