"""Tracking stores, Optuna storages and executors, checked in seconds before anything runs:
an unreachable server, a missing driver or package, a file that is not a database, a full
disk. Each ends with one line naming the store or server (exit 2; 1 for a full disk), and
no registry record, MLflow run, Optuna study or suggestion is written.

Every address is on the loopback interface, at a port that was just bound and closed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nasrepro import preflight, tracking
from nasrepro.cli import main
from tests.hardening_checks import closed_port, enter_workdir, one_line, tiny_suite, written

RUN = ["--budget", "smoke", "--device", "cpu"]
TUNE = ["--experiment", "d1", "--param", "search.lr=uniform(0.01,0.1)", "--trials", "1"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_workdir(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialized SQLite store, copied per test: creating MLflow's schema takes seconds."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    tracking.Tracker(f"sqlite:///{db}")
    return db


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    start = time.monotonic()
    assert main(argv) == code
    assert time.monotonic() - start < 30  # seconds, not MLflow's or Ray's minutes of retries
    err = one_line(capsys.readouterr().err)
    assert not written(Path.cwd()), written(Path.cwd())
    return err


def _runs(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])


# ------------------------------------------------------------------------ tune's tracking


def test_tune_with_an_unreachable_tracking_server(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tune` had no preflight: it hung past 120 s."""
    uri = f"http://127.0.0.1:{closed_port()}"
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["tune", str(suite), *TUNE, "--device", "cpu", "--tracking-uri", uri], capsys)
    assert err.startswith(f"nasrepro: error: tracking server {uri} is unreachable"), err


def test_tune_with_a_file_as_tracking_uri(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It gave MLflow's MlflowException traceback, after writing optuna.db."""
    afile = tmp_path / "afile"
    afile.write_text("a file")
    suite = tiny_suite(workdir / "s.yaml")
    argv = ["tune", str(suite), *TUNE, "--device", "cpu", "--tracking-uri", str(afile)]
    err = _refused(argv, capsys)
    assert err == f"nasrepro: error: tracking store {afile}: {afile} is a file, not a directory"


def test_tune_with_an_unusable_optuna_storage(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    storage = f"postgresql://tuner:secret@127.0.0.1:{port}/studies"
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["tune", str(suite), *TUNE, "--device", "cpu", "--storage", storage], capsys)
    assert err.startswith(f"nasrepro: error: --storage postgresql://tuner:***@127.0.0.1:{port}")
    assert "secret" not in err
    assert "driver" in err or "unreachable" in err


# ------------------------------------------------------------------------------ executors


def test_ray_executor_without_ray(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ModuleNotFoundError traceback, after the MLflow parent runs were opened."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), *RUN, "--executor", "ray"], capsys)
    assert err == (
        "nasrepro: error: --executor ray: Ray is not installed here "
        "(pip install 'nasrepro[ray]')"
    )


@pytest.mark.parametrize("form", ["{host}:{port}", "ray://{host}:{port}"])
def test_unreachable_ray_cluster_fails_in_seconds(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """`--ray-address 127.0.0.1:1` hung past 120 s in ray.init."""
    import ray

    def reached(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("ray.init was called: the preflight let it through")

    monkeypatch.setattr(ray, "init", reached)
    address = form.format(host="127.0.0.1", port=closed_port())
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), *RUN, "--executor", "ray", "--ray-address", address], capsys)
    assert err.startswith(f"nasrepro: error: --ray-address {address}: no Ray cluster answers"), err
    assert "ray start --head" in err


def test_ray_address_goes_with_the_ray_executor(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), *RUN, "--ray-address", "127.0.0.1:6379"], capsys)
    assert err == "nasrepro: error: --ray-address: goes with --executor ray"
    err = _refused(["run", str(suite), *RUN, "--executor", "ray", "--ray-address", "nohost"], capsys)
    assert "expected HOST:PORT" in err


# ----------------------------------------------------------------------- MLflow backends


def _not_a_database(tmp_path: Path) -> tuple[str, str]:
    db = tmp_path / "notdb.sqlite"
    db.write_text("garbage, not an SQLite file\n" * 10)
    return f"sqlite:///{db}", f"{db} is not an SQLite database"


def _directory_as_database(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path}", f"{tmp_path} is a directory, not a database file"


def _ftp(tmp_path: Path) -> tuple[str, str]:
    return "ftp://127.0.0.1/mlflow", "MLflow has no tracking store for scheme 'ftp'"


def _postgres(tmp_path: Path) -> tuple[str, str]:
    return f"postgresql://u:secret@127.0.0.1:{closed_port()}/mlflow", "postgresql://u:***@"


