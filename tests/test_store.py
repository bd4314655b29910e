"""The shared store: unit records written once and checked, and locks that give one unit
one trainer across hosts and checkpoint directories, recovered when their holder died."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_fixtures import nb201_darts_suite, trial_records

from nasrepro.runner import run_suite
from nasrepro.store import (
    StoreError,
    StoreLock,
    UnitLocked,
    live_holder,
    lock_path,
    read_unit,
    unit_record,
    write_unit,
)


def _foreign_lock(path: Path, age_s: float) -> None:
    """A lock file as a process on another host writes it, last heartbeat `age_s` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": "node17", "pid": 4242, "token": "t", "label": "x"}))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_a_lock_held_on_another_host_is_respected_until_its_lease_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASREPRO_LOCK_LEASE_S", "60")
    _foreign_lock(lock_path(tmp_path, "k"), age_s=5)
    with pytest.raises(UnitLocked, match="on node17 pid 4242"), StoreLock(tmp_path, "k"):
        pass
    assert live_holder(tmp_path, "k").host == "node17"
    _foreign_lock(lock_path(tmp_path, "k"), age_s=61)  # its heartbeat stopped: host died
    assert live_holder(tmp_path, "k") is None
    with StoreLock(tmp_path, "k") as lock:
        assert lock.owned()
    assert not lock_path(tmp_path, "k").exists()


def test_the_heartbeat_keeps_a_lock_fresh_and_notices_a_takeover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASREPRO_LOCK_LEASE_S", "0.5")
    with StoreLock(tmp_path, "k") as lock:
        path = lock_path(tmp_path, "k")
        os.utime(path, (time.time() - 10, time.time() - 10))
        time.sleep(0.3)  # a heartbeat every lease/10
        assert time.time() - path.stat().st_mtime < 0.5
        _foreign_lock(path, age_s=0)  # another process took it over (e.g. after a hang)
        time.sleep(0.3)
        assert not lock.owned() and lock.lost
    assert path.exists()  # not ours: left alone on release


def test_unit_records_are_written_once_and_checked(tmp_path: Path) -> None:
    rec = unit_record("retrain", {"genotype": "g", "dataset": "cifar10"}, 0, {"metrics": {}})
    first = write_unit(tmp_path, rec)
    other = unit_record("retrain", {"genotype": "g", "dataset": "cifar10"}, 0, {"metrics": {"x": 1}})
    assert write_unit(tmp_path, other) == first  # recorded meanwhile: the first stands
    assert read_unit(tmp_path, "retrain", rec["key"])["result"] == {"metrics": {}}
    assert read_unit(tmp_path, "retrain", "0" * 64) is None
    data = json.loads(first.read_text())
    data["identity"]["dataset"] = "cifar100"  # edited: no longer what its key says
    first.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=f"{first}: key .* does not match its identity"):
        read_unit(tmp_path, "retrain", rec["key"])


def _run(workdir: Path, ckpt: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "nasrepro.cli", "run", "s.yaml", "--budget", "smoke",
           "--device", "cpu", "--checkpoint-dir", ckpt, "--registry", "registry"]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=workdir, env={**env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_runs_with_different_checkpoint_dirs_train_a_unit_once(tmp_path: Path) -> None:
    """Two `nasrepro run`s of one trial on one registry (two nodes, two working
    directories): the first takes the unit's lock in the store and trains; the second,
    checkpointing elsewhere, sees the lock and skips. The first is paused (SIGSTOP) while
    the second runs, so they overlap whatever the machine's speed."""
    import signal

    (tmp_path / "s.yaml").write_text(
        nb201_darts_suite("locktest", seeds=1, smoke_seeds=1, smoke_epochs=2)
    )
    first = _run(tmp_path, "ckpt-node1")
    locks = tmp_path / "registry" / "_locks"
    deadline = time.monotonic() + 120
    try:
        while not list(locks.glob("*.lock")) and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        node2 = tmp_path / "node2"
        node2.mkdir()
        lines: list[str] = []
        second = run_suite(  # the second run, in this process, checkpointing elsewhere
            tmp_path / "s.yaml",
            budget="smoke",
            device="cpu",
            registry=tmp_path / "registry",
            checkpoint_dir=node2 / "checkpoints",
            # its own working directory: a SQLite store beside the paused run's would wait
            # on the directory lock the paused run may hold (tracking.store_creation_lock)
            tracking_uri=f"sqlite:///{node2 / 'mlflow.db'}",
            progress=lines.append,
        )
    finally:
        first.send_signal(signal.SIGCONT)
    out1, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out1
    assert second.records == [] and second.units == []
    assert any("locktest/d1 seed 0] being run by another process" in x for x in lines), lines
    assert len(trial_records(tmp_path / "registry")) == 1
    assert len(list((tmp_path / "registry" / "_units" / "search").rglob("*.json"))) == 1
    assert not (node2 / "checkpoints" / "units").exists()  # never started training
