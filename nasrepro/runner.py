"""`nasrepro run`: validate, expand, run the units of work the claims need, assemble and
record the trials.

A run goes in stages (docs/plan.md, "Units of work"); each unit is computed once, under its
lock in the shared store, by whichever job reaches it first, and read by every other trial,
experiment and suite that needs it:

1. searches: one job per search unit not yet recorded (with the first selection on it),
   then one job per further selection on a recorded search (DARTS-PT on a DARTS supernet);
2. retrainings: one job per retraining the claims read (nasrepro/units.py), `pack` of the
   small CIFAR ones at once on one device; best_by_valid waits for every search of its
   experiment, then retrains the selected seed only;
3. records: each trial whose units are all recorded is assembled here and written to the
   registry (under the trial's lock, so no trial is recorded twice).

`rerun` runs each trial whole in one job and adds a record, as before units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from nasrepro.execute import LOCKED, Job, JobOutcome, run_job, search_processes
from nasrepro.executor import Executor, LocalExecutor
from nasrepro.jobs import PackedJob, TrialJob, UnitJob
from nasrepro.plan import Trial, expand, merged_plans, trial_plans
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
    units: list[Path] = field(default_factory=list)  # unit records computed by this run
    waiting: list[str] = field(default_factory=list)  # trials not recorded yet, with why


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda requested but torch sees no CUDA device")
    return device


def preflight(trials: list[Trial], data_root: str | None, download: bool = False) -> None:
    """Fail before anything is logged: evaluators (benchmark files) and datasets must load."""
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


def _checkpoint_payload(trial: Trial, checkpoint_dir: Path) -> dict[str, Any] | None:
    """The interrupted search checkpoint of the trial's search unit, if any."""
    from nasrepro.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

    path = checkpoint_path(checkpoint_dir, trial)
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, trial.search_key or trial.config_hash)
    except CheckpointError:
        return None  # the search reports it and starts over


def _parent_from_checkpoints(trials: list[Trial], checkpoint_dir: Path) -> str | None:
    """The parent run of an interrupted group, so a resumed run continues it."""
    for trial in trials:
        payload = _checkpoint_payload(trial, checkpoint_dir)
        if payload is not None and payload.get("parent_run_id"):
            return str(payload["parent_run_id"])
    return None


def _skip_locked(trials: list[Trial], registry: Path, progress: Progress) -> list[Trial]:
    """Trials no other live process (on any host) is computing. A trial whose search,
    selection or record is locked in the shared store is left alone entirely: its MLflow
    runs are that process's, not to be reopened here (nor marked FAILED)."""
    from nasrepro.store import live_holder

    free = []
    for t in trials:
        keys = [k for k in (t.search_key, t.selection_key) if k] + [f"trial-{t.config_hash}"]
        holder = next((h for h in (live_holder(registry, k) for k in keys) if h), None)
        if holder is None:
            free.append(t)
        else:
            progress(
                f"[{t.suite}/{t.experiment} seed {t.seed}] being run by another process "
                f"({holder.describe()}); skipped"
            )
    return free


def _retrained(rec: dict[str, Any], dataset: str) -> bool:
    """Whether a trial record holds a retraining of `dataset` (records from before units
    retrained every evaluated dataset they have an accuracy for)."""
    units = rec.get("units")
    if isinstance(units, dict):
        return dataset in (units.get("retrain") or {})
    return (rec.get("metrics") or {}).get(dataset, {}).get("test_acc") is not None


def _selected_seeds(plans: list[Any], registry: Path) -> dict[str, dict[int, int | None]]:
    """Per experiment with a best_by_valid need, per N: the seed among its first N whose
    search has the best validation accuracy, once those searches are recorded (else
    None)."""
    from nasrepro.store import read_unit
    from nasrepro.units import best_seed, search_valid_acc, selected_ns

    wanted: dict[str, set[int]] = {}
    by_seed: dict[str, dict[int, Any]] = {}
    for p in plans:
        ns = {n for m in p.needs.retrain.values() for n in selected_ns(m)}
        if ns:
            wanted.setdefault(p.trial.experiment, set()).update(ns)
            by_seed.setdefault(p.trial.experiment, {})[p.trial.seed] = p.trial
    out: dict[str, dict[int, int | None]] = {}
    for exp, ns in wanted.items():
        values: dict[int, float | None] = {}
        for seed, trial in by_seed[exp].items():
            rec = read_unit(registry, "search", trial.search_key)
            values[seed] = None if rec is None else search_valid_acc(rec["result"])
        out[exp] = {}
        for n in ns:
            first = {s: values.get(s) for s in range(n)}
            out[exp][n] = best_seed(first)
    return out


