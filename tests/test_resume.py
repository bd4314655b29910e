"""Crash-safe resume: a trial killed by SIGKILL and re-run ends exactly as an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from suite_fixtures import nb201_darts_suite, trial_records

SUITE = nb201_darts_suite(
    "resumetest", seeds=1, smoke_seeds=1, smoke_epochs=6, smoke_steps=6, channels=4
)


def _cmd(workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nasrepro.cli",
        "run",
        str(workdir / "s.yaml"),
        "--budget",
        "smoke",
        "--device",
        "cpu",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _workdir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "s.yaml").write_text(SUITE)
    return d


def _record(workdir: Path) -> dict:
    files = trial_records(workdir / "registry")
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _comparable(rec: dict) -> dict:
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in rec["search"]["history"]]
    return {"genotype": rec["genotype"], "metrics": rec["metrics"], "history": history}


def _checkpoint(workdir: Path) -> Path | None:
    found = (
        list((workdir / "checkpoints").rglob("*.pt")) if (workdir / "checkpoints").exists() else []
    )
    return found[0] if found else None


def _run(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(workdir), cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300
    )


def _kill_after_epoch(workdir: Path, epoch: int, sig: int = signal.SIGKILL) -> int:
    proc = subprocess.Popen(
        _cmd(workdir), cwd=workdir, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            ckpt = _checkpoint(workdir)
            if ckpt is not None:
                try:
                    saved = torch.load(ckpt, weights_only=True)["engine"]["epoch"]
                except Exception:  # noqa: BLE001  (caught mid-replace: look again)
                    saved = -1
                if saved >= epoch:
                    proc.send_signal(sig)
                    break
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.01)
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    workdir = _workdir(tmp_path_factory.mktemp("resume"), "uninterrupted")
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    return {"workdir": workdir, "record": _record(workdir)}


@pytest.mark.parametrize("kill_after", [1, 3])
def test_killed_trial_resumes_identically(tmp_path, reference, kill_after):
    workdir = _workdir(tmp_path, f"killed{kill_after}")
    assert _kill_after_epoch(workdir, kill_after) == -signal.SIGKILL
    assert not (workdir / "registry").exists() or not trial_records(workdir / "registry")
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    assert "resuming after epoch" in done.stderr
    assert _comparable(_record(workdir)) == _comparable(reference["record"])
    assert _checkpoint(workdir) is None  # removed once the record is written

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/resumetest")
    trials = "tags.`nasrepro.kind` = 'reproduction'"  # the trial runs, not the claims view
    runs = client.search_runs([exp.experiment_id], filter_string=trials)
    assert len(runs) == 2  # one parent, one child: continued, not duplicated
    assert all(r.info.status == "FINISHED" for r in runs)


def test_sigterm_marks_runs_killed_and_resumes(tmp_path, reference):
    workdir = _workdir(tmp_path, "terminated")
    assert _kill_after_epoch(workdir, 2, signal.SIGTERM) == 130

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/resumetest")
    assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"KILLED"}
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    assert _comparable(_record(workdir)) == _comparable(reference["record"])


def test_corrupt_checkpoint_is_refused_and_the_trial_restarts(tmp_path, reference):
    workdir = _workdir(tmp_path, "corrupt")
    assert _kill_after_epoch(workdir, 1) == -signal.SIGKILL
    ckpt = _checkpoint(workdir)
    ckpt.write_bytes(b"not a checkpoint")
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    assert "corrupt checkpoint" in done.stderr and "starting the trial over" in done.stderr
    assert _comparable(_record(workdir)) == _comparable(reference["record"])


def test_rerun_of_a_recorded_trial_adds_nothing(reference):
    workdir = reference["workdir"]
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    assert "already in registry/" in done.stderr
    assert len(trial_records(workdir / "registry")) == 1


def test_foreign_checkpoint_is_refused(tmp_path):
    from nasrepro.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, {"config_hash": "a" * 64, "engine": {"epoch": 1}})
    assert load_checkpoint(path, "a" * 64)["engine"]["epoch"] == 1
    with pytest.raises(CheckpointError, match="another configuration"):
        load_checkpoint(path, "b" * 64)
    torch.save({"format": "other"}, path)
    with pytest.raises(CheckpointError, match="not a nasrepro.checkpoint/1"):
        load_checkpoint(path, "a" * 64)


def test_stateful_hooks_resume_identically_in_process():
    """Λ-DARTS (f/b parity), SDARTS-RS (noise generator) and DARTS+ (ranking) keep state."""
    import io

    from torch import nn

    from nasrepro.datasets import build_search_data
    from nasrepro.methods.base import build_hooks
    from nasrepro.search.engine import SearchContext, run_search, seed_everything
    from nasrepro.spaces.nb201 import Nb201Supernet
    from nasrepro.suite import SearchSettings

    settings = SearchSettings(
        epochs=4,
        batch_size=16,
        lr=0.025,
        lr_min=0.001,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        arch_lr=3e-4,
        arch_weight_decay=1e-3,
        steps_per_epoch=3,
        image_size=8,
    )
    methods = ["darts", "lambda", "sdarts_rs", "darts_plus"]
    args = {"lambda": {"difference": "forward_backward"}, "darts_plus": {"sc_k": None, "rt_k": 10}}

    def make():
        seed_everything(3, True)
        data = build_search_data(
            "synthetic",
            root=None,
            batch_size=16,
            seed=3,
            image_size=8,
            options={"n": 96, "num_classes": 3},
        )
        ctx = SearchContext(
            supernet=Nb201Supernet(3, c=4, n=1),
            settings=settings,
            hooks=build_hooks(methods, args),
            device=torch.device("cpu"),
            criterion=nn.CrossEntropyLoss(),
        )
        return ctx, data

    ctx, data = make()
    full = run_search(ctx, data.loader, data.steps_per_epoch)

    saved: dict[str, bytes] = {}

    class Killed(Exception):
        pass

    def checkpoint(state):
        if state["epoch"] == 2:
            buf = io.BytesIO()
            torch.save(state, buf)
            saved["state"] = buf.getvalue()
            raise Killed

    ctx2, data2 = make()
    with pytest.raises(Killed):
        run_search(ctx2, data2.loader, data2.steps_per_epoch, checkpoint=checkpoint)
    ctx3, data3 = make()
    state = torch.load(io.BytesIO(saved["state"]), weights_only=True)
    resumed = run_search(ctx3, data3.loader, data3.steps_per_epoch, resume=state)

    def strip(history):
        return [{k: v for k, v in vars(h).items() if k != "seconds"} for h in history]

    assert torch.equal(ctx.supernet.arch_alpha, ctx3.supernet.arch_alpha)
    assert strip(full) == strip(resumed)
