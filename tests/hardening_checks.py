"""What every hardening case asserts: the exit code, one line, and that nothing was written.

Shared by tests/test_hardening_*.py. A case runs a command in an empty working directory
(`workdir`); afterwards `written(workdir)` lists what a refused command must not leave
behind: registry records, an MLflow store or its artifacts, checkpoints, report pages,
an Optuna study, a tuning suggestion.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nasrepro import tracking
from tests.suite_fixtures import nb201_darts_suite

# What the commands write, relative to their working directory (their defaults).
OUTPUTS = ("registry", "mlflow.db", "mlruns", "checkpoints", "reports", "optuna.db", "suites")


def enter_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no tracking URI or Ray address from the environment
    (each test module's `workdir` fixture)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "NASREPRO_INCLUDE_DIRS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking, "_OPEN_RUNS", {})
    monkeypatch.setattr(tracking, "_KILLED", set())
    return work


def tiny_suite(path: Path, name: str = "hard") -> Path:
    """The one-experiment NB201 DARTS suite (a smoke trial takes seconds)."""
    path.write_text(nb201_darts_suite(name, seeds=1, smoke_seeds=1, smoke_epochs=1))
    return path


def one_line(text: str) -> str:
    """The whole of `text`, asserted to be one line without a traceback."""
    text = text.strip()
    assert text, "no message"
    assert "\n" not in text and "Traceback" not in text, text
    assert len(text) < 600, f"a {len(text):,}-character line"
    return text


def written(folder: Path) -> list[str]:
    """Outputs of a command found under `folder` (empty: nothing was written)."""
    found = [name for name in OUTPUTS if (folder / name).exists()]
    found += [str(p) for p in folder.rglob("*.json")]
    return found


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
