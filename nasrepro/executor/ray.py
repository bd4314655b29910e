"""Ray executor: each job a Ray task (GPUs as the plan requests, where it runs on CUDA).

The same jobs as locally (units of work, packed retrainings, whole trials); workers open
their own MLflow client from the job's tracking URI and write records under the job's
registry path, so on a cluster the URI must name a tracking server and the registry a
shared filesystem (README: "Scaling out"). Units are locked in that shared store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasrepro.execute import Job, JobOutcome, job_device, run_safely
from nasrepro.jobs import PackedJob
from nasrepro.progress import emit


def _remote_body(job: Job) -> list[JobOutcome]:
    return run_safely(job, emit)


def gpu_request(job: Job) -> int:
    """GPUs a cluster job asks for: none off CUDA; else the plan's request (a packed job
    shares one device)."""
    if not job_device(job).startswith("cuda"):
        return 0
    if isinstance(job, PackedJob):
        return max(j.gpus for j in job.jobs)
    return max(1, getattr(job, "gpus", 1))


@dataclass
class RayExecutor:
    address: str | None = None  # None: start a local Ray instance
    num_cpus: int | None = None  # for a local instance only
    own_workdir = True  # workers run elsewhere: jobs carry absolute paths

    def preflight(self) -> None:
        """Ray is installed and the cluster at `address` (or RAY_ADDRESS) accepts
        connections, in seconds; PreflightError (one line) otherwise. `nasrepro run` calls
        it before any trial: ray.init would wait minutes for a cluster that is not there."""
        from nasrepro.preflight import check_ray

        check_ray(self.address)

    def run(self, jobs: list[Job], progress: Any) -> list[JobOutcome]:
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
            task = ray.remote(num_gpus=gpu_request(job), num_cpus=1, max_retries=0)(_remote_body)
            refs.append(task.remote(job))
        progress(f"ray: {len(refs)} task(s) submitted to {self.address or 'a local instance'}")
        results: list[list[JobOutcome]] = ray.get(refs)
        return [o for r in results for o in r]
