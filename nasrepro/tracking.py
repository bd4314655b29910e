"""MLflow tracking: experiment per suite, parent run per (experiment, budget), child per seed,
and a claims view per suite (nasrepro/report/mlflow_view.py).

Uses `MlflowClient` (no global active-run state) so trials can log from any thread or
process. The default store is SQLite in the working directory (MLflow's own default;
the file store is in maintenance mode); `--tracking-uri` / MLFLOW_TRACKING_URI point
elsewhere, e.g. a tracking server. With a SQLite store, artifacts go to `mlruns/` beside
the database file, wherever the command runs.

Every run carries `mlflow.source.name` (the suite file), `mlflow.source.git.commit` (when
nasrepro runs from a git checkout), `nasrepro.command` (the command line), `nasrepro.process`
(host:pid:start, so a later run can tell a run whose process died) and `nasrepro.kind`
(reproduction / tuning / bench / claims), so the MLflow UI can filter, e.g.
`tags.nasrepro.kind = 'reproduction'`. Children are named `<experiment> <budget> seed<k>`;
a parent carries the mean/std over its finished children of every `final.*` metric and ends
when its last child ends. α is logged per epoch as a few `alpha.*` summaries (entropy,
skip and parameter-free shares), the per-edge series as the table `alpha/edges.csv`, with
the α figure and the selection's decisions as artifacts. Params are JSON values.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
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


KINDS = ("reproduction", "tuning", "bench", "claims")
SOURCE_ENV = "NASREPRO_SOURCE"  # the command line, exported by the CLI to its workers
NOTE = "mlflow.note.content"  # the description MLflow's UI shows for a run or experiment
SOURCE = "mlflow.source.name"  # the suite file of a run (the UI's Source column)
PROCESS = "nasrepro.process"
# MLflow 3's UI opens an experiment of this kind on its runs table, not the GenAI overview.
KIND_TAG = "mlflow.experimentKind"
ALPHA_TABLE = "alpha/edges.csv"  # a trial's per-edge softmax(α) per epoch
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

    command = os.environ.get(SOURCE_ENV) or "nasrepro"
    tags = {
        SOURCE: command,  # callers that know the suite file replace it
        "mlflow.source.type": "LOCAL",
        "nasrepro.command": command,
        "nasrepro.version": __version__,
        PROCESS: process_tag(),
    }
    commit, dirty = git_state()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["nasrepro.git_dirty"] = str(bool(dirty)).lower()
    return tags


def _start_ticks(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (/proc), or None off Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_tag(pid: int | None = None) -> str:
    """`host:pid:start` of this (or `pid`'s) process: names it even after the pid is reused."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def process_alive(tag: str) -> bool | None:
    """Whether the process a `nasrepro.process` tag names is still running: None when it
    ran on another host (or the tag is unreadable), so nobody else's run is touched."""
    try:
        host, pid, start = tag.rsplit(":", 2)
        number = int(pid)
    except ValueError:
        return None
    if host != socket.gethostname() or start == "?":
        return None
    return _start_ticks(number) == start


def child_run_name(experiment: str, budget: str, seed: int) -> str:
    """Unambiguous in chart legends across experiments and budgets."""
    return f"{experiment} {budget} seed{seed}"


def parent_run_name(experiment: str, budget: str) -> str:
    return f"{experiment} {budget}"


def param_value(value: Any) -> str:
    """A param as MLflow shows it: strings as they are, everything else as JSON (`true`,
    `null`, `0.025`, `[1, 2]`, `{"weights": ...}`), never a Python repr."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Dotted keys (`search.epochs`, `method_args.lambda.lambda_`), JSON values."""
    out: dict[str, str] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif prefix:
        out[prefix] = param_value(obj)
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

    def experiment_id(self, suite: str, description: str | None = None) -> str:
        """The suite's experiment `nasrepro/<suite>` (created, or restored if deleted), with
        `description` as what the UI shows above its runs."""
        name = f"nasrepro/{suite}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            exp_id = str(exp.experiment_id)
        else:
            exp_id = self.client.create_experiment(
                name, artifact_location=artifact_location(self.uri, suite)
            )
        tags = {KIND_TAG: "custom_model_development"}
        if description:
            tags[NOTE] = description
        for key, value in tags.items():
            if exp is None or exp.tags.get(key) != value:
                self.client.set_experiment_tag(exp_id, key, value)
        return exp_id

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

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def describe(self, run_id: str, text: str) -> None:
        """The run's description (Markdown) in the MLflow UI."""
        self.set_tags(run_id, {NOTE: text})

    def log_file(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def log_figure(self, run_id: str, figure: Any, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            figure.savefig(path, dpi=100)
            self.client.log_artifact(run_id, str(path))

    def reopen(self, run_id: str) -> None:
        """Mark an interrupted run running again (a resumed trial continues it), owned by
        this process from now on."""
        self.client.update_run(run_id, status="RUNNING")
        self.set_tags(run_id, {PROCESS: process_tag()})
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

    def log_text(self, run_id: str, text: str, name: str) -> None:
        pass

    def describe(self, run_id: str, text: str) -> None:
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


# Ops without weights: an argmax drifting to them is DARTS' performance collapse.
PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})
OpNames = Callable[[str, int], Sequence[str]]


def alpha_summary(
    alpha: Mapping[str, Sequence[Sequence[float]]], op_names: OpNames
) -> dict[str, float]:
    """A few α diagnostics per epoch, all under `alpha.`: the mean and the lowest entropy of
    softmax(α) over the edges of every α tensor, and the share of edges whose argmax is
    `skip_connect` and is parameter-free (collapse shows as these shares rising). The
    per-edge series are the `alpha/edges.csv` table (`alpha_table`)."""
    entropies: list[float] = []
    skip = free = 0
    for name, rows in alpha.items():
        for e, row in enumerate(rows):
            op = op_names(name, e)[max(range(len(row)), key=row.__getitem__)]
            entropies.append(entropy(row))
            skip += op == "skip_connect"
            free += op in PARAMETER_FREE
    if not entropies:
        return {}
    n = len(entropies)
    return {
        "alpha.entropy_mean": math.fsum(entropies) / n,
        "alpha.entropy_min": min(entropies),
        "alpha.skip_share": skip / n,
        "alpha.param_free_share": free / n,
    }


def alpha_table(history: Sequence[Mapping[str, Any]], op_names: OpNames) -> str:
    """Every epoch's softmax(α) per edge as CSV: epoch, tensor, edge, argmax op, entropy,
    then one column per op name (empty where the edge lacks that op)."""
    import csv
    import io

    rows: list[tuple[int, str, int, list[str], Sequence[float]]] = []
    names: dict[str, None] = {}
    for h in history:
        for tensor, edges in (h.get("alpha") or {}).items():
            for e, probs in enumerate(edges):
                ops = list(op_names(tensor, e))
                names.update(dict.fromkeys(ops))
                rows.append((int(h.get("epoch", len(rows))), tensor, e, ops, probs))
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["epoch", "tensor", "edge", "argmax", "entropy", *names])
    for epoch, tensor, e, ops, probs in rows:
        weight = dict(zip(ops, probs, strict=True))
        best = ops[max(range(len(probs)), key=probs.__getitem__)]
        cells = [f"{weight[n]:.6g}" if n in weight else "" for n in names]
        out.writerow([epoch, tensor, e, best, f"{entropy(probs):.6g}", *cells])
    return buf.getvalue()


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


