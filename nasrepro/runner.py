"""`nasrepro run`: validate, expand, execute trials, record them, rebuild the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from nasrepro.execute import run_job, search_processes
from nasrepro.executor import Executor, LocalExecutor
from nasrepro.executor.base import JobOutcome
from nasrepro.jobs import TrialJob
from nasrepro.plan import Trial, expand
from nasrepro.progress import emit
from nasrepro.registry import current_trials, scan_registry, unreported
from nasrepro.suite import SuiteError, load_suite

__all__ = [
    "RunSummary",
    "TrialFailed",
    "TrialJob",
    "preflight",
    "run_job",
    "run_suite",
    "search_processes",
]

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


class TrialFailed(RuntimeError):
    """A trial raised; its MLflow runs are marked FAILED and nothing is recorded.
    `summary` holds what the run did before (records of the trials that finished),
    `failed` the number of failed trials."""

    summary: RunSummary | None = None
    failed: int = 0


@dataclass
class RunSummary:
    tracking_uri: str
    experiment_id: str
    records: list[Path] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    skipped: int = 0
    view_run_id: str | None = None  # the suite's `<suite> · verdicts` run (claims view)
    # experiments left out by --datasets (one line each: which data they lack)
    skipped_for_data: list[str] = field(default_factory=list)
    # experiments whose seeds stopped early (sequential seeds): experiment -> why
    stopped_early: dict[str, str] = field(default_factory=dict)


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda requested but torch sees no CUDA device")
    return device


def preflight(trials: list[Trial], data_root: str | None, download: bool = False) -> None:
    """Fail before anything is logged: evaluators (benchmark files), search datasets and the
    datasets the evaluators retrain on must load, for every trial selected."""
    from nasrepro.dataset_selection import check_eval_data
    from nasrepro.datasets import SearchProtocolError, trial_search_data
    from nasrepro.trial import build_evaluator

    seen: set[str] = set()
    for t in trials:
        if t.group_hash in seen:
            continue
        seen.add(t.group_hash)
        build_evaluator(t.config)
        if t.given_cell or t.benchmark_query:
            continue  # a published cell or a search by benchmark queries: no search data
        try:
            trial_search_data(t.config, root=data_root, seed=0, download=download)
        except SearchProtocolError as exc:
            field = f"experiments.{t.experiment}.search.data_protocol"
            raise SuiteError(t.suite_path, None, field, str(exc)) from None
    check_eval_data(trials, data_root, download)


def unique_trials(trials: list[Trial], progress: Progress = _stderr) -> list[Trial]:
    """The trials in order, each configuration and seed once (the first experiment asking
    for it runs it; the others find its record)."""
    first: dict[str, Trial] = {}
    for t in trials:
        if t.config_hash in first:
            other = first[t.config_hash]
            if other.experiment != t.experiment and t.seed == 0:
                progress(
                    f"{t.suite}: experiment {t.experiment} resolves to the same trials as "
                    f"{other.experiment}; they run once"
                )
            continue
        first[t.config_hash] = t
    return list(first.values())


def _parent_from_checkpoints(trials: list[Trial], checkpoint_dir: Path) -> str | None:
    """The parent run of an interrupted group, so a resumed run continues it."""
    from nasrepro.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

    for trial in trials:
        path = checkpoint_path(checkpoint_dir, trial)
        if path.exists():
            try:
                return str(load_checkpoint(path, trial.config_hash)["parent_run_id"])
            except CheckpointError:
                continue  # execute_trial reports it and starts that trial over
    return None


def _locked(error: str) -> bool:
    return error.startswith("TrialLocked:")


def _skip_locked(trials: list[Trial], checkpoint_dir: Path, progress: Progress) -> list[Trial]:
    """Trials no other live process is running. A locked trial is left alone entirely: its
    checkpoint names the other process's MLflow parent, which must not be reopened here
    (nor marked FAILED when the lock refuses us)."""
    from nasrepro.checkpoint import checkpoint_path, lock_holder

    free = []
    for t in trials:
        holder = lock_holder(checkpoint_path(checkpoint_dir, t))
        if holder is None:
            free.append(t)
        else:
            progress(
                f"[{t.suite}/{t.experiment} seed {t.seed}] being run by another process "
                f"(pid {holder}); skipped"
            )
    return free


def _parent_description(suite: Any, experiment: str, budget: str, first: Trial) -> str:
    exp = suite.experiments[experiment]
    about = f"{exp.description.strip()} " if exp.description else ""
    return (
        f"`{experiment}` of {suite.paper.title}, {budget} budget ({first.budget_description}). "
        f"{about}One child run per seed; `mean.final.*` / `std.final.*` over the finished "
        f"children. Claims and verdicts: the run `{experiment} · claims` under "
        f"`{suite.suite} · verdicts`."
    )


def _publish_view(
    tracker: Any,
    suite_path: str | Path,
    registry: str | Path,
    exp_id: str,
    summary: RunSummary,
    progress: Progress,
) -> None:
    """Refresh the suite's claims view in MLflow (nasrepro/report/mlflow_view.py); a
    failure there is reported, never fatal: the records are written."""
    from nasrepro.report.mlflow_view import publish_view

    if not Path(registry).is_dir():
        return  # nothing was ever recorded there: no verdict to show
    try:
        summary.view_run_id = publish_view(tracker, suite_path, registry, exp_id)
    except Exception as exc:  # noqa: BLE001
        progress(f"nasrepro: warning: MLflow claims view not updated: {type(exc).__name__}: {exc}")


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
    checkpoint_dir: str | Path = "checkpoints",
    rerun: bool = False,
    search_processes: int | None = None,
    fast: bool = False,
    executor: Executor | None = None,
    progress: Progress = _stderr,
    datasets: list[str] | None = None,
    only: list[str] | None = None,
    sequential: int | None = None,
    pack_seeds: int | None = None,
    data_on_device: bool | None = None,
) -> RunSummary:
    """Run every trial of the suite at `budget` that the registry does not hold yet.

    Trials are idempotent by what they compute (resolved configuration, seed, fidelity
    version): one already recorded, by this suite or any other, is skipped unless `rerun`,
    which adds another record. Experiments of the suite that resolve to the same trial run
    it once.

    `datasets`: only experiments whose search and evaluation datasets are all listed (the
    others are named in `summary.skipped_for_data`). `only`: exactly these trial keys, in
    this order (a plan file, nasrepro/budget.py). `sequential`: at the full budget, run
    each experiment's seeds in order and stop once its verdicts are decided, never below
    this minimum (nasrepro/sequential.py). `pack_seeds`: seeds per packed search step
    (nasrepro/packed_trials.py; None: 4 on a GPU where a measured step pays, else 1).
    `data_on_device`: search and retraining images held and augmented on the device
    (None: on a GPU, for CIFAR/SVHN-sized sets).
    """
    from nasrepro.dataset_selection import select_by_datasets
    from nasrepro.preflight import check_tracking_uri
    from nasrepro.report.mlflow_view import experiment_description
    from nasrepro.tracking import (
        SOURCE,
        Tracker,
        close_dead_runs,
        finish_parent,
        flatten,
        parent_run_name,
        resolve_uri,
    )

    suite = load_suite(suite_path)
    expanded = expand(suite, suite_path, budget, experiments, seeds)
    trials = unique_trials(expanded, progress)
    if only is not None:
        trials = _in_plan_order(trials, only)
    trials, no_data = select_by_datasets(trials, datasets)
    for s in no_data:
        progress(f"{suite.suite}: {s.line()}")
    dev = resolve_device(device)
    skipped: list[Trial] = []
    if not rerun:
        scan = scan_registry(registry)
        for problem in unreported(scan.problems):
            progress(f"nasrepro: warning: {problem}; skipped")
        done = current_trials(scan.records)
        skipped = [t for t in trials if t.config_hash in done]
        trials = [t for t in trials if t.config_hash not in done]
        if skipped:
            progress(
                f"{suite.suite}: {len(skipped)} trial(s) already in {registry}/ (recorded by "
                "this or another suite with the same configuration), skipped (--rerun adds "
                "new records)"
            )
    trials = _skip_locked(trials, Path(checkpoint_dir), progress)
    check_tracking_uri(resolve_uri(tracking_uri))  # API callers too: seconds, one line
    preflight(trials, data_root, download)
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment_id(suite.suite, experiment_description(suite, suite_path))
    closed = close_dead_runs(tracker, exp_id)  # before a resumed trial reopens its run
    if closed:
        progress(
            f"{suite.suite}: {closed} MLflow run(s) left RUNNING by a process that had ended "
            "marked KILLED"
        )
    summary = RunSummary(tracking_uri=tracker.uri, experiment_id=exp_id)
    summary.skipped = len(skipped)
    summary.skipped_for_data = [s.line() for s in no_data]
    seq = sequential if budget == "full" else None  # verdicts are judged at full only
    paper_n = Counter(t.experiment for t in expanded)  # the experiments' seeds at this budget
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    ckpt_root = Path(checkpoint_dir)
    groups: list[tuple[str, str, list[TrialJob]]] = []
    reopened: set[str] = set()
    for experiment, members in groupby(trials, key=lambda t: t.experiment):
        group = list(members)
        first = group[0]
        parent = _parent_from_checkpoints(group, ckpt_root)
        if parent is not None:
            tracker.reopen(parent)
            reopened.add(parent)
        else:
            parent = tracker.start_run(
                exp_id,
                parent_run_name(experiment, budget),
                {
                    "suite": suite.suite,
                    "experiment": experiment,
                    "budget": budget,
                    "claim_ids": ",".join(first.claim_ids),
                    "group_hash": first.group_hash,
                    "method": "+".join(first.config.get("methods", ["published cell"])) or "darts",
                    "space": first.config["space"],
                    "dataset": first.config["dataset"],
                    SOURCE: str(suite_path),
                },
            )
            tracker.log_params(parent, flatten(first.config))
            tracker.describe(parent, _parent_description(suite, experiment, budget, first))
        summary.run_ids.append(parent)
        jobs = [
            TrialJob(
                t,
                tracker.uri,
                exp_id,
                parent,
                data_root,
                dev,
                str(registry),
                str(ckpt_root),
                rerun,
                search_processes,
                fast,
                tuple(t.config_hash for t in group),
                sequential=None if seq is None else (seq, paper_n[experiment]),
                data_on_device=data_on_device,
            )
            for t in group
        ]
        groups.append((experiment, parent, jobs))
    runner = executor if executor is not None else LocalExecutor.for_device(dev)
    packing = _packing(pack_seeds, dev)
    try:
        if seq is None:
            every = [j for _, _, jobs in groups for j in jobs]
            outcomes = _run_packed(runner, every, packing, progress)
        else:
            outcomes = _run_sequential(
                runner, groups, expanded, seq, suite_path, registry, packing, summary, progress
            )
    except KeyboardInterrupt:
        for _, parent, _ in groups:
            tracker.end_run(parent, "KILLED")
        raise
    for experiment, parent, _ in groups:
        if experiment in summary.stopped_early:
            tracker.set_tags(parent, {"nasrepro.sequential": summary.stopped_early[experiment]})
    failed: list[str] = []
    n_failed = 0
    for experiment, parent, jobs in groups:
        mine = [o for o in outcomes if o.job in jobs]
        # a trial another process locked meanwhile is that process's, not a failure here
        errors = [o.error for o in mine if o.error is not None and not _locked(o.error)]
        summary.records.extend(o.path for o in mine if o.path is not None)
        # (seeds the sequential rule left out are not missing)
        incomplete = errors or (len(mine) < len(jobs) and experiment not in summary.stopped_early)
        lost = [o for o in mine if o.path is None and (o.error is None or _locked(o.error))]
        if len(lost) == len(jobs) and parent not in reopened:
            # every trial was run by a concurrent process (under its own parent): this
            # parent holds nothing, and neither failed nor finished anything
            tracker.client.delete_run(parent)
            summary.run_ids.remove(parent)
            continue
        finish_parent(tracker, parent, jobs[0].siblings, "FAILED" if incomplete else "FINISHED")
        n_failed += len(errors)
        if errors:
            failed.append(f"{suite_path}: experiments.{experiment}: {errors[0]}")
    _publish_view(tracker, suite_path, registry, exp_id, summary, progress)
    if failed:
        more = f" (and {len(failed) - 1} more experiment(s))" if len(failed) > 1 else ""
        error = TrialFailed(failed[0] + more)
        error.summary, error.failed = summary, n_failed
        raise error
    return summary


def _in_plan_order(trials: list[Trial], keys: list[str]) -> list[Trial]:
    """The trials named by `keys` (a plan file), in the plan's order of their experiments'
    first trials; an experiment's trials stay together (one MLflow parent run each)."""
    rank = {k: i for i, k in enumerate(keys)}
    chosen = [t for t in trials if t.config_hash in rank]
    first: dict[str, int] = {}
    for t in chosen:
        first[t.experiment] = min(first.get(t.experiment, rank[t.config_hash]), rank[t.config_hash])
    return sorted(chosen, key=lambda t: (first[t.experiment], t.seed))


