"""`nasrepro tune`: spec grammar, path resolution, an Optuna study tracked in MLflow."""

import argparse
import math
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from nasrepro.suite import load_suite
from nasrepro.tune import (
    Distribution,
    add_tune_parser,
    parse_param,
    resolve_params,
    tune_experiment,
)

SUITE = """\
suite: tunetest
version: 1
paper: {file: 001_x.txt, title: Tune test}
budgets:
  smoke:
    description: "tests only: digits, 2 epochs of 2 steps"
    seeds: 1
    dataset: digits
    search: {epochs: 2, steps_per_epoch: 2, batch_size: 16, image_size: 8}
    space_args: {c: 2, n: 1}
experiments:
  d1:
    space: nb201
    dataset: cifar10
    methods: [darts, darts_minus]
    method_args:
      darts_minus: {beta0: 0.7}
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 4
claims:
  - {id: c1, paper_file: 001_x.txt, table: Table 1, row: DARTS-, method: DARTS-,
     space: nb201, dataset: cifar10, metric: test_acc, value: 93.8, experiment: d1}
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "tunetest.yaml").write_text(SUITE)
    return tmp_path


# ----------------------------------------------------------------------------- grammar


def test_parse_good_specs():
    p = parse_param("lambda.lambda_=loguniform(0.01,1)")
    assert p.path == ("lambda", "lambda_")
    assert p.dist == Distribution("loguniform", 0.01, 1.0)
    assert parse_param(" darts_minus.beta0 = uniform( 0 , 2 ) ").dist == Distribution(
        "uniform", 0.0, 2.0
    )
    assert parse_param("lambda.eps0=loguniform(1e-5,1e-2)").dist.low == 1e-5
    assert parse_param("search.epochs=int(10,50)").dist == Distribution("int", 10, 50)
    assert parse_param("search.batch_size=int(16,256,log)").dist.log is True
    c = parse_param("x.y=categorical(a, 2, 0.5, true, null, 'b c')").dist
    assert c.choices == ("a", 2, 0.5, True, None, "b c")
    assert str(c) == "categorical(a,2,0.5,true,null,b c)"
    assert parse_param("method_args.darts_minus.beta0=uniform(0,2)").name == (
        "method_args.darts_minus.beta0"
    )


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("lambda.lambda_", "expected PATH=KIND(ARGS)"),
        ("1x.y=uniform(0,1)", "is not a dotted name"),
        ("x.y=uniform", "expected KIND(ARGS) after '='"),
        ("x.y=normal(0,1)", "unknown distribution 'normal'"),
        ("x.y=uniform(1,0)", "lo must be below hi"),
        ("x.y=uniform(0)", "uniform takes two bounds"),
        ("x.y=uniform(0,1,2)", "uniform takes two bounds"),
        ("x.y=uniform(0,)", "empty argument"),
        ("x.y=uniform(0,inf)", "'inf' is not a number"),
        ("x.y=uniform(0,1e999)", "is not a finite number"),
        ("x.y=loguniform(0,1)", "loguniform needs lo > 0"),
        ("x.y=int(1.5,3)", "int bounds must be integers"),
        ("x.y=int(0,8,log)", "needs lo >= 1"),
        ("x.y=categorical(a)", "at least two choices"),
        ("x.y=categorical(a,a)", "choices repeat"),
        ("x.y=categorical(a,os.system('x'))", "expected KIND(ARGS)"),
        ("x.y=categorical(a,b;c)", "is not a number, true/false/null or a plain word"),
        ("__import__('os').y=uniform(0,1)", "is not a dotted name"),
    ],
)
def test_parse_bad_specs(spec, problem):
    with pytest.raises(ValueError) as info:
        parse_param(spec)
    msg = str(info.value)
    assert msg.startswith(f"--param {spec!r}: ") and problem in msg and "\n" not in msg


# ------------------------------------------------------------------------- resolution


def _resolve(workdir, *specs, budget="smoke"):
    path = workdir / "tunetest.yaml"
    return resolve_params(load_suite(path), path, "d1", budget, [parse_param(s) for s in specs])


def test_resolve_paths_against_suite(workdir):
    beta, qualified, arch_lr, epochs, c = _resolve(
        workdir,
        "darts_minus.beta0=uniform(0,2)",
        "method_args.darts_minus.decay=categorical(linear,cosine)",
        "search.arch_lr=loguniform(1e-4,1e-3)",
        "search.epochs=int(1,3)",
        "space_args.c=categorical(2,4)",
    )
    assert (beta.name, beta.config_path, beta.method) == (
        "darts_minus.beta0",
        "method_args.darts_minus.beta0",
        "darts_minus",
    )
    assert (beta.paper, beta.paper_source, beta.at_budget) == (0.7, "suite", 0.7)
    # not set by the suite: the paper's value is the method's default
    assert (qualified.name, qualified.paper, qualified.paper_source) == (
        "darts_minus.decay",
        "linear",
        "default",
    )
    assert (arch_lr.group, arch_lr.paper) == ("search", 3.0e-4)
    assert (epochs.paper, epochs.at_budget) == (50, 2)
    assert (c.config_path, c.paper, c.paper_source, c.at_budget) == (
        "space_args.c",
        16,
        "default",
        2,
    )

    config = {"method_args": {}, "search": {"epochs": 2}}
    beta.apply(config, 1.5)
    epochs.apply(config, 3)
    assert config == {"method_args": {"darts_minus": {"beta0": 1.5}}, "search": {"epochs": 3}}


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("lambda.lambda_=loguniform(0.01,1)", "'lambda' is neither a method of experiment 'd1'"),
        ("x=categorical(a,b)", "'x' is neither a method"),
        ("method_args.pc.k=int(2,4)", "'pc' is not a method of experiment 'd1'"),
        ("darts.lr=uniform(0,1)", "method 'darts' does not take 'lr'"),
        ("darts_minus.gamma=uniform(0,1)", "method 'darts_minus' does not take 'gamma'"),
        ("darts_minus.beta0=uniform(-1,1)", "method 'darts_minus' rejects beta0=-1.0"),
        ("darts_minus.beta0.x=uniform(0,1)", "expected darts_minus.<argument>"),
        ("search.nope=uniform(0,1)", "does not expose search.nope"),
        ("search.epochs=uniform(1,3)", "search.epochs=1.74 is invalid"),
        ("search.arch_lr=uniform(-1,1)", "search.arch_lr=-1.0 is invalid"),
        ("evaluator_args.path=categorical(a,b)", "does not expose evaluator_args.path"),
        ("selector_args.tune_epochs=int(1,2)", "does not expose selector_args.tune_epochs"),
        ("space_args.width=int(1,2)", "does not expose space_args.width"),
    ],
)
def test_resolve_refuses_what_the_experiment_does_not_expose(workdir, spec, problem):
    with pytest.raises(ValueError) as info:
        _resolve(workdir, spec)
    msg = str(info.value)
    assert msg.startswith(f"--param {spec!r}: ") and problem in msg and "\n" not in msg


def test_resolve_refuses_a_parameter_given_twice(workdir):
    with pytest.raises(ValueError, match="already tuned by --param"):
        _resolve(
            workdir, "darts_minus.beta0=uniform(0,1)", "method_args.darts_minus.beta0=uniform(0,2)"
        )


# ------------------------------------------------------------------------------ study


class PruneSecondTrial(optuna.pruners.BasePruner):
    """Prunes trial number 1 the first time it reports; records every question asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def prune(self, study, trial) -> bool:
        self.calls.append((trial.number, trial.last_step))
        return trial.number == 1


