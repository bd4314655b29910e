"""Slurm executor through submitit: each stage's jobs as Slurm array jobs.

One array task per unit of work or packed group of retrainings (nasrepro/jobs.py), with
the GPUs the plan requests (`gpu_request`) and a time limit from the plan's estimate;
tasks of the same request share one array job. A task that Slurm preempts (or that reaches
its time limit) is signalled first (`--signal USR2@120`): submitit requeues it
(`scontrol requeue`), and the requeued task resumes its unit from the unit's checkpoint
(the unit's lock, in the shared store, is released on the way out). The login node only
submits and waits: it needs no GPU, and the registry, checkpoints, datasets and MLflow
must be reachable from every node (README: "Scale-out").

    nasrepro run suites/lambda_darts.yaml --executor slurm --device cuda \\
        --slurm-partition gpu --slurm-option account=lab --tracking-uri http://HEAD:5000 \\
        --registry /shared/registry --checkpoint-dir /shared/checkpoints --data-root /shared/data

`pip install -c constraints.txt -e '.[slurm]'` installs submitit.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from nasrepro.execute import Job, JobOutcome, job_device, run_safely, with_device
from nasrepro.executor.ray import gpu_request
from nasrepro.jobs import PackedJob
from nasrepro.progress import emit

# submitit's names for sbatch options it knows; any other KEY=VALUE goes to sbatch as is.
KNOWN = {
    "time": "timeout_min",
    "cpus_per_task": "cpus_per_task",
    "mem_gb": "mem_gb",
    "account": "slurm_account",
    "constraint": "slurm_constraint",
    "qos": "slurm_qos",
    "exclude": "slurm_exclude",
    "array_parallelism": "slurm_array_parallelism",
}
SIGNAL_DELAY_S = 120  # USR2 this long before Slurm kills a preempted or timed-out task
GONE_GRACE_S = 30.0  # a task out of the queue this long without a result has failed


def _hours(job: Job) -> float:
    if isinstance(job, PackedJob):
        return max((j.hours or 1.0) for j in job.jobs)
    return getattr(job, "hours", None) or 1.0


def time_limit_min(job: Job) -> int:
    """The plan's estimate × 1.5 + 30 minutes (a requeue resumes from the checkpoint, so a
    short limit costs a resubmission, not the work)."""
    return int(math.ceil(_hours(job) * 60 * 1.5 + 30))


try:
    from submitit.helpers import Checkpointable as _Base
except ImportError:  # pragma: no cover - submitit is the `slurm` extra
    _Base = object  # type: ignore[misc,assignment]


class SlurmTask(_Base):  # type: ignore[misc,valid-type]
    """What an array task runs: the job on this node's device. `checkpoint` (submitit's
    hook on USR2) resubmits the same job: rerun, it resumes from the unit's checkpoint."""

    def __call__(self, job: Job) -> list[JobOutcome]:
        import torch

        device = "cuda" if job_device(job).startswith("cuda") else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("a GPU task landed on a node where torch sees no CUDA device")
        return run_safely(with_device(job, device), emit)


