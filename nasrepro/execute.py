"""Run one trial job and record it: the unit every executor runs (here, in a worker
process, as a Ray task), below both the runner and the executors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nasrepro.jobs import TrialJob
from nasrepro.progress import emit
from nasrepro.registry import find_trial, write_record

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


def search_processes(job: TrialJob, progress: Progress = _stderr) -> int:
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


def run_job(job: TrialJob, progress: Progress = _stderr) -> Path | None:
    """Execute one trial, write its registry record, drop its checkpoints; the record path,
    or None when another invocation recorded the trial meanwhile.

    The unit every executor runs (in this process, a worker process or a Ray task): it
    opens its own MLflow client, so it needs nothing from the caller but the job. The trial
    is locked while it runs; a second invocation of the same trial fails at once with
    `TrialLocked` instead of training it twice.
    """
    from nasrepro.checkpoint import TrialLock, checkpoint_path, remove_checkpoints
    from nasrepro.tracking import Tracker, finish_parent
    from nasrepro.trial import execute_trial

    t = job.trial
    if job.pack:  # a pack job only searches its seeds together (packed_trials.py)
        from nasrepro.packed_trials import search_packed

        search_packed(job, progress)
        return None
    ckpt = checkpoint_path(job.checkpoint_dir, t)
    with TrialLock(ckpt):
        if not job.rerun and find_trial(job.registry, t.config_hash):
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
