"""MLflow tracking: experiment per suite, parent run per (experiment, budget), child per seed.

Uses `MlflowClient` (no global active-run state) so trials can log from any thread or
process. The default store is SQLite in the working directory (MLflow's own default;
the file store is in maintenance mode); `--tracking-uri` / MLFLOW_TRACKING_URI point
elsewhere, e.g. a tracking server. With a SQLite store, artifacts go to `mlruns/` beside
the database file, wherever the command runs.

Every run carries `mlflow.source.name`, `mlflow.source.git.commit` (when nasrepro runs from
a git checkout) and `nasrepro.kind` (reproduction / tuning / bench), so the MLflow UI can
filter, e.g. `tags.nasrepro.kind = 'reproduction'`. Children are named
`<experiment> <budget> seed<k>`; a parent carries the mean/std over its finished children
of every `final.*` metric next to the claimed values (`claim.<dataset>.<metric>`) and ends
when its last child ends. α is logged per edge as argmax op index and entropy (op names in
`alpha_ops.json`), with the α figure and the selection's decisions as artifacts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# Runs this process opened and has not ended, and those it marked KILLED: what an
# interrupt really did, for its message (cli.py).
_OPEN_RUNS: dict[str, Tracker] = {}
_KILLED: set[str] = set()


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


KINDS = ("reproduction", "tuning", "bench")
SOURCE_ENV = "NASREPRO_SOURCE"  # the command line, exported by the CLI to its workers
ARTIFACT_DIR = "mlruns"  # beside a SQLite database


def resolve_uri(uri: str | None) -> str:
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative to the working directory, as
    SQLAlchemy reads it), or None for any other store."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: `mlruns/<experiment>/` beside a SQLite
    database (not the working directory of whichever command created it); None lets other
    stores (a file store, a tracking server) decide."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / ARTIFACT_DIR / experiment).as_uri()


def source_tags() -> dict[str, str]:
    """`mlflow.source.*` tags of this invocation (the git commit when run from a checkout)."""
    from nasrepro import __version__
    from nasrepro.provenance import git_state

    tags = {
        "mlflow.source.name": os.environ.get(SOURCE_ENV) or "nasrepro",
        "mlflow.source.type": "LOCAL",
        "nasrepro.version": __version__,
    }
    commit, dirty = git_state()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["nasrepro.git_dirty"] = str(bool(dirty)).lower()
    return tags


def child_run_name(experiment: str, budget: str, seed: int) -> str:
    """Unambiguous in chart legends across experiments and budgets."""
    return f"{experiment} {budget} seed{seed}"


def parent_run_name(experiment: str, budget: str) -> str:
    return f"{experiment} {budget}"


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

    def __init__(self, uri: str | None = None, kind: str = "reproduction") -> None:
        if kind not in KINDS:
            raise ValueError(f"tracker kind {kind!r}: one of {', '.join(KINDS)}")
        import mlflow
        from mlflow.tracking import MlflowClient

        from nasrepro.progress import quiet_libraries

        quiet_libraries()  # mlflow sets its logger to INFO on import
        self.uri = resolve_uri(uri)
        self.kind = kind
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
        return self.client.create_experiment(
            name, artifact_location=artifact_location(self.uri, suite)
        )

    def start_run(
        self, experiment_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None
    ) -> str:
        tags = {**source_tags(), "nasrepro.kind": self.kind, **tags}
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

    def log_file(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        pass

    def reopen(self, run_id: str) -> None:
        pass

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        pass


# --------------------------------------------------------------------------------------
# What the runs hold: α per edge, claims and seed statistics on the parent, decisions
# --------------------------------------------------------------------------------------


def entropy(probs: Sequence[float]) -> float:
    """Shannon entropy in nats of a probability row (0·log 0 = 0)."""
    return -math.fsum(p * math.log(p) for p in probs if p > 0)


def alpha_summary(alpha: Mapping[str, Sequence[Sequence[float]]]) -> dict[str, float]:
    """Per edge of every α tensor: the argmax op's index (names in `alpha_ops.json`) and the
    entropy of softmax(α) — two charts per edge instead of one per (edge, op)."""
    out: dict[str, float] = {}
    for name, rows in alpha.items():
        for e, row in enumerate(rows):
            out[f"alpha.{name}.e{e}.argmax"] = float(max(range(len(row)), key=row.__getitem__))
            out[f"alpha.{name}.e{e}.entropy"] = entropy(row)
    return out


def alpha_ops(
    alpha: Mapping[str, Sequence[Sequence[float]]], op_names: Callable[[str, int], Sequence[str]]
) -> dict[str, list[list[str]]]:
    """The op names behind each `alpha.<tensor>.e<edge>.argmax` index."""
    return {
        name: [list(op_names(name, e)) for e in range(len(rows))] for name, rows in alpha.items()
    }


def claim_metrics(claims: Iterable[Any]) -> dict[str, float]:
    """The values an experiment's parent run is judged against, named like the children's
    `final.<dataset>.<metric>`: `claim.<dataset>.<metric>` (protocol `mean`; other protocols
    add theirs, e.g. `.best_by_valid`) and `.std` where the paper gives one; a known typo is
    logged at its corrected value. The first claim of a name wins."""
    out: dict[str, float] = {}
    for c in claims:
        key = f"claim.{c.dataset}.{c.metric}" + ("" if c.protocol == "mean" else f".{c.protocol}")
        if key in out:
            continue
        value = c.corrected_value if c.corrected_value is not None else c.value
        out[key] = float(value)
        if c.std is not None:
            out[f"{key}.std"] = float(c.std)
    return out


def seed_statistics(children: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and sample standard deviation (n - 1; none for one seed) over the children of
    every `final.*` metric: `mean.final.<dataset>.<metric>`, `std.final...`, `n_seeds`."""
    keys = sorted({k for m in children for k in m if k.startswith("final.")})
    out: dict[str, float] = {"n_seeds": float(len(children))}
    for key in keys:
        values = [float(m[key]) for m in children if key in m and math.isfinite(m[key])]
        if not values:
            continue
        mean = math.fsum(values) / len(values)
        out[f"mean.{key}"] = mean
        if len(values) > 1:
            var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
            out[f"std.{key}"] = math.sqrt(var)
    return out


