"""Ray executor: each trial a Ray task (one GPU each where the trial runs on CUDA).

The same `TrialJob`s as locally; workers open their own MLflow client from the job's
tracking URI and write records under the job's registry path, so on a cluster the URI must
name a tracking server and the registry a shared filesystem (README: "Scaling out").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasrepro.executor.base import JobOutcome, Progress, run_safely
from nasrepro.jobs import TrialJob
from nasrepro.progress import emit


def _remote_body(job: TrialJob) -> JobOutcome:
    return run_safely(job, emit)


@dataclass
class RayExecutor:
    address: str | None = None  # None: start a local Ray instance
    num_cpus: int | None = None  # for a local instance only

    def preflight(self) -> None:
        """Ray is installed and the cluster at `address` (or RAY_ADDRESS) accepts
        connections, in seconds; PreflightError (one line) otherwise. `nasrepro run` calls
        it before any trial: ray.init would wait minutes for a cluster that is not there."""
        from nasrepro.preflight import check_ray

        check_ray(self.address)

    def run(self, jobs: list[TrialJob], progress: Progress) -> list[JobOutcome]:
        self.preflight()  # again for API callers; a cached import and one connection
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if self.address:
                kwargs["address"] = self.address
            elif self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
        refs = []
        for job in jobs:
            gpus = 1 if job.device.startswith("cuda") else 0
            task = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(_remote_body)
            refs.append(task.remote(job))
        progress(
            f"ray: {len(refs)} trial task(s) submitted to {self.address or 'a local instance'}"
        )
        results: list[JobOutcome] = ray.get(refs)
        return [JobOutcome(job, r.path, r.error) for job, r in zip(jobs, results, strict=True)]
