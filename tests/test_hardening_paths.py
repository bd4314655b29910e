"""Output paths and experiment names from the command line: a file where a folder goes, a
read-only folder, a path as an experiment id. Each is refused with one line, exit 2,
before any trial runs and before anything is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nasrepro.cli import main
from tests.hardening_checks import enter_workdir, one_line, tiny_suite, written

RUN = ["--budget", "smoke", "--device", "cpu"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_workdir(tmp_path, monkeypatch)


def _empty_registry(workdir: Path) -> str:
    """An existing, empty registry beside the working folder (`report` refuses a registry
    that does not exist before it looks at --out)."""
    path = workdir.parent / "empty-registry"
    path.mkdir(exist_ok=True)
    return str(path)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = one_line(capsys.readouterr().err)
    assert not written(Path.cwd()), written(Path.cwd())
    return err


@pytest.mark.parametrize("option", ["--out", "--registry", "--checkpoint-dir"])
def test_run_output_that_is_a_file_is_refused_before_the_trials(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """`--out FILE` crashed with a traceback, in `run` only after the trials."""
    suite = tiny_suite(workdir / "s.yaml")
    (workdir / "afile").write_text("not a folder")
    err = _refused(["run", str(suite), *RUN, option, "afile"], capsys)
    assert err == f"nasrepro: error: {option} afile: is a file, not a directory"
    err = _refused(["run", str(suite), *RUN, option, "afile/pages"], capsys)
    assert err == f"nasrepro: error: {option} afile/pages: afile is not a directory"


def test_report_tune_and_bench_output_that_is_a_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tiny_suite(workdir / "s.yaml")
    (workdir / "afile").write_text("not a folder")
    registry = _empty_registry(workdir)
    err = _refused(["report", str(suite), "--registry", registry, "--out", "afile"], capsys)
    assert err == "nasrepro: error: --out afile: is a file, not a directory"
    tune = ["tune", str(suite), "--experiment", "d1", "--param", "search.lr=uniform(0.01,0.1)"]
    err = _refused([*tune, "--trials", "1", "--device", "cpu", "--out", "afile"], capsys)
    assert err == "nasrepro: error: --out afile: is a file, not a directory"
    err = _refused(["bench", "--quick", "--device", "cpu", "--out", "afile"], capsys)
    assert err == "nasrepro: error: --out afile: is a file, not a directory"
    assert (workdir / "afile").read_text() == "not a folder"


def test_read_only_output_folder(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder nobody may write: a mode-555 folder for an ordinary user; for root (who
    ignores modes) a read-only tmpfs, mounted in a private user and mount namespace."""
    suite = tiny_suite(workdir / "s.yaml")
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)
        try:
            err = _refused(["run", str(suite), *RUN, "--out", str(locked / "pages")], capsys)
            assert err == (
                f"nasrepro: error: --out {locked / 'pages'}: directory {locked} is not writable"
            )
            registry = _empty_registry(workdir)
            err = _refused(["report", str(suite), "--registry", registry, "--out", str(locked)], capsys)
            assert err == f"nasrepro: error: --out {locked}: directory {locked} is not writable"
        finally:
            locked.chmod(0o755)
        return
    if shutil.which("unshare") is None:
        pytest.skip("root ignores folder modes and `unshare` is missing: no read-only mount")
    cli = f"{sys.executable} -m nasrepro.cli"
    script = (
        f"mount -t tmpfs -o ro,size=64k tmpfs {locked} || exit 99; cd {workdir}; "
        f"{cli} run s.yaml {' '.join(RUN)} --out {locked}/pages 2> {tmp_path}/run.err; "
        f"echo $? > {tmp_path}/run.rc; "
        f"{cli} report s.yaml --registry {_empty_registry(workdir)} --out {locked} "
        f"2> {tmp_path}/report.err; "
        f"echo $? > {tmp_path}/report.rc"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(["unshare", "-U", "-r", "-m", "sh", "-c", script], env=env, timeout=120)
    if done.returncode == 99 or not (tmp_path / "run.rc").exists():
        pytest.skip("no read-only mount here (user namespaces or tmpfs unavailable)")
    assert (tmp_path / "run.rc").read_text().strip() == "2"
    assert one_line((tmp_path / "run.err").read_text()) == (
        f"nasrepro: error: --out {locked}/pages: directory {locked} is not writable"
    )
    assert (tmp_path / "report.rc").read_text().strip() == "2"
    assert one_line((tmp_path / "report.err").read_text()) == (
        f"nasrepro: error: --out {locked}: directory {locked} is not writable"
    )
    assert not written(workdir), written(workdir)


@pytest.mark.parametrize("given", ["../../etc", "d11"])
def test_artifacts_with_an_unknown_experiment_is_an_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """`--artifacts --experiment ../../etc` said "nothing to run" and exited 0."""
    suite = tiny_suite(workdir / "s.yaml")
    err = _refused(["run", str(suite), "--artifacts", "--experiment", given], capsys)
    assert err.startswith(f"{suite}: --experiment: no experiment {given!r} in the suite"), err


def test_artifacts_with_a_searched_experiment_runs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A known experiment that is not a published cell: nothing to run, nothing written."""
    suite = tiny_suite(workdir / "s.yaml")
    assert main(["run", str(suite), "--artifacts", "--experiment", "d1"]) == 0
    assert f"{suite}: no artifact experiments; nothing to run" in capsys.readouterr().out
    assert not written(workdir), written(workdir)
