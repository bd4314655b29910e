"""Resume after the search: a trial killed during PT tuning or during retraining, re-run with
the same command, ends exactly as an uninterrupted one; a trial is locked while it runs."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# Tests only: DARTS space on embedded digits at 8x8, 3 cells of 4 channels; PT tunes 4 epochs
# deciding at each; the found cell is retrained for 4 epochs of 2 steps.
SUITE = """\
suite: stagetest
version: 1
paper: {file: 002_46dfa2f660c10862.txt, title: stage resume test}
budgets:
  smoke:
    description: "tests only: digits 8x8, 2 search epochs, PT 4 tuning epochs, 4 retrain epochs"
    seeds: 1
    dataset: digits
    search: {epochs: 2, steps_per_epoch: 3, batch_size: 8, image_size: 8}
    space_args: {c: 4, layers: 3}
    selector_args:
      pt: {tune_epochs: 4, proj_interval: 1, eval_batches: 2}
    evaluator_args:
      retrain: {dataset: digits, epochs: 4, max_steps: 2, max_eval_batches: 2, batch_size: 8,
                layers: 2, init_channels: 4, image_size: 8, num_workers: 0}
experiments:
  pt:
    space: darts
    space_args: {c: 16, layers: 8, include_none: false}
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3, grad_clip: 5.0}
    selector: pt
    evaluator: retrain
    evaluator_args:
      recipes:
        cifar10: {layers: 20, init_channels: 36, epochs: 600, batch_size: 96}
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {id: c1, paper_file: 002_46dfa2f660c10862.txt, table: Table 2, row: DARTS-PT, method: DARTS-PT,
     space: darts, dataset: cifar10, metric: test_err, value: 2.61, experiment: pt}
"""


def _cmd(workdir: Path) -> list[str]:
    suite = str(workdir / "s.yaml")
    return [
        sys.executable,
        "-m",
        "nasrepro.cli",
        "run",
        suite,
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


def _run(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(workdir), cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300
    )


def _record(workdir: Path) -> dict:
    files = sorted((workdir / "registry").rglob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _comparable(rec: dict) -> dict:
    run = rec["evaluation"]["source"]["runs"]["cifar10"]
    retrain = [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in run["history"]]
    return {
        "genotype": rec["genotype"],
        "metrics": rec["metrics"],
        "decisions": rec["search"]["selection"]["decisions"],
        "tuning": rec["search"]["selection"]["tuning"],
        "retrain": retrain,
    }


def _stage(workdir: Path, suffix: str) -> Path | None:
    found = (
        list((workdir / "checkpoints").rglob(f"*{suffix}"))
        if (workdir / "checkpoints").exists()
        else []
    )
    return found[0] if found else None


def _kill_when(workdir: Path, ready: Callable[[], bool]) -> int:
    proc = subprocess.Popen(
        _cmd(workdir), cwd=workdir, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            try:
                if ready():
                    proc.send_signal(signal.SIGKILL)
                    break
            except Exception:  # noqa: BLE001  (caught mid-replace: look again)
                pass
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.01)
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _tuned(workdir: Path, epochs: int) -> bool:
    path = _stage(workdir, ".select.pt")
    return path is not None and len(torch.load(path, weights_only=True)["tune_log"]) >= epochs


def _retrained(workdir: Path, epochs: int) -> bool:
    path = _stage(workdir, ".retrain-cifar10.pt")
    return path is not None and len(torch.load(path, weights_only=True)["history"]) >= epochs


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    workdir = _workdir(tmp_path_factory.mktemp("stages"), "uninterrupted")
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    return _record(workdir)


@pytest.mark.parametrize(
    ("name", "ready", "message"),
    [
        ("tuning", lambda w: _tuned(w, 2), "retrain cifar10"),
        ("retraining", lambda w: _retrained(w, 2), "retrain cifar10: resuming after epoch 2"),
    ],
)
def test_killed_after_the_search_resumes_identically(tmp_path, reference, name, ready, message):
    workdir = _workdir(tmp_path, name)
    assert _kill_when(workdir, lambda: ready(workdir)) == -signal.SIGKILL
    done = _run(workdir)
    assert done.returncode == 0, done.stderr
    assert message in done.stderr
    if name == "tuning":
        assert "resuming after the search" in done.stderr
    else:
        assert "resuming after the selection" in done.stderr
    assert _comparable(_record(workdir)) == _comparable(reference)
    assert not list((workdir / "checkpoints").rglob("*.pt"))  # all stages removed at the end


def test_a_running_trial_is_locked_against_a_second_run(tmp_path):
    from nasrepro.checkpoint import TrialLock, checkpoint_path
    from nasrepro.plan import expand
    from nasrepro.suite import load_suite

    workdir = _workdir(tmp_path, "locked")
    suite_path = workdir / "s.yaml"
    (trial,) = expand(load_suite(suite_path), suite_path, "smoke", None, None)
    with TrialLock(checkpoint_path(workdir / "checkpoints", trial)):
        done = _run(workdir)
    assert done.returncode == 1
    assert f"another process (pid {os.getpid()}) is running this trial" in done.stderr
    assert not (workdir / "registry").exists() or not list((workdir / "registry").rglob("*.json"))


def test_the_lock_of_a_killed_run_is_released(tmp_path):
    from nasrepro.checkpoint import TrialLock, TrialLocked

    base = tmp_path / "seed0-abc.pt"
    code = (
        f"from nasrepro.checkpoint import TrialLock; from pathlib import Path; import time\n"
        f"with TrialLock(Path({str(base)!r})):\n    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(TrialLocked, match=f"pid {proc.pid}"), TrialLock(base):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with TrialLock(base):  # the kernel dropped the dead holder's lock
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
