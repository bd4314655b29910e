"""Executors run trial jobs: here (sequentially or one worker per GPU) or on a Ray cluster."""

from nasrepro.executor.base import Executor, JobOutcome
from nasrepro.executor.local import LocalExecutor

__all__ = ["Executor", "JobOutcome", "LocalExecutor"]
