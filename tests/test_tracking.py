"""MLflow conventions (nasrepro/tracking.py): tags, names, artifact location, parent
statistics, α summaries."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from suite_fixtures import nb201_darts_suite

from nasrepro.cli import main
from nasrepro.provenance import git_state
from nasrepro.tracking import (
    SOURCE_ENV,
    Tracker,
    alpha_ops,
    alpha_summary,
    artifact_location,
    claim_metrics,
    entropy,
    finish_parent,
    seed_statistics,
    sqlite_path,
)

SUITE = nb201_darts_suite(
    "tracktest", seeds=4, smoke_seeds=2, smoke_epochs=1, claim="std: 0.5, n_seeds: 4"
)


def test_entropy_and_alpha_summary_by_hand():
    assert entropy([0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-15)
    assert entropy([1.0, 0.0, 0.0]) == 0.0
    summary = alpha_summary({"cell": [[0.2, 0.7, 0.1], [0.25, 0.25, 0.5]]})
    assert summary == {
        "alpha.cell.e0.argmax": 1.0,
        "alpha.cell.e0.entropy": pytest.approx(
            -(0.2 * math.log(0.2) + 0.7 * math.log(0.7) + 0.1 * math.log(0.1))
        ),
        "alpha.cell.e1.argmax": 2.0,
        "alpha.cell.e1.entropy": pytest.approx(1.5 * math.log(2)),
    }
    ops = alpha_ops({"cell": [[0.1, 0.9]]}, lambda name, e: ("none", "skip_connect"))
    assert ops == {"cell": [["none", "skip_connect"]]}


def test_seed_statistics_mean_and_sample_std():
    stats = seed_statistics([{"final.c10.test_acc": 90.0, "lr": 0.1}, {"final.c10.test_acc": 92.0}])
    assert stats == {
        "n_seeds": 2.0,
        "mean.final.c10.test_acc": 91.0,
        "std.final.c10.test_acc": pytest.approx(math.sqrt(2.0), rel=1e-15),
    }
    assert seed_statistics([{"final.x": 1.0}]) == {"n_seeds": 1.0, "mean.final.x": 1.0}


def test_claim_metrics_named_like_the_children():
    claim = SimpleNamespace(
        dataset="cifar10", metric="test_acc", value=94.36, std=0.1, corrected_value=None
    )
    best = SimpleNamespace(
        dataset="cifar10", metric="test_acc", value=94.9, std=None, corrected_value=None
    )
    typo = SimpleNamespace(
        dataset="cifar10", metric="test_err", value=3.43, std=None, corrected_value=2.43
    )
    out = claim_metrics(
        [
            SimpleNamespace(**vars(claim), protocol="mean"),
            SimpleNamespace(**vars(best), protocol="best_by_valid"),
            SimpleNamespace(**{**vars(claim), "value": 1.0}, protocol="mean"),  # first wins
            SimpleNamespace(**vars(typo), protocol="mean"),  # judged at the corrected value
        ]
    )
    assert out == {
        "claim.cifar10.test_acc": 94.36,
        "claim.cifar10.test_acc.std": 0.1,
        "claim.cifar10.test_acc.best_by_valid": 94.9,
        "claim.cifar10.test_err": 2.43,
    }


def test_artifacts_go_beside_a_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///rel/m.db") == tmp_path / "rel" / "m.db"
    assert sqlite_path("sqlite:////abs/m.db") == Path("/abs/m.db")
    assert sqlite_path("http://host:5000") is None
    assert artifact_location("sqlite:///rel/m.db", "s") == (tmp_path / "rel/mlruns/s").as_uri()
    assert artifact_location("http://host:5000", "s") is None


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating one runs MLflow's migrations: seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'm.db'}"


def test_runs_carry_source_git_and_kind_tags(store, monkeypatch):
    monkeypatch.setenv(SOURCE_ENV, "nasrepro run suites/x.yaml")
    tracker = Tracker(store, kind="bench")
    run = tracker.start_run(tracker.experiment_id("s"), "r", {"nasrepro.extra": "1"})
    tags = tracker.client.get_run(run).data.tags
    assert tags["mlflow.source.name"] == "nasrepro run suites/x.yaml"
    assert tags["nasrepro.kind"] == "bench" and tags["nasrepro.extra"] == "1"
    commit = git_state()[0]
    assert tags.get("mlflow.source.git.commit") == commit
    with pytest.raises(ValueError, match="tracker kind"):
        Tracker(store, kind="other")


def test_parent_ends_with_its_last_child(store):
    tracker = Tracker(store)
    exp = tracker.experiment_id("s")
    parent = tracker.start_run(exp, "d1 smoke", {})
    kids = []
    for seed, acc in ((0, 90.0), (1, 93.0)):
        kid = tracker.start_run(exp, f"d1 smoke seed{seed}", {"config_hash": f"h{seed}"}, parent)
        tracker.log_metrics(kid, {"final.c10.test_acc": acc}, 1)
        kids.append(kid)
    tracker.end_run(kids[0])
    assert not finish_parent(tracker, parent, ["h0", "h1"])
    assert tracker.client.get_run(parent).info.status == "RUNNING"
    tracker.end_run(kids[1])
    assert finish_parent(tracker, parent, ["h0", "h1"])
    run = tracker.client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["mean.final.c10.test_acc"] == 91.5
    assert run.data.metrics["std.final.c10.test_acc"] == pytest.approx(math.sqrt(4.5))


def test_smoke_run_tracks_named_tagged_runs_beside_the_store(tmp_path, monkeypatch, capsys):
    """The main job's conventions end to end: the store elsewhere than the working
    directory, artifacts beside it; names, kind/source tags, parent statistics and claims."""
    work, store = tmp_path / "work", tmp_path / "store"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "t.yaml").write_text(SUITE)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    store.mkdir()
    argv = ["run", "t.yaml", "--budget", "smoke", "--device", "cpu", "--tracking-uri", uri]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # "mlflow" holds one entry per suite the command ran
    assert summary["trials"] == {"run": 2, "skipped": 0, "failed": 0, "waiting": []}
    assert len(summary["records"]) == 2 and summary["mlflow"][0]["tracking_uri"] == uri
    assert summary["verdicts"] == [
        {
            "suite": "tracktest",
            "claims": 1,
            "verdicts": {
                "reproduced": 0,
                "not reproduced": 0,
                "inconclusive": 0,
                "not run": 0,
                "other budget": 1,
            },
            "classes": {"artifact": 0, "needs GPU + data": 1, "not runnable": 0},
            "conclusions": {"held": 0, "not held": 0, "inconclusive": 0, "untested": 0},
        }
    ]
    assert main([*argv, "--json"]) == 0  # everything recorded: nothing runs
    assert json.loads(capsys.readouterr().out)["trials"] == {"run": 0, "skipped": 2, "failed": 0, "waiting": []}
    assert not (work / "mlruns").exists()

    from nasrepro.api import load_registry

    df = load_registry("registry")
    assert sorted(df["seed"]) == [0, 1] and set(df["budget"]) == {"smoke"}
    assert sorted(df["path"]) == sorted(summary["records"])
    assert df["cifar10.test_acc"].between(0, 100).all()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("nasrepro/tracktest")
    assert exp.artifact_location == (store / "mlruns" / "tracktest").as_uri()
    runs = client.search_runs([exp.experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["d1 smoke", "d1 smoke seed0", "d1 smoke seed1"]
    for r in runs:
        assert r.data.tags["nasrepro.kind"] == "reproduction"
        assert r.data.tags["mlflow.source.name"].startswith("nasrepro run t.yaml")
        assert r.info.status == "FINISHED"
    parent = next(r for r in runs if r.info.run_name == "d1 smoke")
    kids = [r for r in runs if r is not parent]
    accs = [k.data.metrics["final.cifar10.test_acc"] for k in kids]
    assert parent.data.metrics["mean.final.cifar10.test_acc"] == pytest.approx(sum(accs) / 2)
    assert parent.data.metrics["claim.cifar10.test_acc"] == 54.30
    assert parent.data.metrics["claim.cifar10.test_acc.std"] == 0.5
    kid = kids[0]
    assert "alpha.cell.e0.entropy" in kid.data.metrics
    assert not any(k.startswith("alpha.cell.e0.none") for k in kid.data.metrics)
    files = {a.path for a in client.list_artifacts(kid.info.run_id)}
    assert {"alpha.png", "alpha_ops.json", "genotype.json", "search_history.json"} <= files
    ops = json.loads(
        (
            store / "mlruns" / "tracktest" / kid.info.run_id / "artifacts" / "alpha_ops.json"
        ).read_text()
    )
    assert ops["cell"][0][0] == "none"