def _mysql(tmp_path: Path) -> tuple[str, str]:
    return f"mysql+pymysql://u:secret@127.0.0.1:{closed_port()}/mlflow", "mysql+pymysql://u:***@"


def _file_store(tmp_path: Path) -> tuple[str, str]:
    return str(tmp_path), "MLflow refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true"


def _regular_file(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "afile").write_text("a file")
    return f"file://{tmp_path / 'afile'}", f"{tmp_path / 'afile'} is a file, not a directory"


BACKENDS = {
    "sqlite file that is not a database": _not_a_database,
    "sqlite path that is a directory": _directory_as_database,
    "ftp": _ftp,
    "postgresql without its driver": _postgres,
    "mysql without its driver": _mysql,
    "retired file store": _file_store,
    "a file as a file store": _regular_file,
}


@pytest.mark.parametrize("case", list(BACKENDS))
def test_unusable_mlflow_backend_is_one_line(
    workdir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """MLFLOW_TRACKING_URI at each of these gave a traceback (after the trials' set-up)."""
    store = tmp_path / "stores"
    store.mkdir()
    uri, expected = BACKENDS[case](store)
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), *RUN], capsys)
    assert err.startswith("nasrepro: error: tracking "), err
    assert expected in err, err
    assert "secret" not in err
    err = _refused(["tune", str(suite), *TUNE, "--device", "cpu"], capsys)
    assert expected in err, err
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_database_driver_and_server_are_named(tmp_path: Path) -> None:
    """With its driver installed, a database server that accepts no connection is named."""
    port = closed_port()
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check_database_url(f"sqlite:///{tmp_path}/nowhere/x.db", "--storage")
    assert f"directory {tmp_path}/nowhere does not exist" in str(err.value)
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check_reachable("127.0.0.1", port, "database server", timeout=2.0)
    assert f"127.0.0.1:{port}" in str(err.value)


# ----------------------------------------------------------------------------- full disk


def test_full_disk_under_the_store_is_one_line_before_the_trials(
    workdir: Path, tmp_path: Path, store_template: Path
) -> None:
    """A real full filesystem under the SQLite store: a 1 MiB tmpfs, mounted in a private
    user and mount namespace (`unshare`), filled. The run stops before any trial with one
    line; before, the right line came after ~60 lines of MLflow's traceback."""
    if shutil.which("unshare") is None:
        pytest.skip("`unshare` is missing: no private tmpfs (the simulated case still runs)")
    disk = tmp_path / "disk"
    disk.mkdir()
    tiny_suite(workdir / "s.yaml")
    uri = f"sqlite:///{disk}/mlflow.db"
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {disk} || exit 99; "
        f"head -c 2000000 /dev/zero > {disk}/fill 2>/dev/null; cd {workdir}; "
        f"exec {sys.executable} -m nasrepro.cli run s.yaml {' '.join(RUN)} --tracking-uri {uri}"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        ["unshare", "-U", "-r", "-m", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 99:
        pytest.skip("no tmpfs mount here (user namespaces unavailable)")
    assert done.returncode == 1, done.stderr
    err = one_line(done.stderr)
    assert err.startswith(f"nasrepro: error: no space left on device for the MLflow store {uri}")
    assert not written(workdir), written(workdir)


def test_full_disk_found_by_the_preflight_simulated(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check where no tmpfs can be mounted: the filesystem reports 0 bytes free."""
    monkeypatch.setattr(preflight, "free_bytes", lambda folder: 0)
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), *RUN], capsys, code=1)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    assert err == (
        f"nasrepro: error: no space left on device for the MLflow store {uri} "
        f"(0 bytes free in {workdir}); free space there and re-run"
    )


def test_store_filling_up_while_running_is_one_line(
    workdir: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store_template: Path,
) -> None:
    """SQLite's own "database or disk is full" from the first write, once the preflight has
    passed: MLflow logged ~60 lines of traceback before the CLI's line. Simulated at the
    driver (every INSERT fails as SQLite fails on a full disk)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def full(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")

    shutil.copyfile(store_template, workdir / "mlflow.db")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    suite = tiny_suite(workdir / "s.yaml")
    event.listen(Engine, "before_cursor_execute", full)
    try:
        code = main(["-q", "run", str(suite), *RUN, "--tracking-uri", uri])
    finally:
        event.remove(Engine, "before_cursor_execute", full)
    out, err = capfd.readouterr()
    assert code == 1
    assert one_line(err) == f"nasrepro: error: no space left on device for the MLflow store {uri}"
    assert _runs(workdir / "mlflow.db") == 0
    assert not (workdir / "registry").exists() and not (workdir / "checkpoints").exists()
