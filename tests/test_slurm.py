"""`--executor slurm` against a real single-node Slurm that the tests start and stop
(tests/slurm_cluster.py); skipped, with the reason, where it cannot start."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from suite_fixtures import nb201_darts_suite

from nasrepro.runner import run_suite

pytest.importorskip("submitit", reason="the `slurm` extra (submitit) is not installed")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    from slurm_cluster import Unavailable, start

    try:
        cluster = start(tmp_path_factory.mktemp("slurm"))
    except Unavailable as exc:
        pytest.skip(f"no test Slurm here: {exc}")
    # tasks inherit this environment (sbatch --export=ALL): one thread each on the test node
    before = {k: os.environ.get(k) for k in ("SLURM_CONF", "OMP_NUM_THREADS")}
    os.environ.update(SLURM_CONF=cluster.env["SLURM_CONF"], OMP_NUM_THREADS="1")
    try:
        yield cluster
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cluster.stop()


def _executor(tmp_path: Path):
    from nasrepro.executor.slurm import SlurmExecutor

    return SlurmExecutor(folder=str(tmp_path / "jobs"), poll_s=1.0)


def _run(tmp_path: Path, suite: str, executor, **kw):
    path = tmp_path / "s.yaml"
    path.write_text(suite)
    return run_suite(
        path,
        budget="smoke",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        registry=tmp_path / "registry",
        checkpoint_dir=tmp_path / "checkpoints",
        device="cpu",
        executor=executor,
        progress=lambda line: None,
        **kw,
    )


def test_array_job_with_a_preempted_task_requeued_and_resumed(slurm, tmp_path: Path) -> None:
    """Two seeds: their two search units go out as one array job of two tasks; task 0 gets
    the signal Slurm sends before preempting (`--signal USR2@120`) after its first
    checkpoint, is requeued by submitit and resumes from that checkpoint; both records are
    written once."""
    # 20 short epochs: still searching when the signal comes, seconds on an idle machine
    suite = nb201_darts_suite("preempt", seeds=2, smoke_seeds=2, smoke_epochs=20)
    ex = _executor(tmp_path)
    result: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: result.update(summary=_run(tmp_path, suite, ex)), daemon=True
    )
    worker.start()
    ckpts = tmp_path / "checkpoints" / "units"
    deadline = time.monotonic() + 240
    while len(list(ckpts.glob("search-*.pt"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(ex.submitted) == 1, ex.submitted  # one array job
    assert len(list(ckpts.glob("search-*.pt"))) == 2, "the tasks did not checkpoint"
    task = f"{ex.submitted[0]}_0"
    slurm.run("scancel", "--signal=USR2", task)
    # Slurm holds a requeued job for two minutes (its BeginTime); release it at once
    deadline = time.monotonic() + 60
    while "BeginTime" not in slurm.run("squeue", "-h", "-r", "-o", "%r", "-j", task):
        assert time.monotonic() < deadline, "the task was not requeued"
        time.sleep(0.5)
    slurm.run("scontrol", "update", f"jobid={task}", "starttime=now")
    worker.join(timeout=240)
    assert not worker.is_alive() and "summary" in result
    assert len(result["summary"].records) == 2  # type: ignore[attr-defined]
    logs = sorted((tmp_path / "jobs").glob(f"{ex.submitted[0]}_*_log.err"))
    assert len(logs) == 2  # tasks 0 and 1 of the array
    requeued = [p for p in logs if "this job is preempted" in p.read_text()]  # submitit's
    assert len(requeued) == 1
    units = [json.loads(p.read_text()) for p in (tmp_path / "registry" / "_units" / "search").rglob("*.json")]
    processes = sorted(len(u["cost"]["processes"]) for u in units)
    assert processes == [1, 2]  # the preempted search ran in two processes, resumed
    assert "resuming after epoch" in requeued[0].read_text()


def test_requests_and_limits_come_from_the_plan() -> None:
    """No cluster needed: a unit's GPU request and time limit are the plan's (estimate ×
    1.5 + 30 min), a packed group shares one device and takes its longest member's limit,
    and every task asks for requeueing and the USR2 signal before it is killed."""
    from dataclasses import replace

    from nasrepro.executor.ray import gpu_request
    from nasrepro.executor.slurm import SlurmExecutor, time_limit_min
    from nasrepro.jobs import PackedJob, Trial, UnitJob

    trial = Trial("s", 1, "s.yaml", "h", "e", "full", "", 0, (), {"search": None})
    job = UnitJob("retrain", trial, "k", "uri", "x", "p", None, None, "cuda", "reg", "ck",
                  dataset="cifar10", gpus=2, hours=10.0)  # fmt: skip
    assert gpu_request(job) == 2 and time_limit_min(job) == 10 * 60 * 3 // 2 + 30
    assert gpu_request(replace(job, device="cpu")) == 0  # nothing to ask for off CUDA
    packed = PackedJob((replace(job, gpus=1, hours=2.0), replace(job, gpus=1, hours=4.0)))
    assert gpu_request(packed) == 1 and time_limit_min(packed) == 4 * 90 + 30
    ex = SlurmExecutor.from_options("jobs", "gpu", ["qos=high", "mem-gb=32"])
    params = ex._parameters(2, 930)
    assert params["timeout_min"] == 930 and params["mem_gb"] == 32
    assert params["gpus_per_node"] == 2 and params["slurm_partition"] == "gpu"
    assert params["slurm_additional_parameters"]["requeue"] is True
    assert params["slurm_signal_delay_s"] == 120 and params["slurm_qos"] == "high"
    assert "gpus_per_node" not in ex._parameters(0, 30)