def close_dead_runs(tracker: Tracker, experiment_id: str) -> int:
    """Mark KILLED the RUNNING runs of the experiment whose process is gone (killed with
    SIGKILL, or its machine rebooted), so the UI stops showing them as running. Only runs
    tagged with a process of this host are judged; a resumed trial reopens its run after.
    Returns how many were closed."""
    if isinstance(tracker, NullTracker):
        return 0
    from mlflow.entities import RunStatus, ViewType

    runs = tracker.client.search_runs(
        [experiment_id],
        filter_string="attributes.status = 'RUNNING'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=5000,
    )
    closed = 0
    for run in runs:
        tag = run.data.tags.get(PROCESS)
        if run.info.status != RunStatus.to_string(RunStatus.RUNNING) or not tag:
            continue
        if process_alive(tag) is False:
            tracker.set_tags(run.info.run_id, {"nasrepro.closed": f"process {tag} had ended"})
            tracker.client.set_terminated(run.info.run_id, status="KILLED")
            closed += 1
    return closed


def fail_run(tracker: Any, run_id: str, exc: BaseException, status: str | None = None) -> None:
    """End a run that an exception stopped: its one-line error as a tag, KILLED for Ctrl-C,
    else FAILED (or `status`)."""
    tracker.set_tags(run_id, {"error": f"{type(exc).__name__}: {exc}"[:4000]})
    if status is None:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    tracker.end_run(run_id, status)


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
