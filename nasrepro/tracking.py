"""MLflow tracking: experiment per suite, parent run per (experiment, budget), child per seed.

Uses `MlflowClient` (no global active-run state) so trials can log from any thread or
process. The default store is SQLite in the working directory (MLflow's own default;
the file store is in maintenance mode); `--tracking-uri` / MLFLOW_TRACKING_URI point
elsewhere, e.g. a tracking server.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Runs this process opened and has not ended, and those it marked KILLED: what an
# interrupt really did, for its message (cli.py).
_OPEN_RUNS: dict[str, Tracker] = {}
_KILLED: set[str] = set()


class TrackingUnavailable(RuntimeError):
    """The tracking URI cannot be used (server unreachable, store directory missing)."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other schemes or in-memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, if `uri` cannot be tracked to: an HTTP server that
    accepts no connection, a SQLite or file store whose directory is missing or read-only.
    (MLflow itself retries an unreachable server for minutes.)"""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname or "localhost", port), timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise TrackingUnavailable(
                f"tracking server {uri} is unreachable ({reason}); start it or pass another "
                "--tracking-uri / MLFLOW_TRACKING_URI"
            ) from None
        return
    db = sqlite_path(uri)
    if db is not None:
        folder = db.parent
    elif parsed.scheme in ("", "file"):
        folder = Path(parsed.path or uri)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # a file store creates its directory: its parent counts
    else:
        return  # other stores (databricks, postgresql ...) are MLflow's to check
    if not folder.is_dir():
        raise TrackingUnavailable(f"tracking store {uri}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingUnavailable(f"tracking store {uri}: directory {folder} is not writable")


@contextlib.contextmanager
def store_creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's directory while the store is opened:
    two `nasrepro run`s on a fresh store would otherwise race in MLflow's schema creation
    and migrations, and one would crash. Other stores need no lock."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    import fcntl

    fd = os.open(db.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def kill_open_runs() -> int:
    """Mark the runs this process left open KILLED (on an interrupt); returns how many
    runs this process has marked KILLED in all."""
    for run_id, tracker in list(_OPEN_RUNS.items()):
        try:
            tracker.end_run(run_id, "KILLED")
        except Exception:  # noqa: BLE001  (best effort while exiting; the run stays RUNNING)
            _OPEN_RUNS.pop(run_id, None)
    return len(_KILLED)


def resolve_uri(uri: str | None) -> str:
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Dotted keys (`search.epochs`, `method_args.lambda.lambda_`), values as strings."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = json.dumps(obj) if isinstance(obj, list | tuple) else str(obj)
    return out


class Tracker:
    """Thin wrapper over MlflowClient with the project's naming convention."""

    def __init__(self, uri: str | None = None) -> None:
        import logging

        import mlflow
        from mlflow.tracking import MlflowClient

        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = resolve_uri(uri)
        mlflow.set_tracking_uri(self.uri)
        with store_creation_lock(self.uri):
            self.client = MlflowClient(tracking_uri=self.uri)
            self.client.search_experiments(max_results=1)  # builds the store's schema

    def experiment_id(self, suite: str) -> str:
        name = f"nasrepro/{suite}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        return self.client.create_experiment(name)

    def start_run(
        self, experiment_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None
    ) -> str:
        tags = dict(tags)
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=name, tags=tags)
        _OPEN_RUNS[run.info.run_id] = self
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in sorted(metrics.items())]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i : i + 500])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in sorted(tags.items())])

    def log_json(self, run_id: str, obj: Any, name: str) -> None:
        self.client.log_dict(run_id, obj, name)

    def log_file(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def log_figure(self, run_id: str, figure: Any, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            figure.savefig(path, dpi=100)
            self.client.log_artifact(run_id, str(path))

    def reopen(self, run_id: str) -> None:
        """Mark an interrupted run running again (a resumed trial continues it)."""
        self.client.update_run(run_id, status="RUNNING")
        _OPEN_RUNS[run_id] = self

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)
        _OPEN_RUNS.pop(run_id, None)
        if status == "KILLED":
            _KILLED.add(run_id)


class NullTracker(Tracker):
    """Tracks nothing: the ranks other than 0 of a data-parallel search."""

    def __init__(self) -> None:
        self.uri = ""

    def start_run(
        self, experiment_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None
    ) -> str:
        return ""

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        pass

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        pass

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        pass

    def log_json(self, run_id: str, obj: Any, name: str) -> None:
        pass

    def reopen(self, run_id: str) -> None:
        pass

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        pass