def test_study_tracks_prunes_suggests_and_resumes(workdir):
    suite = workdir / "tunetest.yaml"
    pruner = PruneSecondTrial()
    lines: list[str] = []
    params = ["darts_minus.beta0=uniform(0,2)", "search.arch_lr=loguniform(1e-4,1e-2)"]
    result = tune_experiment(
        suite, "d1", params, 3, budget="smoke", device="cpu", pruner=pruner, progress=lines.append
    )

    # Optuna: default storage in the cwd, default study name, one trial pruned via should_prune
    assert result.study == "tunetest-d1-smoke"
    assert result.storage == f"sqlite:///{workdir / 'optuna.db'}"
    assert (result.n_trials, result.n_complete, result.n_pruned, result.n_failed) == (3, 2, 1, 0)
    assert (1, 0) in pruner.calls and (0, 1) in pruner.calls
    assert not any(n == 1 and step == 1 for n, step in pruner.calls)  # stopped at epoch 0
    study = optuna.load_study(study_name=result.study, storage=result.storage)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "COMPLETE"}
    assert result.best_value == study.best_value and result.best_trial == study.best_trial.number
    assert result.best_params == study.best_params
    assert any("pruned at epoch 0" in line for line in lines)

    # MLflow: one parent, three nested children, the pruned one tagged
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/tunetest")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1 and set(children) == {"trial-0", "trial-1", "trial-2"}
    parent = parents[0]
    assert parent.info.run_name == "tune:d1@smoke" and parent.info.status == "FINISHED"
    assert parent.info.run_id == result.parent_run_id
    tags = parent.data.tags
    assert (tags["suite"], tags["experiment"], tags["budget"]) == ("tunetest", "d1", "smoke")
    assert tags["nasrepro.kind"] == "tuning"  # filtered out of reproduction views
    assert (tags["study"], tags["storage"]) == (result.study, result.storage)
    assert parent.data.metrics["best_value"] == pytest.approx(result.best_value)
    assert float(parent.data.params["best.darts_minus.beta0"]) == pytest.approx(
        result.best_params["darts_minus.beta0"]
    )
    assert {r.data.tags["mlflow.parentRunId"] for r in children.values()} == {parent.info.run_id}
    pruned = children["trial-1"]
    assert pruned.data.tags["optuna.state"] == "PRUNED" and pruned.info.status == "FAILED"
    assert "TrialPruned" in pruned.data.tags["error"]
    for name in ("trial-0", "trial-2"):
        child = children[name]
        trial = study.trials[int(name.split("-")[1])]
        assert child.info.status == "FINISHED" and child.data.tags["optuna.state"] == "COMPLETE"
        assert trial.user_attrs["mlflow_run_id"] == child.info.run_id
        assert float(child.data.params["tune.darts_minus.beta0"]) == pytest.approx(
            trial.params["darts_minus.beta0"]
        )
        # the sampled value is what the search ran with
        assert child.data.params["method_args.darts_minus.beta0"] == str(
            trial.params["darts_minus.beta0"]
        )
        # the objective is the final epoch's supernet validation accuracy, nothing else
        history = client.get_metric_history(child.info.run_id, "valid_acc")
        final = max(history, key=lambda m: m.step)
        assert final.step == 1 and child.data.metrics["tune.objective"] == final.value
        assert trial.value == pytest.approx(final.value)

    # tuning results are not reproduction results
    assert not (workdir / "registry").exists()

    # the suggestion: paper and tuned values, study, counts, objective, "not applied"
    path = workdir / "suites" / "tuned" / "tunetest.d1.smoke.yaml"
    assert result.override_path == Path("suites/tuned/tunetest.d1.smoke.yaml")
    text = path.read_text()
    assert "SUGGESTION, NOT APPLIED" in text
    data = yaml.safe_load(text)
    assert (data["suite"], data["experiment"], data["budget"]) == ("tunetest", "d1", "smoke")
    assert data["study"] == {"name": result.study, "storage": result.storage}
    assert data["trials"]["total"] == 3 and data["trials"]["pruned"] == 1
    assert data["objective"]["metric"] == "valid_acc"
    assert data["objective"]["best_value"] == pytest.approx(result.best_value)
    beta = data["params"]["darts_minus.beta0"]
    assert beta["paper"] == 0.7 and beta["tuned"] == pytest.approx(
        study.best_params["darts_minus.beta0"]
    )
    assert data["params"]["search.arch_lr"]["paper"] == 3.0e-4
    override = data["override"]["experiments"]["d1"]
    assert override["method_args"]["darts_minus"]["beta0"] == beta["tuned"]
    assert override["search"]["arch_lr"] == data["params"]["search.arch_lr"]["tuned"]
    assert "beta0: 0.7" in (workdir / "tunetest.yaml").read_text()  # the suite is untouched

    # a second invocation resumes the same study (default median pruner this time)
    again = tune_experiment(
        suite, "d1", params, 1, budget="smoke", device="cpu", progress=lines.append
    )
    assert again.study == result.study and again.n_trials == 4 and again.new_trials == 1
    assert again.sampler_seed == 3  # seed + trials already in the study: no repeated draws
    assert len(optuna.load_study(study_name=result.study, storage=result.storage).trials) == 4
    runs = client.search_runs([exp.experiment_id])
    assert sum("mlflow.parentRunId" not in r.data.tags for r in runs) == 2
    assert yaml.safe_load(path.read_text())["trials"]["total"] == 4
    assert not math.isnan(again.best_value)
    assert not (workdir / "registry").exists()


