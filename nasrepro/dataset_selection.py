"""Which datasets a trial reads, and the trials a user's datasets allow (`--datasets`).

A trial reads the files of its *search* dataset (a searched cell) and of its *evaluation*
datasets: those the evaluator trains or tests on (the `retrain` evaluator, on the recipe's
dataset or the run-level substitute). Table lookups (`nb201-table`, `nb201-api`) and
parameter/FLOP counts (`complexity`) read no dataset: their `eval_datasets` name table
columns, not files; nor does a search by benchmark queries (`query:`), whose `dataset` is
the benchmark's column. Datasets shipped with the package or generated (digits, synthetic)
are always present.

A trial may also read a *benchmark file*: `nb201-api` (query searches and API lookups) the
full NAS-Bench-201 file, given by the evaluator option `path` or NASREPRO_NB201_FILE.

`select_by_datasets` keeps the trials whose datasets are all in the user's list and whose
benchmark files are given, and says, per experiment, which it skipped and what they lacked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasrepro.jobs import Trial

__all__ = [
    "Skipped",
    "always_present",
    "missing_benchmark_files",
    "eval_data_datasets",
    "parse_datasets",
    "select_by_datasets",
    "trial_datasets",
]


def always_present() -> set[str]:
    """Registered datasets that need no files under the data root (embedded, generated)."""
    from nasrepro import catalog

    return {n for n in catalog.names("dataset") if not catalog.get("dataset", n).needs_root}


def eval_data_datasets(config: dict[str, Any]) -> list[str]:
    """The datasets whose files the trial's evaluator reads (train and test parts), in the
    order it evaluates them; [] for lookups and complexity counts."""
    if config.get("evaluator") != "retrain":
        return []
    from nasrepro.evaluate.retrain import RetrainEvaluator

    evaluator = RetrainEvaluator(**config["evaluator_args"])
    substitute = evaluator.run["dataset"]
    out: list[str] = []
    for ds in config["eval_datasets"]:
        if ds in evaluator.recipes:
            name = substitute or ds
            if name not in out:
                out.append(name)
    return out


def trial_datasets(config: dict[str, Any]) -> dict[str, list[str]]:
    """{"search": [...], "eval": [...]}: the datasets a trial of `config` reads."""
    searched = "genotype" not in config and "query" not in config
    search = [str(config["dataset"])] if searched else []
    return {"search": search, "eval": eval_data_datasets(config)}


def missing_benchmark_files(config: dict[str, Any]) -> list[str]:
    """The benchmark files a trial of `config` reads that are not given (a path that exists):
    ["NAS-Bench-201 file (NASREPRO_NB201_FILE ...)"] for `nb201-api` without one, else [].
    Only whether a file is there: the preflight opens it and checks its checksum."""
    if config.get("evaluator") != "nb201-api":
        return []
    from nasrepro.evaluate.nb201 import ENV_FILE

    raw = (config.get("evaluator_args") or {}).get("path") or os.environ.get(ENV_FILE)
    if raw and Path(raw).expanduser().exists():
        return []
    where = f"{raw} not found" if raw else f"set {ENV_FILE} or the evaluator option `path`"
    return [f"the NAS-Bench-201 file ({where})"]


def parse_datasets(text: str | Sequence[str]) -> list[str]:
    """`cifar10,svhn` (or repeated options) → registered names; ValueError naming an
    unknown one (`--datasets: unknown dataset 'cifar' (did you mean 'cifar10'?)`)."""
    from nasrepro import catalog

    parts = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for p in parts for n in p.split(",") if n.strip()]
    if not names:
        raise ValueError("--datasets: give at least one dataset, e.g. --datasets cifar10")
    known = catalog.names("dataset")
    for name in names:
        if name not in known:
            raise ValueError(
                f"--datasets: unknown dataset {name!r}{catalog.did_you_mean(name, known)}"
            )
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Skipped:
    """An experiment whose trials need datasets the user does not have."""

    suite: str
    experiment: str
    trials: int
    missing_search: tuple[str, ...]
    missing_eval: tuple[str, ...]
    missing_files: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        parts = []
        if self.missing_search:
            parts.append(f"searches on {', '.join(self.missing_search)}")
        if self.missing_eval:
            parts.append(f"evaluates on {', '.join(self.missing_eval)}")
        text = " and ".join(parts) + " (not in --datasets)" if parts else ""
        if self.missing_files:
            files = f"reads {', '.join(self.missing_files)}"
            text = f"{text}; {files}" if text else files
        return text

    def line(self) -> str:
        return f"{self.suite}/{self.experiment}: {self.trials} trial(s) skipped: {self.reason}"


def select_by_datasets(
    trials: Iterable[Trial], datasets: Iterable[str] | None
) -> tuple[list[Trial], list[Skipped]]:
    """(trials whose search and evaluation datasets are all available and whose benchmark
    files are given, one `Skipped` per experiment left out). `datasets` None: every trial is
    kept (no selection; the preflight refuses a missing file in one line)."""
    trials = list(trials)
    if datasets is None:
        return trials, []
    have = set(datasets) | always_present()
    kept: list[Trial] = []
    skipped: dict[tuple[str, str], list[Any]] = {}
    needs: dict[str, dict[str, list[str]]] = {}
    for t in trials:
        need = needs.get(t.group_hash)
        if need is None:
            need = needs[t.group_hash] = {
                **trial_datasets(t.config),
                "files": missing_benchmark_files(t.config),
            }
        search = tuple(d for d in need["search"] if d not in have)
        evaluation = tuple(d for d in need["eval"] if d not in have)
        files = tuple(need["files"])
        if not search and not evaluation and not files:
            kept.append(t)
            continue
        entry = skipped.setdefault((t.suite, t.experiment), [0, search, evaluation, files])
        entry[0] += 1
    out = [Skipped(s, e, n, ms, me, mf) for (s, e), (n, ms, me, mf) in skipped.items()]
    return kept, out


def check_eval_data(
    trials: Iterable[Trial], data_root: str | None, download: bool = False
) -> None:
    """Load the train and test parts of every dataset a selected trial retrains on, with
    the retraining's own loader, before the first step: a missing CIFAR-100 fails here, not
    after a search and a first retraining. Each (dataset, size) is loaded once.
    Raises DatasetNotFound (or the loader's error) naming the experiment."""
    from nasrepro.datasets.base import DatasetNotFound
    from nasrepro.evaluate.retrain import RetrainEvaluator

    seen: set[tuple[str, int | None]] = set()
    groups: set[str] = set()
    for t in trials:
        if t.group_hash in groups or t.config.get("evaluator") != "retrain":
            continue
        groups.add(t.group_hash)
        evaluator = RetrainEvaluator(**{**t.config["evaluator_args"], "download": download})
        for name in eval_data_datasets(t.config):
            key = (name, evaluator.run["image_size"])
            if key in seen:
                continue
            try:
                evaluator._data(name, evaluator.run["image_size"], data_root)
            except DatasetNotFound as exc:
                raise DatasetNotFound(
                    f"experiments.{t.experiment}: retraining data: {exc}"
                ) from None
            seen.add(key)