def _packing(pack_seeds: int | None, device: str) -> tuple[int, bool]:
    """(seeds per pack, measured): `--pack-seeds K` forces K (1: off); by default four on a
    GPU where the measured packed step pays, none on a CPU (packed_trials.py)."""
    from nasrepro.packed_trials import DEFAULT_PACK

    if pack_seeds is not None:
        return pack_seeds, False
    return (DEFAULT_PACK, True) if device.startswith("cuda") else (1, False)


def _packable(job: TrialJob) -> bool:
    from nasrepro.search.packed import not_packable

    processes = search_processes(job, lambda line: None)
    return not_packable(job.trial.config, processes) is None


def _run_packed(
    runner: Executor, jobs: list[TrialJob], packing: tuple[int, bool], progress: Progress
) -> list[JobOutcome]:
    """Run the jobs; first the packed searches of each experiment's packable seeds (pack
    jobs), whose failure only means those seeds search alone in their own jobs."""
    from dataclasses import replace

    k, measured = packing
    packs: list[TrialJob] = []
    if k > 1:
        for _, members in groupby(jobs, key=lambda j: j.trial.group_hash):
            group = list(members)
            if not _packable(group[0]):
                continue
            for i in range(0, len(group), k):
                chunk = group[i : i + k]
                if len(chunk) > 1:
                    partners = tuple(j.trial for j in chunk[1:])
                    packs.append(replace(chunk[0], pack=partners, pack_measured=measured))
    if packs:
        for outcome in runner.run(packs, progress):
            if outcome.error is not None:
                t = outcome.job.trial
                progress(
                    f"[{t.suite}/{t.experiment} packed from seed {t.seed}] packed search "
                    f"stopped ({outcome.error}); its seeds continue alone"
                )
    return runner.run(jobs, progress)


