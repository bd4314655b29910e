"""`nasrepro run`: validate, expand, execute trials, record them, rebuild the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from nasrepro.execute import run_job, search_processes
from nasrepro.executor import Executor, LocalExecutor
from nasrepro.jobs import TrialJob
from nasrepro.plan import Trial, expand
from nasrepro.progress import emit
from nasrepro.registry import current_trials, scan_registry, unreported
from nasrepro.suite import SuiteError, load_suite

__all__ = [
    "RunSummary",
    "TrialFailed",
    "TrialJob",
    "preflight",
    "run_job",
    "run_suite",
    "search_processes",
]

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


class TrialFailed(RuntimeError):
    """A trial raised; its MLflow runs are marked FAILED and nothing is recorded.
    `summary` holds what the run did before (records of the trials that finished),
    `failed` the number of failed trials."""

    summary: RunSummary | None = None
    failed: int = 0


@dataclass
class RunSummary:
    tracking_uri: str
    experiment_id: str
    records: list[Path] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    skipped: int = 0
    view_run_id: str | None = None  # the suite's `<suite> · verdicts` run (claims view)


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda requested but torch sees no CUDA device")
    return device


def preflight(trials: list[Trial], data_root: str | None, download: bool = False) -> None:
    """Fail before anything is logged: evaluators (benchmark files) and datasets must load."""
    from nasrepro.datasets import SearchProtocolError, trial_search_data
    from nasrepro.trial import build_evaluator

    seen: set[str] = set()
    for t in trials:
        if t.group_hash in seen:
            continue
        seen.add(t.group_hash)
        build_evaluator(t.config)
        if t.given_cell or t.benchmark_query:
            continue  # a published cell or a search by benchmark queries: no search data
        try:
            trial_search_data(t.config, root=data_root, seed=0, download=download)
        except SearchProtocolError as exc:
            field = f"experiments.{t.experiment}.search.data_protocol"
            raise SuiteError(t.suite_path, None, field, str(exc)) from None


def unique_trials(trials: list[Trial], progress: Progress = _stderr) -> list[Trial]:
    """The trials in order, each configuration and seed once (the first experiment asking
    for it runs it; the others find its record)."""
    first: dict[str, Trial] = {}
    for t in trials:
        if t.config_hash in first:
            other = first[t.config_hash]
            if other.experiment != t.experiment and t.seed == 0:
                progress(
                    f"{t.suite}: experiment {t.experiment} resolves to the same trials as "
                    f"{other.experiment}; they run once"
                )
            continue
        first[t.config_hash] = t
    return list(first.values())


def _parent_from_checkpoints(trials: list[Trial], checkpoint_dir: Path) -> str | None:
    """The parent run of an interrupted group, so a resumed run continues it."""
    from nasrepro.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

    for trial in trials:
        path = checkpoint_path(checkpoint_dir, trial)
        if path.exists():
            try:
                return str(load_checkpoint(path, trial.config_hash)["parent_run_id"])
            except CheckpointError:
                continue  # execute_trial reports it and starts that trial over
    return None


def _locked(error: str) -> bool:
    return error.startswith("TrialLocked:")


def _skip_locked(trials: list[Trial], checkpoint_dir: Path, progress: Progress) -> list[Trial]:
    """Trials no other live process is running. A locked trial is left alone entirely: its
    checkpoint names the other process's MLflow parent, which must not be reopened here
    (nor marked FAILED when the lock refuses us)."""
    from nasrepro.checkpoint import checkpoint_path, lock_holder

    free = []
    for t in trials:
        holder = lock_holder(checkpoint_path(checkpoint_dir, t))
        if holder is None:
            free.append(t)
        else:
            progress(
                f"[{t.suite}/{t.experiment} seed {t.seed}] being run by another process "
                f"(pid {holder}); skipped"
            )
    return free


def _parent_description(suite: Any, experiment: str, budget: str, first: Trial) -> str:
    exp = suite.experiments[experiment]
    about = f"{exp.description.strip()} " if exp.description else ""
    return (
        f"`{experiment}` of {suite.paper.title}, {budget} budget ({first.budget_description}). "
        f"{about}One child run per seed; `mean.final.*` / `std.final.*` over the finished "
        f"children. Claims and verdicts: the run `{experiment} · claims` under "
        f"`{suite.suite} · verdicts`."
    )


def _publish_view(
    tracker: Any,
    suite_path: str | Path,
    registry: str | Path,
    exp_id: str,
    summary: RunSummary,
    progress: Progress,
) -> None:
    """Refresh the suite's claims view in MLflow (nasrepro/report/mlflow_view.py); a
    failure there is reported, never fatal: the records are written."""
    from nasrepro.report.mlflow_view import publish_view

    if not Path(registry).is_dir():
        return  # nothing was ever recorded there: no verdict to show
    try:
        summary.view_run_id = publish_view(tracker, suite_path, registry, exp_id)
    except Exception as exc:  # noqa: BLE001
        progress(f"nasrepro: warning: MLflow claims view not updated: {type(exc).__name__}: {exc}")


def run_suite(
    suite_path: str | Path,
    *,
    budget: str = "full",
    experiments: list[str] | None = None,
    seeds: int | None = None,
    tracking_uri: str | None = None,
    registry: str | Path = "registry",
    data_root: str | None = None,
    device: str | None = None,
    download: bool = False,
    checkpoint_dir: str | Path = "checkpoints",
    rerun: bool = False,
    search_processes: int | None = None,
    fast: bool = False,
    executor: Executor | None = None,
    progress: Progress = _stderr,
) -> RunSummary:
    """Run every trial of the suite at `budget` that the registry does not hold yet.

    Trials are idempotent by what they compute (resolved configuration, seed, fidelity
    version): one already recorded, by this suite or any other, is skipped unless `rerun`,
    which adds another record. Experiments of the suite that resolve to the same trial run
    it once.
    """
    from nasrepro.preflight import check_tracking_uri
    from nasrepro.report.mlflow_view import experiment_description
    from nasrepro.tracking import (
        SOURCE,
        Tracker,
        close_dead_runs,
        finish_parent,
        flatten,
        parent_run_name,
        resolve_uri,
    )

    suite = load_suite(suite_path)
    trials = unique_trials(expand(suite, suite_path, budget, experiments, seeds), progress)
    dev = resolve_device(device)
    skipped: list[Trial] = []
    if not rerun:
        scan = scan_registry(registry)
        for problem in unreported(scan.problems):
            progress(f"nasrepro: warning: {problem}; skipped")
        done = current_trials(scan.records)
        skipped = [t for t in trials if t.config_hash in done]
        trials = [t for t in trials if t.config_hash not in done]
        if skipped:
            progress(
                f"{suite.suite}: {len(skipped)} trial(s) already in {registry}/ (recorded by "
                "this or another suite with the same configuration), skipped (--rerun adds "
                "new records)"
            )
    trials = _skip_locked(trials, Path(checkpoint_dir), progress)
    check_tracking_uri(resolve_uri(tracking_uri))  # API callers too: seconds, one line
    preflight(trials, data_root, download)
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment_id(suite.suite, experiment_description(suite, suite_path))
    closed = close_dead_runs(tracker, exp_id)  # before a resumed trial reopens its run
    if closed:
        progress(
            f"{suite.suite}: {closed} MLflow run(s) left RUNNING by a process that had ended "
            "marked KILLED"
        )
    summary = RunSummary(tracking_uri=tracker.uri, experiment_id=exp_id)
    summary.skipped = len(skipped)
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    ckpt_root = Path(checkpoint_dir)
    groups: list[tuple[str, str, list[TrialJob]]] = []
    reopened: set[str] = set()
    for experiment, members in groupby(trials, key=lambda t: t.experiment):
        group = list(members)
        first = group[0]
        parent = _parent_from_checkpoints(group, ckpt_root)
        if parent is not None:
            tracker.reopen(parent)
            reopened.add(parent)
        else:
            parent = tracker.start_run(
                exp_id,
                parent_run_name(experiment, budget),
                {
                    "suite": suite.suite,
                    "experiment": experiment,
                    "budget": budget,
                    "claim_ids": ",".join(first.claim_ids),
                    "group_hash": first.group_hash,
                    "method": "+".join(first.config.get("methods", ["published cell"])) or "darts",
                    "space": first.config["space"],
                    "dataset": first.config["dataset"],
                    SOURCE: str(suite_path),
                },
            )
            tracker.log_params(parent, flatten(first.config))
            tracker.describe(parent, _parent_description(suite, experiment, budget, first))
        summary.run_ids.append(parent)
        jobs = [
            TrialJob(
                t,
                tracker.uri,
                exp_id,
                parent,
                data_root,
                dev,
                str(registry),
                str(ckpt_root),
                rerun,
                search_processes,
                fast,
                tuple(t.config_hash for t in group),
            )
            for t in group
        ]
        groups.append((experiment, parent, jobs))
    runner = executor if executor is not None else LocalExecutor.for_device(dev)
    try:
        outcomes = runner.run([job for _, _, jobs in groups for job in jobs], progress)
    except KeyboardInterrupt:
        for _, parent, _ in groups:
            tracker.end_run(parent, "KILLED")
        raise
    failed: list[str] = []
    n_failed = 0
    for experiment, parent, jobs in groups:
        mine = [o for o in outcomes if o.job in jobs]
        # a trial another process locked meanwhile is that process's, not a failure here
        errors = [o.error for o in mine if o.error is not None and not _locked(o.error)]
        summary.records.extend(o.path for o in mine if o.path is not None)
        incomplete = errors or len(mine) < len(jobs)
        lost = [o for o in mine if o.path is None and (o.error is None or _locked(o.error))]
        if len(lost) == len(jobs) and parent not in reopened:
            # every trial was run by a concurrent process (under its own parent): this
            # parent holds nothing, and neither failed nor finished anything
            tracker.client.delete_run(parent)
            summary.run_ids.remove(parent)
            continue
        finish_parent(tracker, parent, jobs[0].siblings, "FAILED" if incomplete else "FINISHED")
        n_failed += len(errors)
        if errors:
            failed.append(f"{suite_path}: experiments.{experiment}: {errors[0]}")
    _publish_view(tracker, suite_path, registry, exp_id, summary, progress)
    if failed:
        more = f" (and {len(failed) - 1} more experiment(s))" if len(failed) > 1 else ""
        error = TrialFailed(failed[0] + more)
        error.summary, error.failed = summary, n_failed
        raise error
    return summary
