"""`nasrepro run`: validate, expand, execute trials, record them, rebuild the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from nasrepro.executor import Executor, LocalExecutor
from nasrepro.plan import Trial, expand
from nasrepro.registry import recorded_hashes, write_record
from nasrepro.suite import load_suite

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class TrialFailed(RuntimeError):
    """A trial raised; its MLflow runs are marked FAILED and nothing is recorded."""


@dataclass
class RunSummary:
    tracking_uri: str
    experiment_id: str
    records: list[Path] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    skipped: int = 0


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda requested but torch sees no CUDA device")
    return device


def preflight(trials: list[Trial], data_root: str | None, download: bool = False) -> None:
    """Fail before anything is logged: evaluators (benchmark files) and datasets must load."""
    from nasrepro.datasets import build_search_data
    from nasrepro.trial import build_evaluator

    seen: set[str] = set()
    for t in trials:
        if t.group_hash in seen:
            continue
        seen.add(t.group_hash)
        build_evaluator(t.config)
        s = t.search
        build_search_data(
            t.config["dataset"],
            root=data_root,
            batch_size=s.batch_size,
            seed=0,
            image_size=s.image_size,
            train_limit=s.train_limit,
            download=download,
        )


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker process needs to run one trial and record it (picklable)."""

    trial: Trial
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    data_root: str | None
    device: str
    registry: str
    checkpoint_dir: str
    rerun: bool = False
    # Processes of a data-parallel search; None = one per GPU of `device` for ImageNet
    # searches whose methods allow it, else 1 (see search_processes).
    search_processes: int | None = None
    fast: bool = False  # fused NB201 mixed ops, CUDA graphs (execute_trial)


def search_processes(job: TrialJob, progress: Progress = _stderr) -> int:
    """How many processes search `job`'s trial (nasrepro/distributed.py)."""
    from nasrepro import catalog
    from nasrepro.distributed import device_ids

    cfg = job.trial.config
    if job.search_processes is not None:
        wanted = job.search_processes
    else:
        gpus = device_ids(job.device) or []
        wanted = len(gpus) if cfg["dataset"] == "imagenet" else 1
    if wanted <= 1:
        return 1
    unsafe = [m for m in cfg["methods"] if not catalog.get("method", m).data_parallel]
    if cfg["search"].get("order", 1) != 1 or unsafe:
        why = f"methods {unsafe}" if unsafe else "second order"
        progress(
            f"[{job.trial.suite}/{job.trial.experiment} seed {job.trial.seed}] searching in one "
            f"process: {why} not data-parallel"
        )
        return 1
    return wanted


def run_job(job: TrialJob, progress: Progress = _stderr) -> Path | None:
    """Execute one trial, write its registry record, drop its checkpoints; the record path,
    or None when another invocation recorded the trial meanwhile.

    The unit every executor runs (in this process, a worker process or a Ray task): it
    opens its own MLflow client, so it needs nothing from the caller but the job. The trial
    is locked while it runs; a second invocation of the same trial fails at once with
    `TrialLocked` instead of training it twice.
    """
    from nasrepro.checkpoint import TrialLock, checkpoint_path, remove_checkpoints
    from nasrepro.tracking import Tracker
    from nasrepro.trial import execute_trial

    t = job.trial
    ckpt = checkpoint_path(job.checkpoint_dir, t)
    with TrialLock(ckpt):
        if not job.rerun and (t.suite_hash, t.config_hash) in recorded_hashes(
            job.registry, t.suite
        ):
            progress(f"[{t.suite}/{t.experiment} seed {t.seed}] recorded meanwhile; skipped")
            return None
        processes = search_processes(job, progress)
        if processes > 1:
            path = _run_data_parallel(job, processes, ckpt, progress)
        else:
            tracker = Tracker(job.tracking_uri)
            record = execute_trial(
                t,
                tracker=tracker,
                experiment_id=job.experiment_id,
                parent_run_id=job.parent_run_id,
                data_root=job.data_root,
                device=job.device,
                progress=progress,
                checkpoint_dir=job.checkpoint_dir,
                fast=job.fast,
            )
            assert record is not None
            try:
                path = write_record(job.registry, record)
            except BaseException:
                tracker.end_run(record["mlflow"]["run_id"], "FAILED")
                raise
        remove_checkpoints(ckpt)
    return path


def _run_data_parallel(job: TrialJob, processes: int, ckpt: Path, progress: Progress) -> Path:
    """The trial under torchrun (trial_worker.py); rank 0 writes the record."""
    import pickle
    import shutil

    from nasrepro.distributed import device_ids, launch

    workdir = ckpt.with_name(f"{ckpt.stem}.ddp")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.pickle").write_bytes(pickle.dumps(job))
    gpus = device_ids(job.device)
    eval_device = "cpu" if gpus is None else "cuda:" + ",".join(map(str, range(len(gpus))))
    try:
        out = launch(
            "nasrepro.trial_worker",
            {"job": str(workdir / "job.pickle"), "eval_device": eval_device},
            processes,
            workdir,
            progress,
            gpus,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Path(out["record"])


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

    Trials are idempotent by config hash: one already recorded (same suite file, same
    resolved config and seed) is skipped unless `rerun`, which adds another record.
    """
    from nasrepro.tracking import Tracker, flatten

    suite = load_suite(suite_path)
    trials = expand(suite, suite_path, budget, experiments, seeds)
    dev = resolve_device(device)
    if not rerun:
        done = recorded_hashes(registry, suite.suite)
        skipped = [t for t in trials if (t.suite_hash, t.config_hash) in done]
        trials = [t for t in trials if (t.suite_hash, t.config_hash) not in done]
        if skipped:
            progress(
                f"{suite.suite}: {len(skipped)} trial(s) already in {registry}/, skipped "
                "(--rerun adds new records)"
            )
    trials = _skip_locked(trials, Path(checkpoint_dir), progress)
    preflight(trials, data_root, download)
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment_id(suite.suite)
    summary = RunSummary(tracking_uri=tracker.uri, experiment_id=exp_id)
    summary.skipped = len(skipped) if not rerun else 0
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    ckpt_root = Path(checkpoint_dir)
    groups: list[tuple[str, str, list[TrialJob]]] = []
    for experiment, members in groupby(trials, key=lambda t: t.experiment):
        group = list(members)
        first = group[0]
        parent = _parent_from_checkpoints(group, ckpt_root)
        if parent is not None:
            tracker.reopen(parent)
        else:
            parent = tracker.start_run(
                exp_id,
                f"{experiment}@{budget}",
                {
                    "suite": suite.suite,
                    "experiment": experiment,
                    "budget": budget,
                    "claim_ids": ",".join(first.claim_ids),
                    "group_hash": first.group_hash,
                    "method": "+".join(first.config["methods"]) or "darts",
                    "space": first.config["space"],
                    "dataset": first.config["dataset"],
                },
            )
            tracker.log_params(parent, flatten(first.config))
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
    for experiment, parent, jobs in groups:
        mine = [o for o in outcomes if o.job in jobs]
        # a trial another process locked meanwhile is that process's, not a failure here
        errors = [o.error for o in mine if o.error is not None and not _locked(o.error)]
        summary.records.extend(o.path for o in mine if o.path is not None)
        tracker.end_run(parent, "FAILED" if errors or len(mine) < len(jobs) else "FINISHED")
        if errors:
            failed.append(f"{suite_path}: experiments.{experiment}: {errors[0]}")
    if failed:
        more = f" (and {len(failed) - 1} more experiment(s))" if len(failed) > 1 else ""
        raise TrialFailed(failed[0] + more)
    return summary
