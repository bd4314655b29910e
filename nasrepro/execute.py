"""Run one job and record it: the unit every executor runs (here, in a worker process, as a
Ray task, as a Slurm array task), below both the runner and the executors.

Three kinds of job (nasrepro/jobs.py): a `UnitJob` computes one unit of work (a search with
its selection, or one retraining) and records it in the shared store; a `PackedJob` runs
several small retraining units at once on one device, each in its own process; a
`TrialJob` runs a whole trial in one process and writes its registry record (`--rerun`).
Each unit is computed under its lock in the shared store (nasrepro/store.py): a second
process reaching it, on any host and with any checkpoint directory, skips it at once.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasrepro.jobs import PackedJob, TrialJob, UnitJob
from nasrepro.progress import emit
from nasrepro.registry import find_trial, write_record

Progress = Callable[[str], None]
Job = TrialJob | UnitJob | PackedJob
LOCKED = "UnitLocked:"  # the error prefix of a job another live process holds


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


def search_processes(job: TrialJob | UnitJob, progress: Progress = _stderr) -> int:
    """How many processes search `job`'s trial (nasrepro/distributed.py)."""
    from nasrepro import catalog
    from nasrepro.distributed import device_ids

    cfg = job.trial.config
    if job.trial.given_cell or job.trial.benchmark_query:
        return 1  # a published cell or benchmark queries: no supernet is searched
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


def with_device(job: Job, device: str) -> Job:
    """The job on `device` (a packed job: every retraining in it)."""
    if isinstance(job, PackedJob):
        return PackedJob(tuple(replace(j, device=device) for j in job.jobs))
    return replace(job, device=device)


def job_device(job: Job) -> str:
    return job.jobs[0].device if isinstance(job, PackedJob) else job.device


def run_job(job: TrialJob, progress: Progress = _stderr) -> Path | None:
    """Execute one whole trial in this process, write its registry record, drop its
    checkpoints; the record path, or None when another invocation recorded the trial
    meanwhile (unless `rerun`). The trial is locked in the shared store while it runs: a
    second invocation fails at once with UnitLocked instead of training it twice."""
    from nasrepro.checkpoint import checkpoint_path, remove_checkpoints, unit_checkpoint
    from nasrepro.store import StoreLock
    from nasrepro.tracking import Tracker, finish_parent
    from nasrepro.trial import execute_trial

    t = job.trial
    if job.pack:  # a pack job only searches its seeds together (packed_trials.py)
        from nasrepro.packed_trials import search_packed

        search_packed(job, progress)
        return None
    with StoreLock(job.registry, f"trial-{t.config_hash}", f"{t.suite}/{t.experiment}"):
        if not job.rerun and find_trial(job.registry, t.config_hash):
            progress(f"[{t.suite}/{t.experiment} seed {t.seed}] recorded meanwhile; skipped")
            return None
        processes = search_processes(job, progress)
        if processes > 1:
            path = Path(_run_data_parallel(job, processes, progress)["record"])
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
                retrain=job.retrain,
                data_on_device=job.data_on_device,
            )
            assert record is not None
            if job.sequential is not None and t.budget == "full":
                from nasrepro.sequential import record_decision

                # (an experiment of no more seeds than the minimum never stops early)
                if job.sequential[1] > job.sequential[0]:
                    record["sequential"] = record_decision(t, record, job.registry, *job.sequential)
            try:
                path = write_record(job.registry, record)
            except BaseException:
                tracker.end_run(record["mlflow"]["run_id"], "FAILED")
                raise
            finish_parent(tracker, job.parent_run_id, job.siblings)
        remove_checkpoints(checkpoint_path(job.checkpoint_dir, t))
        if t.searched:
            assert t.selection_key is not None
            remove_checkpoints(unit_checkpoint(job.checkpoint_dir, "selection", t.selection_key))
    return path


