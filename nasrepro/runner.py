"""`nasrepro run`: validate, expand, execute trials, record them, rebuild the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from nasrepro.plan import Trial, expand
from nasrepro.registry import write_record
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
    progress: Progress = _stderr,
) -> RunSummary:
    from nasrepro.tracking import Tracker, flatten
    from nasrepro.trial import execute_trial

    suite = load_suite(suite_path)
    trials = expand(suite, suite_path, budget, experiments, seeds)
    dev = resolve_device(device)
    preflight(trials, data_root, download)
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment_id(suite.suite)
    summary = RunSummary(tracking_uri=tracker.uri, experiment_id=exp_id)
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    for experiment, group in groupby(trials, key=lambda t: t.experiment):
        group = list(group)
        first = group[0]
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
        try:
            for trial in group:
                record = execute_trial(
                    trial,
                    tracker=tracker,
                    experiment_id=exp_id,
                    parent_run_id=parent,
                    data_root=data_root,
                    device=dev,
                    progress=progress,
                )
                try:
                    summary.records.append(write_record(registry, record))
                except BaseException:
                    tracker.end_run(record["mlflow"]["run_id"], "FAILED")
                    raise
        except KeyboardInterrupt:
            tracker.end_run(parent, "KILLED")
            raise
        except Exception as exc:
            tracker.end_run(parent, "FAILED")
            raise TrialFailed(f"{suite_path}: experiments.{experiment}: {exc}") from exc
        tracker.end_run(parent)
    return summary