@dataclass
class _Todo:
    """A trial of this run: what its claims need and its MLflow runs."""

    trial: Trial
    plan: Any
    parent: str = ""
    run_id: str | None = None
    retrain: dict[str, str] = field(default_factory=dict)  # dataset -> retraining key
    skip: dict[str, str] = field(default_factory=dict)  # dataset -> why not retrained
    waiting: str | None = None


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
    retrain: str = "claims",
    pack: int = 1,
) -> RunSummary:
    """Run every trial of the suite at `budget` that the registry does not hold yet, as
    units of work (see the module docstring).

    Trials are idempotent by what they compute (resolved configuration, seed, fidelity
    version): one already recorded with what the claims read, by this suite or any
    other, is skipped unless `rerun`, which runs it whole again and adds another record.
    `retrain`: "claims" retrains what some claim reads, "all" every evaluated dataset of
    every seed (nasrepro/units.py). `pack`: CIFAR-sized retrainings run that many at once
    on one device (one cluster job), each in its own process.
    """
    from nasrepro.preflight import check_tracking_uri
    from nasrepro.tracking import Tracker, resolve_uri

    suite = load_suite(suite_path)
    expanded = expand(suite, suite_path, budget, experiments, seeds)
    trials = unique_trials(expanded, progress)
    plans = merged_plans(trial_plans(suite, expanded, budget, retrain))
    if getattr(executor, "remote", False):  # jobs run on other nodes (Slurm)
        dev = device or "cuda"
    else:
        dev = resolve_device(device)
    reg = Path(registry)
    scan = scan_registry(reg)
    for problem in unreported(scan.problems):
        progress(f"nasrepro: warning: {problem}; skipped")
    newest: dict[str, dict[str, Any]] = {}
    done = current_trials(scan.records)
    for rec in scan.records:  # oldest first: the newest record of each trial wins
        if rec["config_hash"] in done:
            newest[rec["config_hash"]] = rec
    skipped: list[Trial] = []
    if not rerun:
        selected = _selected_seeds(list(plans.values()), reg)
        pending = []
        for t in trials:
            rec = newest.get(t.config_hash)
            if rec is not None and _covers(rec, plans[t.config_hash], selected):
                skipped.append(t)
            else:
                pending.append(t)
        trials = pending
        if skipped:
            progress(
                f"{suite.suite}: {len(skipped)} trial(s) already in {registry}/ (recorded by "
                "this or another suite with the same configuration), skipped (--rerun adds "
                "new records)"
            )
    trials = _skip_locked(trials, reg, progress)
    check_tracking_uri(resolve_uri(tracking_uri))  # API callers too: seconds, one line
    preflight(trials, data_root, download)
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment_id(suite.suite)
    summary = RunSummary(tracking_uri=tracker.uri, experiment_id=exp_id)
    summary.skipped = len(skipped)
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    ckpt_root = Path(checkpoint_dir)
    todos = _open_runs(
        suite, trials, plans, tracker, exp_id, budget, ckpt_root, summary, children=not rerun
    )
    runner = executor if executor is not None else LocalExecutor.for_device(dev)
    ctx = _Context(
        tracker.uri,
        exp_id,
        data_root,
        dev,
        str(reg),
        str(ckpt_root),
        search_processes,
        fast,
        tracker,
    )
    failed: dict[str, str] = {}  # config hash -> error
    try:
        if rerun:
            _run_whole(todos, runner, ctx, summary, failed, progress)
        else:
            _run_units(todos, list(plans.values()), runner, ctx, summary, failed, progress, pack)
            _assemble(todos, tracker, ctx, summary, failed, progress)
    except KeyboardInterrupt:
        for parent in {td.parent for td in todos}:
            tracker.end_run(parent, "KILLED")
        raise
    return _finish(suite_path, todos, tracker, summary, failed)


def _covers(rec: dict[str, Any], plan: Any, selected: dict[str, dict[int, int | None]]) -> bool:
    """Whether a trial's newest record holds what its claims need now."""
    from nasrepro.units import wanted

    for ds, modes in plan.needs.retrain.items():
        want = wanted(modes, plan.trial.seed, selected.get(plan.trial.experiment, {}))
        if want is not False and not _retrained(rec, ds):
            return False  # needed (or maybe: its experiment's selection is not known yet)
    return True