@dataclass
class SlurmExecutor:
    folder: str = "slurm_jobs"
    partition: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    gpus_per_trial: int = 1
    poll_s: float = 5.0
    submitted: list[str] = field(default_factory=list)  # array job ids, for callers and tests
    remote = True  # jobs run on other nodes: `--device cuda` needs no GPU here
    own_workdir = True  # tasks run elsewhere: jobs carry absolute paths

    @classmethod
    def from_options(
        cls,
        folder: str,
        partition: str | None,
        options: list[str],
        gpus_per_trial: int = 1,
    ) -> SlurmExecutor:
        parsed: dict[str, str] = {}
        for opt in options:
            key, sep, value = opt.partition("=")
            if not sep or not key:
                raise ValueError(f"--slurm-option: expected KEY=VALUE, got {opt!r}")
            parsed[key.strip().replace("-", "_")] = value.strip()
        return cls(folder, partition, parsed, gpus_per_trial)

    def preflight(self) -> None:
        """submitit is installed and Slurm answers (`squeue`), in seconds; PreflightError
        (one line) otherwise. `nasrepro run` calls it before any trial."""
        from nasrepro.preflight import PreflightError, require_module

        install = "submitit is not installed here (pip install -c constraints.txt -e '.[slurm]')"
        require_module("submitit", "--executor slurm", install)
        try:
            done = subprocess.run(
                ["squeue", "-h", "-o", "%i", "-u", "nobody"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PreflightError(f"--executor slurm: squeue cannot run here ({exc})") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            raise PreflightError(f"--executor slurm: Slurm does not answer: {why}")

    def _parameters(self, gpus: int, minutes: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "timeout_min": minutes,
            "slurm_signal_delay_s": SIGNAL_DELAY_S,
            "tasks_per_node": 1,
            "nodes": 1,
            "slurm_additional_parameters": {"requeue": True},
        }
        if gpus:
            params["gpus_per_node"] = gpus * self.gpus_per_trial
        if self.partition:
            params["slurm_partition"] = self.partition
        extra = params["slurm_additional_parameters"]
        for key, value in self.options.items():
            name = KNOWN.get(key)
            if name is None:
                extra[key.replace("_", "-")] = value
            elif name in ("timeout_min", "cpus_per_task", "mem_gb", "slurm_array_parallelism"):
                params[name] = int(value)
            else:
                params[name] = value
        return params

    def run(self, jobs: list[Job], progress: Any) -> list[JobOutcome]:
        import submitit

        self.preflight()  # again for API callers: one squeue
        if not jobs:
            return []
        executor = submitit.AutoExecutor(folder=self.folder, cluster="slurm")
        groups: dict[tuple[int, int], list[Job]] = {}
        for job in jobs:
            groups.setdefault((gpu_request(job), time_limit_min(job)), []).append(job)
        pending: list[tuple[Job, Any]] = []
        for (gpus, minutes), members in groups.items():
            executor.update_parameters(name="nasrepro", **self._parameters(gpus, minutes))
            with executor.batch():
                handles = [executor.submit(SlurmTask(), job) for job in members]
            ids = sorted({h.job_id.split("_")[0] for h in handles})
            self.submitted += ids
            progress(
                f"slurm: {len(members)} task(s) as array job(s) {', '.join(ids)} "
                f"({gpus} GPU(s) each, {minutes} min limit, logs in {self.folder}/)"
            )
            pending += list(zip(members, handles, strict=True))
        return self._wait(pending, progress)

    def _wait(self, pending: list[tuple[Job, Any]], progress: Any) -> list[JobOutcome]:
        """Each task's outcomes once it has a result; a task that left the queue without
        one (killed, node failure) fails with the tail of its log."""
        outcomes: dict[int, list[JobOutcome]] = {}
        gone: dict[int, float] = {}
        while len(outcomes) < len(pending):
            queued = _in_queue([h.job_id for _, h in pending])
            for i, (job, handle) in enumerate(pending):
                if i in outcomes:
                    continue
                # the result file, not `handle.done()`: that asks sacct, which clusters
                # without accounting storage refuse (squeue below says what left the queue)
                if handle.paths.result_pickle.exists():
                    outcomes[i] = self._result(job, handle)
                elif queued is not None and handle.job_id not in queued:
                    first = gone.setdefault(i, time.monotonic())
                    if time.monotonic() - first > GONE_GRACE_S:
                        why = (
                            f"Slurm task {handle.job_id} left the queue without a result; "
                            f"log {handle.paths.stderr}"
                        )
                        outcomes[i] = _failed(job, why)
                else:
                    gone.pop(i, None)
            if len(outcomes) < len(pending):
                time.sleep(self.poll_s)
        return [o for i in range(len(pending)) for o in outcomes[i]]

    @staticmethod
    def _result(job: Job, handle: Any) -> list[JobOutcome]:
        try:
            result: list[JobOutcome] = handle.result()
            return result
        except Exception as exc:  # noqa: BLE001  (the task's own failure, one line)
            line = str(exc).strip().splitlines()
            return _failed(job, f"Slurm task {handle.job_id} failed: {line[-1] if line else exc}")


def _failed(job: Job, error: str) -> list[JobOutcome]:
    members = job.jobs if isinstance(job, PackedJob) else (job,)
    return [JobOutcome(j, None, error) for j in members]


def _in_queue(job_ids: list[str]) -> set[str] | None:
    """The task ids Slurm still has queued or running (None when squeue cannot say)."""
    arrays = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i", "-j", arrays],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.strip() for line in out.splitlines() if line.strip()}