# -------------------------------------------------------------------------------- CLI


def _parser():
    p = argparse.ArgumentParser(prog="nasrepro")
    add_tune_parser(p.add_subparsers(dest="command", required=True))
    return p


@pytest.mark.parametrize(
    "extra, problem",
    [
        (["--param", "darts_minus.beta0=uniform(2,0)"], "lo must be below hi"),
        (["--param", "lambda.lambda_=loguniform(0.01,1)"], "'lambda' is neither a method"),
        (["--param", "darts_minus.beta0=uniform(0,2)", "--experiment", "zz"], "no experiment 'zz'"),
        (["--param", "darts_minus.beta0=uniform(0,2)", "--trials", "0"], "--trials"),
    ],
)
def test_cmd_tune_bad_input_exits_2_before_anything_is_written(workdir, capsys, extra, problem):
    argv = ["tune", "tunetest.yaml", "--experiment", "d1", "--trials", "1", *extra]
    args = _parser().parse_args(argv)
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and "\n" not in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "optuna.db").exists()
    assert not (workdir / "suites").exists()


def test_report_shows_tuned_next_to_paper_values(tmp_path):
    """The report lists suites/tuned/ suggestions beside the paper's values."""
    from pathlib import Path

    from nasrepro.report import build_report

    root = Path(__file__).resolve().parents[1]
    suite_text = (root / "suites" / "lambda_darts.yaml").read_text()
    (tmp_path / "lambda_darts.yaml").write_text(suite_text)
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "lambda_darts.nb201-lambda.smoke.yaml").write_text(
        "experiment: nb201-lambda\nbudget: smoke\n"
        "objective: {metric: valid_acc, best_value: 12.5}\n"
        "trials: {complete: 2, total: 3}\n"
        "params:\n  lambda.lambda_: {paper: 0.125, tuned: 0.3}\n"
    )
    (tmp_path / "registry").mkdir()  # an empty registry: one that does not exist is an error
    build_report([tmp_path / "lambda_darts.yaml"], tmp_path / "registry", tmp_path / "out")
    page = (tmp_path / "out" / "lambda_darts.md").read_text()
    assert "Tuned hyper-parameters (suggestions, not applied)" in page
    assert "| nb201-lambda" in page and "0.125" in page and "0.3" in page
