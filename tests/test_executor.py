"""Executors: the same trials run here, in one worker per device, or on a Ray cluster."""

import json

import pytest
from suite_fixtures import nb201_darts_suite, trial_records

from nasrepro.executor import LocalExecutor
from nasrepro.runner import TrialFailed, run_suite

SUITE = nb201_darts_suite("exectest", seeds=2, smoke_seeds=2, smoke_epochs=1)


@pytest.fixture
def suite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    return path


def _children(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/exectest")
    trials = "tags.`nasrepro.kind` = 'reproduction'"  # the trial runs, not the claims view
    runs = client.search_runs([exp.experiment_id], filter_string=trials)
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags], runs


def test_one_worker_per_device_runs_every_trial(suite, tmp_path):
    summary = run_suite(suite, budget="smoke", executor=LocalExecutor(["cpu", "cpu"]))
    assert len(summary.records) == 2
    seeds = sorted(json.loads(p.read_text())["seed"] for p in summary.records)
    assert seeds == [0, 1]
    children, runs = _children(tmp_path)
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in runs)
    # idempotent: a second run finds both trials recorded and runs nothing
    again = run_suite(suite, budget="smoke", executor=LocalExecutor(["cpu", "cpu"]))
    assert again.records == [] and again.skipped == 2


def test_ray_executor_runs_trials_on_a_local_cluster(suite, tmp_path):
    pytest.importorskip("ray")
    from nasrepro.executor.ray import RayExecutor

    summary = run_suite(suite, budget="smoke", executor=RayExecutor(address=None, num_cpus=2))
    assert len(summary.records) == 2
    children, runs = _children(tmp_path)
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in runs)


def test_a_failing_trial_marks_runs_failed_and_records_nothing(suite, tmp_path):
    bad = (
        suite.read_text()
        .replace("lr: 0.025", "lr: 1.0e+12")
        .replace("search: {epochs: 1,", "search: {epochs: 1, grad_clip: null,")
    )
    suite.write_text(bad)
    with pytest.raises(TrialFailed, match="loss became"):
        run_suite(suite, budget="smoke", executor=LocalExecutor(["cpu"]))
    assert (
        not trial_records(tmp_path / "registry")
        if (tmp_path / "registry").exists()
        else True
    )
    _, runs = _children(tmp_path)
    assert runs and all(r.info.status == "FAILED" for r in runs)


def test_fast_run_records_its_switches_and_matches_the_plain_run(suite, tmp_path):
    plain = run_suite(suite, budget="smoke", device="cpu", registry="plain")
    fast = run_suite(suite, budget="smoke", device="cpu", registry="fast", fast=True)
    by_seed = {}
    for path in [*plain.records, *fast.records]:
        rec = json.loads(path.read_text())
        by_seed.setdefault(rec["seed"], []).append(rec)
    for seed, (a, b) in by_seed.items():
        flags = ("fused", "cuda_graph", "channels_last")
        assert not any(a["provenance"]["speed_switches"][k] for k in flags)
        chosen = b["provenance"]["speed_switches"]  # what won on this CPU at this size
        assert chosen["chosen"] in chosen["timings"]["median_ms"]
        assert chosen["fused"] == ("fused" in chosen["chosen"])
        assert chosen["cuda_graph"] is False  # no CUDA here
        assert a["config_hash"] == b["config_hash"]  # same experiment, another execution
        assert a["genotype"] == b["genotype"], seed
        for ha, hb in zip(a["search"]["history"], b["search"]["history"], strict=True):
            assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-5)
            assert hb["valid_loss"] == pytest.approx(ha["valid_loss"], rel=1e-5)


def test_ray_address_auto_attaches_to_a_running_cluster(suite, tmp_path, monkeypatch):
    """`--ray-address auto`: the cluster `ray start --head` started is found as Ray finds
    it, and the trials run there; once it is stopped, `auto` is refused in one line."""
    ray = pytest.importorskip("ray")
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from nasrepro.cli import main

    cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    start = [cli, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
             "--disable-usage-stats"]  # fmt: skip
    started = subprocess.run(start, capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        pytest.skip(f"`ray start --head` failed here: {started.stderr.strip()[-300:]}")
    ray.shutdown()  # an earlier test's local instance would take the jobs instead
    try:
        from nasrepro.preflight import _auto_ray_address

        cluster = _auto_ray_address()
        argv = ["run", str(suite), "--budget", "smoke", "--device", "cpu", "--executor", "ray",
                "--ray-address", "auto"]  # fmt: skip
        assert main(argv) == 0
        assert ray.get_runtime_context().gcs_address == cluster  # attached, not a local one
        assert len(trial_records(tmp_path / "registry")) == 2
        children, runs = _children(tmp_path)
        assert len(children) == 2 and all(r.info.status == "FINISHED" for r in runs)
    finally:
        ray.shutdown()
        subprocess.run([cli, "stop", "--force"], capture_output=True, timeout=120)
    from nasrepro.preflight import PreflightError, check_ray

    with pytest.raises(PreflightError, match="--ray-address auto: no running Ray cluster"):
        check_ray("auto")