def run_unit_job(job: UnitJob, progress: Progress = _stderr) -> Path | None:
    """Compute one unit (a search and its selection, or a retraining) under its lock in the
    shared store and record it there; the unit record's path. A unit recorded meanwhile is
    read, not computed again; a unit another live process holds raises UnitLocked."""
    from nasrepro.checkpoint import remove_stale_tmp, unit_checkpoint
    from nasrepro.store import StoreLock, read_unit
    from nasrepro.tracking import Tracker
    from nasrepro.trial import run_retrain_unit, run_search_unit

    t = job.trial
    label = f"{t.suite}/{t.experiment} seed {t.seed}"
    if job.kind == "retrain":
        assert job.dataset is not None and job.genotype is not None
        with StoreLock(job.registry, job.key, f"{label} retrain {job.dataset}"):
            remove_stale_tmp(unit_checkpoint(job.checkpoint_dir, "retrain", job.key))
            rec = run_retrain_unit(
                t,
                job.dataset,
                job.genotype,
                tracker=Tracker(job.tracking_uri),
                run_id=job.run_id or "",
                data_root=job.data_root,
                device=job.device,
                progress=progress,
                checkpoint_dir=job.checkpoint_dir,
                store=job.registry,
                fast=job.fast,
                data_on_device=job.data_on_device,
            )
        return Path(rec["_path"])
    assert t.search_key is not None and t.selection_key is not None
    recorded = read_unit(job.registry, "search", t.search_key) is not None
    locks = [] if recorded else [StoreLock(job.registry, t.search_key, f"{label} search")]
    locks.append(StoreLock(job.registry, t.selection_key, f"{label} selection"))
    held = []
    try:
        for lock in locks:
            held.append(lock.acquire())
        remove_stale_tmp(unit_checkpoint(job.checkpoint_dir, "search", t.search_key))
        remove_stale_tmp(unit_checkpoint(job.checkpoint_dir, "selection", t.selection_key))
        processes = search_processes(job, progress)
        if processes > 1:
            return Path(_run_data_parallel(job, processes, progress)["selection"])
        outcome = run_search_unit(
            t,
            tracker=Tracker(job.tracking_uri),
            experiment_id=job.experiment_id,
            parent_run_id=job.parent_run_id,
            run_id=job.run_id,
            data_root=job.data_root,
            device=job.device,
            progress=progress,
            checkpoint_dir=job.checkpoint_dir,
            fast=job.fast,
            store=job.registry,
            data_on_device=job.data_on_device,
        )
        assert outcome is not None and outcome.selection is not None
        return Path(outcome.selection["_path"])
    finally:
        for lock in reversed(held):
            lock.release()


@dataclass(frozen=True)
class JobOutcome:
    job: TrialJob | UnitJob  # a packed job reports one outcome per retraining in it
    path: Path | None  # the record written (trial record, or unit record), when it finished
    error: str | None  # one line, when it failed


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_safely(job: Job, progress: Progress = _stderr) -> list[JobOutcome]:
    """Run one job and turn any failure into a one-line error (for workers and cluster
    tasks): one outcome per trial or unit (several for a packed job)."""
    if isinstance(job, PackedJob):
        return run_packed(job, progress)
    try:
        path = run_unit_job(job, progress) if isinstance(job, UnitJob) else run_job(job, progress)
        return [JobOutcome(job, path, None)]
    except Exception as exc:  # noqa: BLE001  (reported per job; the runner raises once)
        return [JobOutcome(job, None, _line(exc))]


def _packed_worker(job: UnitJob) -> JobOutcome:
    (outcome,) = run_safely(job, _stderr)
    return outcome


def run_packed(job: PackedJob, progress: Progress = _stderr) -> list[JobOutcome]:
    """The retrainings of a packed job at once, one process each on the same device (each
    keeps its own seed, RNG streams, checkpoints and lock); one outcome per retraining."""
    if len(job.jobs) == 1:
        return run_safely(job.jobs[0], progress)
    progress(f"{job.label} on {job_device(job)}: " + ", ".join(j.label for j in job.jobs))
    ctx = mp.get_context("spawn")  # CUDA cannot be re-initialised in a forked child
    try:
        with ctx.Pool(len(job.jobs)) as pool:
            return list(pool.map(_packed_worker, list(job.jobs)))
    except Exception as exc:  # noqa: BLE001  (the pool itself failed: so did every unit)
        return [JobOutcome(j, None, _line(exc)) for j in job.jobs]


def _run_data_parallel(job: TrialJob | UnitJob, processes: int, progress: Progress) -> Any:
    """The trial's search under torchrun (trial_worker.py); rank 0 records what the job
    records (the unit records, or the trial record) and returns their paths."""
    import pickle
    import shutil

    from nasrepro.checkpoint import checkpoint_path
    from nasrepro.distributed import device_ids, launch

    ckpt = checkpoint_path(job.checkpoint_dir, job.trial)
    workdir = ckpt.with_name(f"{ckpt.stem}.ddp")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.pickle").write_bytes(pickle.dumps(job))
    gpus = device_ids(job.device)
    eval_device = "cpu" if gpus is None else "cuda:" + ",".join(map(str, range(len(gpus))))
    try:
        return launch(
            "nasrepro.trial_worker",
            {"job": str(workdir / "job.pickle"), "eval_device": eval_device},
            processes,
            workdir,
            progress,
            gpus,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