def _open_runs(
    suite: Any,
    trials: list[Trial],
    plans: dict[str, Any],
    tracker: Any,
    exp_id: str,
    budget: str,
    ckpt_root: Path,
    summary: RunSummary,
    children: bool = True,
) -> list[_Todo]:
    """A parent run per experiment (an interrupted group's is continued); with `children`,
    the child run an interrupted search of the trial's was logging to (continued). Other
    child runs open when a job or the trial's record first needs one (`_child_run`)."""
    from nasrepro.tracking import claim_metrics, flatten, parent_run_name

    todos: list[_Todo] = []
    firsts: set[str] = set()
    for experiment, members in groupby(trials, key=lambda t: t.experiment):
        group = list(members)
        first = group[0]
        parent = _parent_from_checkpoints(group, ckpt_root)
        if parent is not None:
            tracker.reopen(parent)
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
                },
            )
            tracker.log_params(parent, flatten(first.config))
            claims = [c for c in suite.claims if c.experiment == experiment]
            tracker.log_metrics(parent, claim_metrics(claims), 0)
        summary.run_ids.append(parent)
        for t in group:
            run_id = None
            if children and t.search_key is not None and t.search_key not in firsts:
                firsts.add(t.search_key)  # the trial whose job continues an interrupted search
                payload = _checkpoint_payload(t, ckpt_root)
                run_id = None if payload is None else payload.get("mlflow_run_id")
            if run_id is not None:
                tracker.reopen(run_id)
            todos.append(_Todo(t, plans[t.config_hash], parent, run_id))
    return todos


def _child_run(td: _Todo, tracker: Any, experiment_id: str) -> str:
    """The trial's child run, opened when a job or its record first needs it."""
    from nasrepro.trial import open_trial_run

    if td.run_id is None:
        td.run_id = open_trial_run(td.trial, tracker, experiment_id, td.parent, None)
    return td.run_id


@dataclass(frozen=True)
class _Context:
    tracking_uri: str
    experiment_id: str
    data_root: str | None
    device: str
    registry: str
    checkpoint_dir: str
    search_processes: int | None
    fast: bool
    tracker: Any = None  # this process's MLflow client (child runs open here)


def _unit_job(ctx: _Context, td: _Todo, kind: str, key: str, **extra: Any) -> UnitJob:
    return UnitJob(
        kind,
        td.trial,
        key,
        ctx.tracking_uri,
        ctx.experiment_id,
        td.parent,
        _child_run(td, ctx.tracker, ctx.experiment_id),
        ctx.data_root,
        ctx.device,
        ctx.registry,
        ctx.checkpoint_dir,
        search_processes=ctx.search_processes,
        fast=ctx.fast,
        **extra,
    )


def _collect(
    outcomes: list[JobOutcome],
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
) -> None:
    for o in outcomes:
        if o.error is None:
            if o.path is not None:
                summary.units.append(o.path)
        elif o.error.startswith(LOCKED):
            progress(f"{o.job.label} being run by another process; skipped ({o.error})")
        else:
            failed.setdefault(o.job.trial.config_hash, o.error)


def _run_units(
    todos: list[_Todo],
    plans: list[Any],
    runner: Executor,
    ctx: _Context,
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
    pack: int,
) -> None:
    """Stages 1 and 2: the searches (and selections), then the retrainings."""
    from nasrepro.estimate import unit_hours
    from nasrepro.store import read_unit

    reg = ctx.registry
    first_wave: dict[str, Job] = {}  # search key -> its first selection's job
    second_wave: dict[str, Job] = {}  # selection key -> a selection on a recorded search
    scheduled: set[str] = set()
    for td in todos:
        t = td.trial
        if not t.searched or read_unit(reg, "selection", t.selection_key or "") is not None:
            continue  # a published cell or benchmark queries (stage 3), or recorded
        assert t.search_key is not None and t.selection_key is not None
        if t.selection_key in scheduled:
            continue  # another trial's job computes this selection (and its search)
        scheduled.add(t.selection_key)
        hours = unit_hours("search", t.config, None, "h200")
        hours += unit_hours("selection", t.config, None, "h200")
        job = _unit_job(
            ctx, td, "search", t.selection_key, gpus=ctx.search_processes or 1, hours=hours
        )
        if read_unit(reg, "search", t.search_key) is None and t.search_key not in first_wave:
            first_wave[t.search_key] = job
        else:
            second_wave[t.selection_key] = job
    for wave in (first_wave, second_wave):
        if wave and not failed:  # after a failure, stop as a plain loop would
            _collect(runner.run(list(wave.values()), progress), summary, failed, progress)
    jobs = _retrain_jobs(todos, plans, ctx)  # also what each trial retrains, why not the rest
    if jobs and not failed:
        _collect(runner.run(_packed(jobs, pack), progress), summary, failed, progress)