def finish_parent(
    tracker: Tracker, parent_run_id: str, expected: Iterable[str], status: str | None = None
) -> bool:
    """Log the seed statistics of `parent_run_id`'s finished children and end it once a
    finished child exists for every config hash in `expected` (or at once with `status`,
    e.g. FAILED). True when the parent was ended. Safe to call from several workers."""
    if not parent_run_id or isinstance(tracker, NullTracker):
        return False
    parent = tracker.client.get_run(parent_run_id)
    children = tracker.client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
    )
    done = [c for c in children if c.info.status == "FINISHED"]
    complete = set(expected) <= {c.data.tags.get("config_hash") for c in done}
    if done:
        tracker.log_metrics(parent_run_id, seed_statistics([c.data.metrics for c in done]), 0)
    if status is not None or complete:
        tracker.end_run(parent_run_id, status or "FINISHED")
        return True
    return False


def log_alpha_figure(
    tracker: Tracker, run_id: str, history: list[dict[str, Any]], labels: Mapping[str, str]
) -> None:
    """The α trajectories of one trial (the report's figure for one seed) as `alpha.png`."""
    from nasrepro.report.alpha_plot import plot_alpha

    record = {"space": labels["space"], "search": {"history": history}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpha.png"
        if plot_alpha([record], path, labels["suite"], labels["experiment"], labels["budget"]):
            tracker.log_file(run_id, path)


def stage_sink(tracker: Tracker, run_id: str) -> Callable[[str, dict[str, Any]], None]:
    """Where a trial's stages send their decisions as they happen (nasrepro.progress.event):
    PT/PT-Mag decisions to `selection/decisions.json` (rewritten after each, with the count
    as metric `select.decisions`), tuning epochs as `select.*` metrics."""

    def sink(kind: str, payload: dict[str, Any]) -> None:
        if kind == "pt_decision":
            tracker.log_json(run_id, payload["decisions"], "selection/decisions.json")
            tracker.log_metrics(run_id, {"select.decisions": payload["index"]}, payload["index"])
        elif kind == "pt_tuning_epoch":
            values = {
                f"select.{k}": float(v)
                for k, v in payload.items()
                if k != "epoch" and isinstance(v, int | float) and math.isfinite(v)
            }
            tracker.log_metrics(run_id, values, int(payload["epoch"]))

    return sink
