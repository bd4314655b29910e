"""Local execution: in this process on one device, or one worker process per GPU."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace

from nasrepro.executor.base import JobOutcome, Progress, run_safely
from nasrepro.jobs import TrialJob
from nasrepro.progress import emit


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


def _worker(job: TrialJob) -> JobOutcome:
    return run_safely(job, _stderr)


@dataclass
class LocalExecutor:
    """`devices` = one entry per worker: ["cpu"], ["cuda"], or ["cuda:0", "cuda:1", ...].

    With one device, jobs run here one after another and the first failure stops the rest
    (as a plain loop would); with several, one worker process per GPU runs the jobs given
    to it (job i on device i mod n), and every job runs whatever the others do.
    """

    devices: list[str]

    @classmethod
    def for_device(cls, device: str, gpus_per_trial: int = 1) -> LocalExecutor:
        """One worker per `gpus_per_trial` visible GPUs (`cuda:0,1` names a pair: a
        retraining runs data-parallel over it); one worker on CPU."""
        import torch

        if gpus_per_trial < 1:
            raise ValueError(f"--gpus-per-trial must be >= 1, got {gpus_per_trial}")
        count = torch.cuda.device_count() if device == "cuda" else 0
        if gpus_per_trial > 1 and gpus_per_trial > count:
            raise ValueError(
                f"--gpus-per-trial {gpus_per_trial}: only {count} GPU(s) visible on {device}"
            )
        if count > 1:
            ids = list(range(count - count % gpus_per_trial))
            groups = [ids[i : i + gpus_per_trial] for i in range(0, len(ids), gpus_per_trial)]
            return cls(["cuda:" + ",".join(map(str, g)) for g in groups])
        return cls([device])

    def run(self, jobs: list[TrialJob], progress: Progress) -> list[JobOutcome]:
        if len(self.devices) == 1 or len(jobs) <= 1:
            outcomes = []
            for job in jobs:
                outcome = run_safely(replace(job, device=self.devices[0]), progress)
                outcomes.append(JobOutcome(job, outcome.path, outcome.error))
                # a failure stops the sequence; a trial another process holds does not
                if outcome.error is not None and not outcome.error.startswith("TrialLocked:"):
                    break
            return outcomes
        ctx = mp.get_context("spawn")  # CUDA cannot be re-initialised in a forked child
        pools = [ProcessPoolExecutor(max_workers=1, mp_context=ctx) for _ in self.devices]
        try:
            futures: list[Future[JobOutcome]] = [
                pools[i % len(pools)].submit(
                    _worker, replace(job, device=self.devices[i % len(pools)])
                )
                for i, job in enumerate(jobs)
            ]
            results = [f.result() for f in futures]
        finally:
            for pool in pools:
                pool.shutdown(cancel_futures=True)
        return [JobOutcome(job, r.path, r.error) for job, r in zip(jobs, results, strict=True)]