def _retrain_jobs(todos: list[_Todo], plans: list[Any], ctx: _Context) -> list[UnitJob]:
    """Each trial's retrainings (by dataset, with the reason for those not retrained), and
    a job per retraining not recorded yet (the first trial needing it computes it).
    `plans`: every trial of the suite, recorded or not (a best_by_valid selection reads
    all of its experiment's searches)."""
    from nasrepro.estimate import unit_hours
    from nasrepro.store import read_unit
    from nasrepro.trial import _given_arch, retrain_key
    from nasrepro.units import reason_not_retrained, wanted

    reg = Path(ctx.registry)
    selected = _selected_seeds(plans, reg)
    jobs: dict[str, UnitJob] = {}
    for td in todos:
        t = td.trial
        if t.config["evaluator"] != "retrain":
            continue
        if t.given_cell:
            arch = _given_arch(t.config)
        else:
            sel = read_unit(reg, "selection", t.selection_key or "")
            if sel is None:
                td.waiting = "its search or selection is not recorded"
                continue
            arch = sel["result"]["genotype"]
        chosen = selected.get(t.experiment, {})
        for ds in t.config["eval_datasets"]:
            modes = td.plan.needs.retrain.get(ds, frozenset())
            want = wanted(modes, t.seed, chosen)
            if want is None:
                td.waiting = f"the searches of {t.experiment} (best_by_valid picks one)"
            elif not want:
                td.skip[ds] = reason_not_retrained(modes, t.seed, chosen)
            else:
                key = retrain_key(t, ds, arch)
                td.retrain[ds] = key
                if key not in jobs and read_unit(reg, "retrain", key) is None:
                    hours = unit_hours("retrain", t.config, ds, "h200")
                    gpus = int(t.config["evaluator_args"].get("processes") or 1)
                    jobs[key] = _unit_job(
                        ctx, td, "retrain", key, dataset=ds, genotype=arch, hours=hours, gpus=gpus
                    )
    return list(jobs.values())


def _packed(jobs: list[UnitJob], pack: int) -> list[Job]:
    """CIFAR-sized retrainings `pack` at a time (one device, one cluster job); ImageNet
    retrainings alone."""
    if pack <= 1:
        return list(jobs)
    small = [j for j in jobs if j.dataset != "imagenet"]
    out: list[Job] = [j for j in jobs if j.dataset == "imagenet"]
    for i in range(0, len(small), pack):
        group = small[i : i + pack]
        out.append(group[0] if len(group) == 1 else PackedJob(tuple(group)))
    return out


def _assemble(
    todos: list[_Todo],
    tracker: Any,
    ctx: _Context,
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
) -> None:
    """Stage 3: every trial whose units are all recorded, assembled and written to the
    registry under its lock; the others are listed as waiting, with why."""
    from nasrepro.registry import find_trial, write_record
    from nasrepro.store import StoreLock, UnitLocked, read_unit
    from nasrepro.trial import (
        SearchOutcome,
        _execute_query,
        assemble_record,
        budget_caveat,
        evaluate_cell,
        execute_given_cell,
    )

    reg = ctx.registry
    for td in todos:
        t = td.trial
        if t.config_hash in failed:
            continue
        search = selection = None
        if t.searched:
            search = read_unit(reg, "search", t.search_key or "")
            selection = read_unit(reg, "selection", t.selection_key or "")
            if search is None or selection is None:
                td.waiting = td.waiting or "its search or selection is not recorded"
        units = {ds: read_unit(reg, "retrain", key) for ds, key in td.retrain.items()}
        missing = [ds for ds, rec in units.items() if rec is None]
        if missing and td.waiting is None:
            td.waiting = f"its retraining on {', '.join(missing)} is not recorded"
        if td.waiting is not None:
            summary.waiting.append(f"[{t.suite}/{t.experiment} seed {t.seed}] waits: {td.waiting}")
            continue
        try:
            with StoreLock(reg, f"trial-{t.config_hash}", f"{t.suite}/{t.experiment} record"):
                if any(_complete(r, td) for r in find_trial(reg, t.config_hash)):
                    progress(f"[{t.suite}/{t.experiment} seed {t.seed}] recorded meanwhile")
                    continue
                records = {ds: r for ds, r in units.items() if r is not None}
                run_id = _child_run(td, tracker, ctx.experiment_id)
                if t.benchmark_query:  # seconds of queries, run here
                    record = _execute_query(
                        t,
                        tracker=tracker,
                        experiment_id=ctx.experiment_id,
                        parent_run_id=td.parent,
                        device=ctx.device,
                        progress=progress,
                        run_name=None,
                        run_id=run_id,
                    )
                elif t.given_cell:
                    record = execute_given_cell(
                        t,
                        tracker=tracker,
                        experiment_id=ctx.experiment_id,
                        parent_run_id=td.parent,
                        data_root=ctx.data_root,
                        device=ctx.device,
                        progress=progress,
                        run_id=run_id,
                        store=reg,
                        retrain=list(td.retrain),
                        retrained=records,
                        skip=td.skip,
                    )
                else:
                    assert search is not None and selection is not None
                    arch = selection["result"]["genotype"]
                    evaluation = evaluate_cell(t, arch, records, td.skip, data_root=ctx.data_root)
                    record = assemble_record(
                        t,
                        SearchOutcome(search, selection, run_id),
                        evaluation,
                        tracker=tracker,
                        experiment_id=ctx.experiment_id,
                        parent_run_id=td.parent,
                        device=ctx.device,
                    )
                    progress(
                        f"[{t.suite}/{t.experiment} {t.budget} seed {t.seed}] genotype {arch} -> "
                        + ", ".join(
                            f"{ds} {m} {v:.2f}"
                            for ds, vals in evaluation.metrics.items()
                            for m, v in vals.items()
                        )
                        + budget_caveat(t.budget)
                    )
                summary.records.append(write_record(reg, record))
        except UnitLocked as exc:
            progress(f"[{t.suite}/{t.experiment} seed {t.seed}] being recorded elsewhere ({exc})")
        except Exception as exc:  # noqa: BLE001  (one trial's failure; the runner raises once)
            failed[t.config_hash] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if td.run_id:
                tracker.end_run(td.run_id, "FAILED")


