"""The executor contract: run every job, report each unit's (or trial's) record path or
error (one `JobOutcome` per trial or unit: a packed job gives one per retraining)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from nasrepro.execute import Job, JobOutcome, run_safely

Progress = Callable[[str], None]

__all__ = ["Executor", "Job", "JobOutcome", "Progress", "run_safely"]


class Executor(Protocol):
    def run(self, jobs: list[Job], progress: Progress) -> list[JobOutcome]:
        """Run the jobs; a failed job does not stop the others unless the executor is
        sequential (then the remaining jobs are not started and have no outcome)."""
        ...
