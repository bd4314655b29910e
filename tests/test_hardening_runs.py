"""Servers, disks, locks and kills: each fails fast, in one line, and harms no other run."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from nasrepro import tracking
from nasrepro.checkpoint import (
    TrialLock,
    checkpoint_path,
    load_checkpoint,
    lock_holder,
    save_checkpoint,
)
from nasrepro.cli import main
from tests.test_cli import SUITE


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking, "_OPEN_RUNS", {})
    monkeypatch.setattr(tracking, "_KILLED", set())
    return tmp_path


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialized SQLite store, copied per test: creating MLflow's schema takes seconds."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    tracking.Tracker(f"sqlite:///{db}")
    return db


def _store(workdir: Path, template: Path) -> str:
    shutil.copyfile(template, workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}"


def _suite(path: Path) -> Path:
    path.write_text(SUITE.format(order=1, evaluator="nb201-table"))
    return path


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- tracking store


def test_dead_tracking_server_fails_in_seconds(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    assert (
        main(["run", str(_suite(workdir / "s.yaml")), "--budget", "smoke", "--tracking-uri", uri])
        == 2
    )
    assert time.monotonic() - start < 10
    err = _one_line(capsys.readouterr().err)
    assert f"tracking server {uri} is unreachable" in err
    assert not (workdir / "registry").exists() and not (workdir / "checkpoints").exists()


def test_missing_store_directory_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{workdir / 'nowhere' / 'mlflow.db'}"
    assert main(["run", str(_suite(workdir / "s.yaml")), "--tracking-uri", uri]) == 2
    assert "directory" in _one_line(capsys.readouterr().err)


def _first_use(uri: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        tracker = tracking.Tracker(uri)
        out.put(("ok", tracker.experiment_id("race")))
    except Exception as exc:  # noqa: BLE001  (reported to the test)
        out.put(("failed", f"{type(exc).__name__}: {exc}".splitlines()[0]))


def test_concurrent_first_use_of_a_fresh_sqlite_store(workdir: Path) -> None:
    """Three processes open the same new store at once: MLflow's schema creation races
    (duplicate tables, alembic version rows) unless it is serialized."""
    uri = f"sqlite:///{workdir / 'fresh.db'}"
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(uri, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [r[0] for r in results] == ["ok"] * 3, results
    assert len({r[1] for r in results}) == 1  # one experiment, found or created once


# ------------------------------------------------------------------------------ interrupts


def test_interrupt_before_any_run_claims_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasrepro.runner

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(nasrepro.runner, "run_suite", interrupted)
    assert main(["run", str(_suite(workdir / "s.yaml")), "--budget", "smoke"]) == 130
    err = _one_line(capsys.readouterr().err)
    assert err == "nasrepro: interrupted; no MLflow run had been started."
    assert "KILLED" not in err


def test_interrupt_marks_open_runs_and_says_how_many(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store_template: Path,
) -> None:
    import nasrepro.runner

    uri = _store(workdir, store_template)
    opened: list[str] = []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        tracker = tracking.Tracker(uri)
        opened.append(tracker.start_run(tracker.experiment_id("x"), "p", {}))
        raise KeyboardInterrupt  # after the parent exists, before the runner could end it

    monkeypatch.setattr(nasrepro.runner, "run_suite", interrupted)
    assert main(["run", str(_suite(workdir / "s.yaml")), "--tracking-uri", uri]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nasrepro: interrupted; 1 MLflow run(s) marked KILLED.")
    assert tracking.Tracker(uri).client.get_run(opened[0]).info.status == "KILLED"


# ------------------------------------------------------------------------- locks and files


def test_locked_trial_leaves_the_other_runs_parent_alone(
    workdir: Path, capsys: pytest.CaptureFixture[str], store_template: Path
) -> None:
    """Another process runs seed 0 (we hold its lock here; its checkpoint names its MLflow
    parent): a second `run` skips seed 0, runs seed 1 under its own parent and neither
    reopens nor fails the other one's."""
    from nasrepro.plan import expand
    from nasrepro.suite import load_suite

    suite = _suite(workdir / "clitest.yaml")
    uri = _store(workdir, store_template)
    seed0 = expand(load_suite(suite), suite, "smoke")[0]
    other = tracking.Tracker(uri)
    theirs = other.start_run(other.experiment_id("clitest"), "d1@smoke", {})
    ckpt = checkpoint_path(workdir / "checkpoints", seed0)
    save_checkpoint(ckpt, {"config_hash": seed0.config_hash, "parent_run_id": theirs})
    with TrialLock(ckpt):
        assert lock_holder(ckpt) == str(os.getpid())
        code = main(
            ["run", str(suite), "--budget", "smoke", "--device", "cpu", "--tracking-uri", uri]
        )
        err = capsys.readouterr().err
    assert code == 0, err
    assert "seed 0] being run by another process" in err
    assert other.client.get_run(theirs).info.status == "RUNNING"
    records = list((workdir / "registry" / "clitest" / "d1" / "smoke").glob("*.json"))
    assert len(records) == 1
    assert load_checkpoint(ckpt, seed0.config_hash)["parent_run_id"] == theirs
    assert lock_holder(ckpt) is None