def _complete(rec: dict[str, Any], td: _Todo) -> bool:
    return all(_retrained(rec, ds) for ds in td.retrain)


def _run_whole(
    todos: list[_Todo],
    runner: Executor,
    ctx: _Context,
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
) -> None:
    """`--rerun`: each trial whole in one job (its own search, selection and retrainings of
    every dataset a claim reads), adding a record."""
    jobs: list[Job] = []
    for td in todos:
        read = [ds for ds, modes in td.plan.needs.retrain.items() if modes]
        siblings = tuple(x.trial.config_hash for x in todos if x.parent == td.parent)
        jobs.append(
            TrialJob(
                td.trial,
                ctx.tracking_uri,
                ctx.experiment_id,
                td.parent,
                ctx.data_root,
                ctx.device,
                ctx.registry,
                ctx.checkpoint_dir,
                True,
                ctx.search_processes,
                ctx.fast,
                siblings,
                read if td.trial.config["evaluator"] == "retrain" else None,
            )
        )
    for o in runner.run(jobs, progress):
        if o.error is None and o.path is not None:
            summary.records.append(o.path)
        elif o.error is not None and not o.error.startswith(LOCKED):
            failed.setdefault(o.job.trial.config_hash, o.error)


def _finish(
    suite_path: str | Path,
    todos: list[_Todo],
    tracker: Any,
    summary: RunSummary,
    failed: dict[str, str],
) -> RunSummary:
    """End each experiment's parent run (FAILED when a trial failed or waits) and raise
    TrialFailed naming the first failure."""
    from nasrepro.tracking import finish_parent

    errors: list[str] = []
    for parent, members in groupby(todos, key=lambda td: td.parent):
        group = list(members)
        mine = [failed[td.trial.config_hash] for td in group if td.trial.config_hash in failed]
        incomplete = mine or any(td.waiting for td in group)
        siblings = tuple(td.trial.config_hash for td in group)
        finish_parent(tracker, parent, siblings, "FAILED" if incomplete else "FINISHED")
        if mine:
            errors.append(f"{suite_path}: experiments.{group[0].trial.experiment}: {mine[0]}")
    for td in todos:  # child runs of trials that did not get to their record
        if td.run_id and td.trial.config_hash in failed:
            tracker.end_run(td.run_id, "FAILED")
        elif td.run_id and td.waiting:  # stopped by a failure here, or another run's lock
            tracker.set_tags(td.run_id, {"waiting": td.waiting})
            tracker.end_run(td.run_id, "FAILED" if failed else "KILLED")
    if errors:
        more = f" (and {len(errors) - 1} more experiment(s))" if len(errors) > 1 else ""
        error = TrialFailed(errors[0] + more)
        error.summary, error.failed = summary, len(failed)
        raise error
    return summary
