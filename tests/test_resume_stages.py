"""Resume after the search: a trial killed during PT tuning or during retraining, re-run with
the same command, ends exactly as an uninterrupted one; a trial is locked while it runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from suite_fixtures import trial_records

# Tests only: `pt` selects by PT on a tiny NB201 supernet (digits 8x8, 4 tuning epochs deciding
# at each, scored in the NB201 table); `rt` retrains the argmax DARTS cell for 10 epochs, killed
# after 2 (the margin keeps a loaded machine's poll from missing the run).
SUITE = """\
suite: stagetest
version: 1
paper: {file: 002_46dfa2f660c10862.txt, title: stage resume test}
budgets:
  smoke:
    description: "tests only: digits 8x8, 2 search epochs, PT 4 tuning epochs, 10 retrain epochs"
    seeds: 1
    dataset: digits
    search: {epochs: 2, steps_per_epoch: 3, batch_size: 8, image_size: 8}
    space_args: {c: 4}
    space_args_by_space:
      nb201: {n: 1}
      darts: {layers: 3}
    selector_args:
      pt: {tune_epochs: 4, proj_interval: 1, eval_batches: 2}
    evaluator_args:
      retrain: {dataset: digits, epochs: 10, max_steps: 6, max_eval_batches: 2, batch_size: 16,
                layers: 3, init_channels: 8, image_size: 16, num_workers: 0}
experiments:
  pt:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: &search {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3, grad_clip: 5.0}
    selector: pt
    eval_datasets: [cifar10]
    seeds: 1
  rt:
    space: darts
    space_args: {c: 16, layers: 8}
    dataset: cifar10
    methods: [darts]
    search: *search
    evaluator: retrain
    evaluator_args:
      recipes:
        cifar10: {layers: 20, init_channels: 36, epochs: 600, batch_size: 96}
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {id: c1, paper_file: 002_46dfa2f660c10862.txt, table: Table 4, row: DARTS-PT, method: DARTS-PT,
     space: nb201, dataset: cifar10, metric: test_acc, value: 93.80, experiment: pt}
  - {id: c2, paper_file: 002_46dfa2f660c10862.txt, table: Table 2, row: DARTS, method: DARTS,
     space: darts, dataset: cifar10, metric: test_err, value: 3.00, experiment: rt}
"""


def _cmd(workdir: Path, experiment: str) -> list[str]:
    suite = str(workdir / "s.yaml")
    return [sys.executable, "-m", "nasrepro.cli", "run", suite, "--budget", "smoke"] + [
        "--device",
        "cpu",
        "--experiment",
        experiment,
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


def _run(workdir: Path, experiment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(workdir, experiment),
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _record(workdir: Path, experiment: str) -> dict:
    files = sorted((workdir / "registry").rglob(f"{experiment}/**/*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _comparable(rec: dict) -> dict:
    out = {"genotype": rec["genotype"], "metrics": rec["metrics"]}
    if rec["search"]["selection"] is not None:
        out["decisions"] = rec["search"]["selection"]["decisions"]
        out["tuning"] = rec["search"]["selection"]["tuning"]
    runs = rec["evaluation"]["source"].get("runs")
    if runs:
        history = runs["cifar10"]["history"]
        out["retrain"] = [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]
    return out


def _stage(workdir: Path, suffix: str) -> Path | None:
    root = workdir / "checkpoints"
    found = list(root.rglob(f"*{suffix}")) if root.exists() else []
    return found[0] if found else None


def _kill_when(workdir: Path, experiment: str, ready: Callable[[], bool]) -> int:
    proc = subprocess.Popen(
        _cmd(workdir, experiment),
        cwd=workdir,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            time.sleep(0.005)
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _tuned(workdir: Path) -> bool:
    path = _stage(workdir, ".select.pt")
    return path is not None and len(torch.load(path, weights_only=True)["tune_log"]) >= 2


def _retrained(workdir: Path) -> bool:
    path = _stage(workdir, ".retrain-cifar10.pt")
    return path is not None and len(torch.load(path, weights_only=True)["history"]) >= 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = _workdir(tmp_path_factory.mktemp("stages"), "uninterrupted")
    for experiment in ("pt", "rt"):
        done = _run(workdir, experiment)
        assert done.returncode == 0, done.stderr
    return workdir


@pytest.mark.parametrize(
    ("experiment", "ready", "messages"),
    [
        ("pt", _tuned, ["resuming after the search"]),
        # the search and selection units were recorded before the kill: only the
        # retraining unit resumes
        ("rt", _retrained, ["retrain cifar10: resuming after epoch"]),
    ],
)
def test_killed_after_the_search_resumes_identically(
    tmp_path, reference, experiment, ready, messages
):
    workdir = _workdir(tmp_path, experiment)
    assert _kill_when(workdir, experiment, lambda: ready(workdir)) == -signal.SIGKILL
    done = _run(workdir, experiment)
    assert done.returncode == 0, done.stderr
    for message in messages:
        assert message in done.stderr
    expected = _comparable(_record(reference, experiment))
    assert _comparable(_record(workdir, experiment)) == expected
    assert not list((workdir / "checkpoints").rglob("*.pt"))  # all stages removed at the end


def test_a_running_trial_is_locked_against_a_second_run(tmp_path):
    from nasrepro.plan import expand
    from nasrepro.store import StoreLock
    from nasrepro.suite import load_suite

    workdir = _workdir(tmp_path, "locked")
    suite_path = workdir / "s.yaml"
    (trial,) = expand(load_suite(suite_path), suite_path, "smoke", ["pt"], None)
    # the lock is in the shared store (the registry), whatever the checkpoint directory
    with StoreLock(workdir / "registry", trial.search_key, "another run"):
        done = _run(workdir, "pt")
    # the other process records it: this run skips the trial, naming the holder, and writes
    # nothing for it
    assert done.returncode == 0, done.stderr
    assert f"being run by another process (another run on {socket.gethostname()} pid {os.getpid()}" in done.stderr
    assert not trial_records(workdir / "registry")


def test_the_lock_of_a_killed_run_is_recovered(tmp_path):
    from nasrepro.store import StoreLock, UnitLocked

    code = (
        "from nasrepro.store import StoreLock; import time\n"
        f"with StoreLock({str(tmp_path)!r}, 'k', 'holder'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(UnitLocked, match=f"pid {proc.pid}"), StoreLock(tmp_path, "k"):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert (tmp_path / "_locks" / "k.lock").exists()  # a kill leaves the file behind
        with StoreLock(tmp_path, "k"):  # same host, holder dead: recovered at once
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