def _run_sequential(
    runner: Executor,
    groups: list[tuple[str, str, list[TrialJob]]],
    expanded: list[Trial],
    min_seeds: int,
    suite_path: str | Path,
    registry: str | Path,
    packing: tuple[int, bool],
    summary: RunSummary,
    progress: Progress,
) -> list[JobOutcome]:
    """Waves of seeds: each experiment runs its seeds in order, the minimum first, then one
    at a time (a pack's K at a time where its seeds are packed: they cost about one seed)
    while `sequential.decide` says its verdicts need more (nasrepro/sequential.py). A failed
    or locked trial ends its experiment's waves."""
    from nasrepro.sequential import decide, experiment_verdicts, registry_verdicts

    pending = {e: sorted(jobs, key=lambda j: j.trial.seed) for e, _, jobs in groups}
    seeds_of = {e: [t.config_hash for t in expanded if t.experiment == e] for e in pending}
    outcomes: list[JobOutcome] = []
    while pending:
        done = current_trials(scan_registry(registry).records)
        analysis = None  # the report's verdicts, computed once a wave needs them
        wave: list[TrialJob] = []
        for exp in list(pending):
            n = len(seeds_of[exp])
            recorded = sum(k in done for k in seeds_of[exp])
            floor = min(min_seeds, n)
            verdicts: tuple[dict[str, str], dict[str, str]] = ({}, {})
            if floor <= recorded < n:
                analysis = analysis or registry_verdicts(suite_path, registry)
                verdicts = experiment_verdicts(analysis, exp)
            decision = decide(recorded, n, min_seeds, *verdicts)
            if decision.stop:
                if decision.early:
                    summary.stopped_early[exp] = decision.why
                    left = ", ".join(str(j.trial.seed) for j in pending[exp])
                    progress(
                        f"{exp}: {decision.why}; seed(s) {left} not run (--all-seeds runs them)"
                    )
                del pending[exp]
                continue
            take = max(floor - recorded, 1)
            if packing[0] > 1 and _packable(pending[exp][0]):
                take = max(take, packing[0])  # a pack's seeds cost about one seed's time
            wave += pending[exp][:take]
            pending[exp] = pending[exp][take:]
            if not pending[exp]:
                del pending[exp]
        if not wave:
            break
        got = _run_packed(runner, wave, packing, progress)
        outcomes += got
        for o in got:
            if o.error is not None:
                pending.pop(o.job.trial.experiment, None)
        if len(got) < len(wave) or any(o.error and not _locked(o.error) for o in got):
            break  # a failure: the run reports it; no further waves
    return outcomes
