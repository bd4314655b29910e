"""The executor contract: run every job, report each one's record path or error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nasrepro.execute import run_job
from nasrepro.jobs import TrialJob

Progress = Callable[[str], None]


@dataclass(frozen=True)
class JobOutcome:
    job: TrialJob
    path: Path | None  # the registry record, when the trial finished
    error: str | None  # one line, when it failed


class Executor(Protocol):
    def run(self, jobs: list[TrialJob], progress: Progress) -> list[JobOutcome]:
        """Run the jobs; a failed job does not stop the others unless the executor is
        sequential (then the remaining jobs are not started and have no outcome)."""
        ...


def run_safely(job: TrialJob, progress: Progress) -> JobOutcome:
    """Run one job and turn any failure into a one-line error (for workers and Ray tasks)."""
    try:
        return JobOutcome(job, run_job(job, progress), None)
    except Exception as exc:  # noqa: BLE001  (reported per job; the runner raises once)
        return JobOutcome(job, None, f"{type(exc).__name__}: {exc}".splitlines()[0])