def test_stale_tmp_checkpoints_are_removed_by_the_next_lock_holder(tmp_path: Path) -> None:
    ckpt = tmp_path / "seed0-0123456789abcdef.pt"
    save_checkpoint(ckpt, {"config_hash": "h"})
    left = [
        tmp_path / ".tmp-seed0-0123456789abcdef-x1y2.pt",  # a killed epoch write
        tmp_path / ".tmp-seed0-0123456789abcdef.pt-stage-k9.pt",  # a killed stage write
    ]
    others = tmp_path / ".tmp-seed1-fedcba9876543210-a.pt"  # another trial's, maybe live
    for path in [*left, others]:
        path.write_bytes(b"partial")
    with TrialLock(ckpt):
        assert not any(p.exists() for p in left)
    assert others.exists() and load_checkpoint(ckpt, "h")["config_hash"] == "h"
    assert not list(tmp_path.glob(".tmp-seed0*"))


def test_full_disk_says_so_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from the kernel (/dev/full) while a checkpoint is written: the previous
    checkpoint survives, no temporary file is left, the error names the checkpoint."""
    ckpt = tmp_path / "seed0-0123456789abcdef.pt"
    save_checkpoint(ckpt, {"config_hash": "old"})
    real_fdopen = os.fdopen

    def full_disk(fd: int, *args: Any, **kwargs: Any) -> Any:
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", full_disk)
    with pytest.raises(OSError) as err:
        save_checkpoint(ckpt, {"config_hash": "new", "blob": list(range(100_000))})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(ckpt)
    assert "No space left on device writing checkpoint" in str(err.value)
    monkeypatch.undo()
    assert load_checkpoint(ckpt, "old")["config_hash"] == "old"
    assert not list(tmp_path.glob(".tmp-*"))


def test_full_disk_in_a_command_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasrepro.report

    page = workdir / "reports" / "clitest.md"

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(page))

    monkeypatch.setattr(nasrepro.report, "build_report", full)
    (workdir / "registry").mkdir(exist_ok=True)  # report needs an existing registry
    assert main(["report", str(_suite(workdir / "clitest.yaml"))]) == 1
    err = _one_line(capsys.readouterr().err)
    assert (
        err
        == f"nasrepro: error: no space left on device writing {page}; free space there and re-run"
    )


# ------------------------------------------------------------------- data-parallel launcher

_SLEEPER = """
import json, os, sys, time
spec = json.load(open(sys.argv[1]))
open(os.path.join(spec["dir"], f"rank-{os.environ['RANK']}.pid"), "w").write(str(os.getpid()))
time.sleep(300)
"""

_LAUNCHER = """
import sys
from pathlib import Path
from nasrepro.distributed import launch
launch("h13_sleeper", {{"dir": "{dir}"}}, 1, Path("{dir}") / "work", print, None)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_killed_launcher_leaves_no_orphan(tmp_path: Path) -> None:
    """SIGKILL the process that launched torchrun: torchrun and its rank stop too."""
    (tmp_path / "h13_sleeper.py").write_text(_SLEEPER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1])]),
        "OMP_NUM_THREADS": "1",
    }
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_LAUNCHER.format(dir=tmp_path))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid_file = tmp_path / "rank-0.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), "the rank never started"
    time.sleep(0.2)
    rank = int(pid_file.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60
    while _alive(rank) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(rank)
    if alive:
        os.kill(rank, signal.SIGKILL)
    assert not alive, "the rank outlived the killed launcher"
