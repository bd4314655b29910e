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

Around the stages: `--datasets` and `--plan` choose the trials (dataset_selection.py,
budget.py); sequential seeds run the stages in waves of seeds and stop an experiment once
its verdicts are decided (sequential.py); packed seeds search K seeds of an experiment as one
step before the search stage, leaving each seed's finished search in its search-unit
checkpoint, where the seed's search-unit job resumes after it (packed_trials.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    # (minimum, the experiment's n) with sequential seeds: the record says whether its
    # verdicts stop the experiment here (nasrepro/sequential.py)
    sequential: tuple[int, int] | None = None
    recorded: bool = False  # written to the registry by this run
    lost: bool = False  # its units or record were taken by another live process
    left_out: bool = False  # not run: the sequential rule stopped its experiment before it
    opened_here: bool = False  # its child run was opened by this run (not continued)


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
    retrain: str = "claims",
    pack: int = 1,
    datasets: list[str] | None = None,
    only: list[str] | None = None,
    sequential: int | None = None,
    pack_seeds: int | None = None,
    data_on_device: bool | None = None,
) -> RunSummary:
    """Run every trial of the suite at `budget` that the registry does not hold yet, as
    units of work (see the module docstring).

    Trials are idempotent by what they compute (resolved configuration, seed, fidelity
    version): one already recorded with what the claims read, by this suite or any
    other, is skipped unless `rerun`, which runs it whole again and adds another record.
    `retrain`: "claims" retrains what some claim reads, "all" every evaluated dataset of
    every seed (nasrepro/units.py). `pack`: CIFAR-sized retrainings run that many at once
    on one device (one cluster job), each in its own process.

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
    from nasrepro.tracking import Tracker, close_dead_runs, resolve_uri

    suite = load_suite(suite_path)
    expanded = expand(suite, suite_path, budget, experiments, seeds)
    trials = unique_trials(expanded, progress)
    if only is not None:
        trials = _in_plan_order(trials, only)
    trials, no_data = select_by_datasets(trials, datasets)
    for s in no_data:
        progress(f"{suite.suite}: {s.line()}")
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
    progress(f"{suite.suite}: {len(trials)} trial(s) at budget {budget!r} on {dev}")
    ckpt_root = Path(checkpoint_dir)
    todos, reopened = _open_runs(
        suite, trials, plans, tracker, exp_id, budget, ckpt_root, summary, children=not rerun
    )
    if seq is not None:
        paper_n = Counter(t.experiment for t in expanded)  # the experiments' seeds here
        # (an experiment of no more seeds than the minimum never stops early)
        for td in todos:
            n = paper_n[td.trial.experiment]
            td.sequential = (seq, n) if n > seq else None
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
        data_on_device,
        _packing(pack_seeds, dev),
        # a Ray or Slurm worker runs in a working directory of its own
        absolute=bool(getattr(runner, "own_workdir", False)),
    )
    failed: dict[str, str] = {}  # config hash -> error
    every = list(plans.values())

    def run_wave(wave: list[_Todo]) -> None:
        if rerun:
            _run_whole(wave, runner, ctx, summary, failed, progress)
        else:
            _run_units(wave, every, runner, ctx, summary, failed, progress, pack)
            _assemble(wave, tracker, ctx, summary, failed, progress)

    try:
        if seq is None:
            run_wave(todos)
        else:
            _run_sequential(
                todos, expanded, seq, suite_path, run_wave, ctx, summary, failed, progress
            )
    except KeyboardInterrupt:
        for parent in {td.parent for td in todos}:
            tracker.end_run(parent, "KILLED")
        raise
    for parent in dict.fromkeys(td.parent for td in todos):
        exp = next(td.trial.experiment for td in todos if td.parent == parent)
        if exp in summary.stopped_early:
            tracker.set_tags(parent, {"nasrepro.sequential": summary.stopped_early[exp]})
    return _finish(suite_path, todos, reopened, tracker, ctx, summary, failed, progress)


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
) -> tuple[list[_Todo], set[str]]:
    """A parent run per experiment (an interrupted group's is continued: the set of those);
    with `children`, the child run an interrupted search of the trial's was logging to
    (continued). Other child runs open when a job or the trial's record first needs one
    (`_child_run`)."""
    from nasrepro.tracking import SOURCE, flatten, parent_run_name

    todos: list[_Todo] = []
    reopened: set[str] = set()
    firsts: set[str] = set()
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
                    SOURCE: str(first.suite_path),
                },
            )
            tracker.log_params(parent, flatten(first.config))
            tracker.describe(parent, _parent_description(suite, experiment, budget, first))
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
    return todos, reopened


def _child_run(td: _Todo, tracker: Any, experiment_id: str) -> str:
    """The trial's child run, opened when a job or its record first needs it."""
    from nasrepro.trial import open_trial_run

    if td.run_id is None:
        td.run_id = open_trial_run(td.trial, tracker, experiment_id, td.parent, None)
        td.opened_here = True
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
    data_on_device: bool | None = None  # images held and augmented on the device
    packing: tuple[int, bool] = (1, False)  # seeds per packed search, measured first
    # keys of units another live process held when this run's job reached them
    elsewhere: set[str] = field(default_factory=set)
    # child runs a job of this run logged a computed unit to
    computed_runs: set[str] = field(default_factory=set)
    absolute: bool = False  # jobs get absolute paths (workers elsewhere: Ray, Slurm)

    def paths(self) -> tuple[str | None, str, str]:
        """(data root, registry, checkpoint folder) as a job sees them."""
        if not self.absolute:
            return self.data_root, self.registry, self.checkpoint_dir
        root = None if self.data_root is None else str(Path(self.data_root).resolve())
        return root, str(Path(self.registry).resolve()), str(Path(self.checkpoint_dir).resolve())


def _unit_job(ctx: _Context, td: _Todo, kind: str, key: str, **extra: Any) -> UnitJob:
    root, registry, checkpoints = ctx.paths()
    return UnitJob(
        kind,
        td.trial,
        key,
        ctx.tracking_uri,
        ctx.experiment_id,
        td.parent,
        _child_run(td, ctx.tracker, ctx.experiment_id),
        root,
        ctx.device,
        registry,
        checkpoints,
        search_processes=ctx.search_processes,
        fast=ctx.fast,
        data_on_device=ctx.data_on_device,
        **extra,
    )


def _collect(
    outcomes: list[JobOutcome],
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
    elsewhere: set[str],
    computed: set[str],
) -> None:
    """Unit records to the summary; a failure to `failed`; the key of a unit another live
    process holds to `elsewhere` (the trials waiting on it lost the race: not failures)."""
    for o in outcomes:
        if o.error is None:
            if o.path is not None:
                summary.units.append(o.path)
                if isinstance(o.job, UnitJob) and o.job.run_id:
                    computed.add(o.job.run_id)
        elif o.error.startswith(LOCKED):
            progress(f"{o.job.label} being run by another process; skipped ({o.error})")
            assert isinstance(o.job, UnitJob)
            elsewhere.add(o.job.key)
            if o.job.kind == "search" and o.job.trial.search_key:
                elsewhere.add(o.job.trial.search_key)
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
    """Stages 1 and 2: the searches (and selections), then the retrainings. Packed seeds
    (`ctx.packing`): the first wave's searches of an experiment's seeds run K at a time as
    one packed step before it (`_run_packs`); each seed's job then resumes after them."""
    from nasrepro.estimate import unit_hours
    from nasrepro.store import read_unit

    reg = ctx.registry
    for td in todos:  # (again for a trial carried into a later wave of seeds)
        td.waiting, td.retrain, td.skip = None, {}, {}
    first: dict[str, _Todo] = {}  # search key -> the trial whose job searches it
    second: dict[str, _Todo] = {}  # selection key -> a selection on a recorded search
    scheduled: set[str] = set()
    for td in todos:
        t = td.trial
        if not t.searched or read_unit(reg, "selection", t.selection_key or "") is not None:
            continue  # a published cell or benchmark queries (stage 3), or recorded
        assert t.search_key is not None and t.selection_key is not None
        if t.selection_key in scheduled:
            continue  # another trial's job computes this selection (and its search)
        scheduled.add(t.selection_key)
        if read_unit(reg, "search", t.search_key) is None and t.search_key not in first:
            first[t.search_key] = td
        else:
            second[t.selection_key] = td
    if first and not failed:
        _run_packs(list(first.values()), runner, ctx, progress)

    def job(td: _Todo) -> Job:
        t = td.trial
        assert t.selection_key is not None
        hours = unit_hours("search", t.config, None, "h200")
        hours += unit_hours("selection", t.config, None, "h200")
        return _unit_job(
            ctx, td, "search", t.selection_key, gpus=ctx.search_processes or 1, hours=hours
        )

    for wave in (first, second):
        if wave and not failed:  # after a failure, stop as a plain loop would
            outcomes = runner.run([job(td) for td in wave.values()], progress)
            _collect(outcomes, summary, failed, progress, ctx.elsewhere, ctx.computed_runs)
    jobs = _retrain_jobs(todos, plans, ctx)  # also what each trial retrains, why not the rest
    if jobs and not failed:
        outcomes = runner.run(_packed(jobs, pack), progress)
        _collect(outcomes, summary, failed, progress, ctx.elsewhere, ctx.computed_runs)


def _run_packs(
    todos: list[_Todo], runner: Executor, ctx: _Context, progress: Progress, rerun: bool = False
) -> None:
    """Packed seeds: the searches of each experiment's packable seeds, K at a time, as one
    packed step per K (pack jobs, nasrepro/packed_trials.py). Each seed's finished (or
    interrupted) search is left in its search-unit checkpoint under the child run the pack
    opened, which the seed's own search job continues. A pack's failure only means its
    seeds search alone."""
    from nasrepro.estimate import unit_hours

    k, measured = ctx.packing
    if k <= 1:
        return
    packs: list[Job] = []
    packed: list[_Todo] = []
    for _, members in groupby(todos, key=lambda td: td.trial.group_hash):
        group = list(members)
        jobs = [_trial_job(ctx, td, rerun=rerun) for td in group]
        if not _packable(jobs[0]):
            continue
        for i in range(0, len(group), k):
            chunk = jobs[i : i + k]
            if len(chunk) > 1:
                partners = tuple(j.trial for j in chunk[1:])
                # the time limit of a cluster job: the seeds' searches one after another,
                # an upper bound until a GPU measures what a packed step costs
                hours = len(chunk) * unit_hours("search", chunk[0].trial.config, None, "h200")
                packs.append(replace(chunk[0], pack=partners, pack_measured=measured,
                                     hours=hours))  # fmt: skip
                packed += group[i : i + k]
    if not packs:
        return
    for outcome in runner.run(packs, progress):
        if outcome.error is not None:
            t = outcome.job.trial
            progress(
                f"[{t.suite}/{t.experiment} packed from seed {t.seed}] packed search "
                f"stopped ({outcome.error}); its seeds continue alone"
            )
    for td in packed:  # the child run the pack opened for the seed (in its checkpoint)
        if td.run_id is None:
            payload = _checkpoint_payload(td.trial, Path(ctx.checkpoint_dir))
            if payload is not None and payload.get("mlflow_run_id"):
                td.run_id = str(payload["mlflow_run_id"])


def _trial_job(ctx: _Context, td: _Todo, **extra: Any) -> TrialJob:
    root, registry, checkpoints = ctx.paths()
    return TrialJob(
        td.trial,
        ctx.tracking_uri,
        ctx.experiment_id,
        td.parent,
        root,
        ctx.device,
        registry,
        checkpoints,
        search_processes=ctx.search_processes,
        fast=ctx.fast,
        data_on_device=ctx.data_on_device,
        **extra,
    )


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
        evaluate_cell,
        execute_given_cell,
        metrics_line,
    )

    reg = ctx.registry
    for td in todos:
        t = td.trial
        if t.config_hash in failed or td.recorded:
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
            needs = [k for k in (t.search_key, t.selection_key, *td.retrain.values()) if k]
            if any(k in ctx.elsewhere for k in needs):
                td.lost = True  # another live process computes what it waits for
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
                        + metrics_line(evaluation.metrics, t.budget)
                    )
                if td.sequential is not None:
                    from nasrepro.sequential import record_decision

                    record["sequential"] = record_decision(t, record, reg, *td.sequential)
                summary.records.append(write_record(reg, record))
                td.recorded = True
        except UnitLocked as exc:
            td.lost = True
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
    every dataset a claim reads), adding a record; packed seeds search first."""
    searched = [td for td in todos if td.trial.searched]
    if searched and not failed:
        _run_packs(searched, runner, ctx, progress, rerun=True)
    jobs: list[Job] = []
    for td in todos:
        read = [ds for ds, modes in td.plan.needs.retrain.items() if modes]
        jobs.append(
            _trial_job(
                ctx,
                td,
                rerun=True,
                siblings=tuple(x.trial.config_hash for x in todos if x.parent == td.parent),
                retrain=read if td.trial.config["evaluator"] == "retrain" else None,
                sequential=td.sequential,
            )
        )
    by_hash = {td.trial.config_hash: td for td in todos}
    for o in runner.run(jobs, progress):
        td = by_hash[o.job.trial.config_hash]
        if o.error is None and o.path is not None:
            summary.records.append(o.path)
            td.recorded = True
        elif o.error is None or o.error.startswith(LOCKED):
            td.lost = True  # recorded meanwhile, or being run by another process
        else:
            failed.setdefault(o.job.trial.config_hash, o.error)


def _finish(
    suite_path: str | Path,
    todos: list[_Todo],
    reopened: set[str],
    tracker: Any,
    ctx: _Context,
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
) -> RunSummary:
    """End each experiment's parent run (FAILED when a trial failed or waits; a trial whose
    units another live process took, or that the sequential rule left out, is neither),
    refresh the suite's claims view, and raise TrialFailed naming the first failure. A new
    parent all of whose trials another process took holds nothing: it is deleted."""
    from nasrepro.tracking import finish_parent

    errors: list[str] = []
    for td in todos:
        t = td.trial
        if td.waiting and not (td.lost or td.left_out or td.recorded):
            summary.waiting.append(f"[{t.suite}/{t.experiment} seed {t.seed}] waits: {td.waiting}")
        if td.lost and td.opened_here and td.run_id and td.run_id not in ctx.computed_runs:
            tracker.client.delete_run(td.run_id)  # opened here for a job another process ran
            td.run_id = None
    for parent, members in groupby(todos, key=lambda td: td.parent):
        group = [td for td in members if not td.left_out]
        mine = [failed[td.trial.config_hash] for td in group if td.trial.config_hash in failed]
        if (
            group
            and not mine
            and all(td.lost for td in group)
            and parent not in reopened
            and not any(td.run_id in ctx.computed_runs for td in group)
        ):
            # every trial was taken by a concurrent process (under its own parent): this
            # parent holds nothing, and neither failed nor finished anything
            tracker.client.delete_run(parent)
            summary.run_ids.remove(parent)
            continue
        incomplete = mine or any(td.waiting and not (td.lost or td.recorded) for td in group)
        siblings = tuple(td.trial.config_hash for td in group)
        finish_parent(tracker, parent, siblings, "FAILED" if incomplete else "FINISHED")
        if mine:
            errors.append(f"{suite_path}: experiments.{group[0].trial.experiment}: {mine[0]}")
    for td in todos:  # child runs of trials that did not get to their record
        if td.run_id and td.trial.config_hash in failed:
            tracker.end_run(td.run_id, "FAILED")
        elif td.run_id and not td.recorded and (td.waiting or td.lost or td.left_out):
            why = td.waiting or "taken by another process, or left out by the sequential rule"
            tracker.set_tags(td.run_id, {"waiting": why})
            tracker.end_run(td.run_id, "FAILED" if failed and not td.lost else "KILLED")
    _publish_view(tracker, suite_path, ctx.registry, summary.experiment_id, summary, progress)
    if errors:
        more = f" (and {len(errors) - 1} more experiment(s))" if len(errors) > 1 else ""
        error = TrialFailed(errors[0] + more)
        error.summary, error.failed = summary, len(failed)
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


def _run_sequential(
    todos: list[_Todo],
    expanded: list[Trial],
    min_seeds: int,
    suite_path: str | Path,
    run_wave: Callable[[list[_Todo]], None],
    ctx: _Context,
    summary: RunSummary,
    failed: dict[str, str],
    progress: Progress,
) -> None:
    """Waves of seeds: each experiment runs its seeds in order, the minimum first, then one
    at a time (a pack's K at a time where its seeds are packed: they cost about one seed)
    while `sequential.decide` says its verdicts need more (nasrepro/sequential.py); each
    wave runs the stages for its seeds (`run_wave`). A trial still waiting (best_by_valid
    waits for its experiment's searches) joins the next wave. A failure ends the waves; a
    trial another process took ends its experiment's. Seeds never run are `left_out`."""
    from nasrepro.sequential import decide, experiment_verdicts, registry_verdicts

    pending: dict[str, list[_Todo]] = {}
    for td in todos:
        pending.setdefault(td.trial.experiment, []).append(td)
    for exp in pending:
        pending[exp].sort(key=lambda td: td.trial.seed)
    seeds_of = {e: [t.config_hash for t in expanded if t.experiment == e] for e in pending}
    carried: list[_Todo] = []
    while pending:
        done = current_trials(scan_registry(ctx.registry).records)
        analysis = None  # the report's verdicts, computed once a wave needs them
        wave: list[_Todo] = []
        for exp in list(pending):
            n = len(seeds_of[exp])
            recorded = sum(k in done for k in seeds_of[exp])
            floor = min(min_seeds, n)
            verdicts: tuple[dict[str, str], dict[str, str]] = ({}, {})
            if floor <= recorded < n:
                analysis = analysis or registry_verdicts(suite_path, ctx.registry)
                verdicts = experiment_verdicts(analysis, exp)
            decision = decide(recorded, n, min_seeds, *verdicts)
            if decision.stop:
                if decision.early:
                    summary.stopped_early[exp] = decision.why
                    left = ", ".join(str(td.trial.seed) for td in pending[exp])
                    progress(
                        f"{exp}: {decision.why}; seed(s) {left} not run (--all-seeds runs them)"
                    )
                for td in pending.pop(exp):
                    td.left_out = True
                continue
            take = max(floor - recorded, 1)
            if ctx.packing[0] > 1 and _packable(_trial_job(ctx, pending[exp][0])):
                take = max(take, ctx.packing[0])  # a pack's seeds cost about one seed's time
            wave += pending[exp][:take]
            pending[exp] = pending[exp][take:]
            if not pending[exp]:
                del pending[exp]
        if not wave:
            break
        run_wave(carried + wave)
        if failed:  # a failure: the run reports it; no further waves
            for rest in (td for tds in pending.values() for td in tds):
                rest.waiting = "not run: the waves of seeds stopped at a failure"
            break
        carried = [td for td in carried + wave if td.waiting and not (td.recorded or td.lost)]
        for td in wave:
            if td.lost and td.trial.experiment in pending:  # another process runs its seeds
                for rest in pending.pop(td.trial.experiment):
                    rest.waiting = f"seed {td.trial.seed} of its experiment is run elsewhere"
