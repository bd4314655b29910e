"""Execute one trial: data, supernet, search, selection, evaluation, tracking, record.

A trial is assembled from units of work (docs/plan.md, "Units of work"): its search, its
selection and one retraining per evaluated dataset, each with its own record in the shared
store (nasrepro/store.py) when a store is given, so a unit another experiment or suite
already computed is read, not computed again. `execute_trial` runs them in order in this
process; the runner (nasrepro/runner.py) runs them as separate jobs and assembles the trial
records with `assemble_record`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasrepro import catalog
from nasrepro.checkpoint import (
    CheckpointError,
    forget_saves,
    load_checkpoint,
    on_save,
    remove_checkpoints,
    save_checkpoint,
    unit_checkpoint,
)
from nasrepro.cost import (
    TrialClock,
    assembled_cost,
    clock_path,
    gpu_count,
    search_cost_gpu_days,
    trial_cost,
    unit_cost,
)
from nasrepro.distributed import Dist, check_replicas, primary_device
from nasrepro.evaluate.trajectory import METRIC as TRAJECTORY_METRIC
from nasrepro.evaluate.trajectory import trajectory_oracle
from nasrepro.jobs import (
    FIDELITY_VERSION,
    Trial,
    retrain_identity,
    search_identity,
    selection_identity,
    unit_key,
)
from nasrepro.methods.base import search_hooks
from nasrepro.progress import emit, trial_scope
from nasrepro.provenance import device_name, provenance, set_tf32
from nasrepro.registry import SCHEMA
from nasrepro.search.engine import EpochLog, SearchContext, seed_everything
from nasrepro.search.stages import run_stages
from nasrepro.spaces import build_space
from nasrepro.tracking import (
    ALPHA_TABLE,
    SOURCE,
    NullTracker,
    Tracker,
    alpha_summary,
    alpha_table,
    child_run_name,
    fail_run,
    flatten,
    log_alpha_figure,
    stage_sink,
)

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    emit(line)  # a timestamped line of the `nasrepro` logger (nasrepro/progress.py)


def build_evaluator(config: dict[str, Any]) -> Any:
    return catalog.get("evaluator", config["evaluator"])(**config["evaluator_args"])


def finite_or_none(obj: Any) -> Any:
    """NaN/inf → None, recursively: records are strict JSON, and an epoch without α steps
    (fix-α, PC-DARTS warm-up) has no validation numbers rather than a NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def _label(trial: Trial) -> str:
    return f"[{trial.suite}/{trial.experiment} {trial.budget} seed {trial.seed}]"


def _computed_for(trial: Trial) -> dict[str, Any]:
    """Which trial a unit was computed for (labels only: not part of its identity)."""
    return {
        "suite": trial.suite,
        "experiment": trial.experiment,
        "budget": trial.budget,
        "config_hash": trial.config_hash,
    }


def open_trial_run(
    trial: Trial, tracker: Tracker, experiment_id: str, parent_run_id: str, name: str | None
) -> str:
    """A new child run for `trial` with its tags and parameters."""
    run_id = tracker.start_run(
        experiment_id,
        name or child_run_name(trial.experiment, trial.budget, trial.seed),
        search_tags(trial),
        parent_run_id,
    )
    tracker.log_params(run_id, flatten({**trial.config, "seed": trial.seed}))
    return run_id


# ------------------------------------------------------------------------ search unit


@dataclass
class SearchOutcome:
    """A trial's search and selection units: their records (written here, or read from
    the store when another trial computed them) and the trial's MLflow child run."""

    search: dict[str, Any]
    selection: dict[str, Any] | None
    run_id: str
    computed: list[str] = field(default_factory=list)  # kinds computed in this process


def _read_units(store: str | Path | None, trial: Trial) -> tuple[dict | None, dict | None]:
    if store is None:
        return None, None
    from nasrepro.store import read_unit

    assert trial.search_key is not None and trial.selection_key is not None
    return read_unit(store, "search", trial.search_key), read_unit(
        store, "selection", trial.selection_key
    )


def run_search_unit(
    trial: Trial,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    data_root: str | None,
    device: str,
    progress: Progress = _stderr,
    on_epoch: Callable[[EpochLog], None] | None = None,
    run_name: str | None = None,
    run_id: str | None = None,
    checkpoint_dir: str | Path | None = None,
    evaluate: bool = True,
    ddp: Dist | None = None,
    fast: bool = False,
    store: str | Path | None = None,
    rerun: bool = False,
    data_on_device: bool | None = None,
) -> SearchOutcome | None:
    """The trial's search unit, then its selection unit, each read from `store` when
    recorded there (unless `rerun`) and otherwise computed and recorded.

    A recorded search whose final state the store kept is not searched again for another
    selector (DARTS-PT on a DARTS supernet): the state is restored and only the selection
    runs. `evaluate=False` (tuning) stops after the search: nothing is recorded and the
    outcome has no selection. `ddp`: this process's rank in a data-parallel search
    (trial_worker.py); rank 0 tracks, checkpoints, selects and records, the other ranks
    return None after the search. `fast`: the fp32 speed switches that keep the math and
    win when timed here (`bench.fast_switches`), recorded in the search's provenance.
    `data_on_device`: search images held and augmented on the device
    (datasets/device_data.py); None: on a GPU. A finished packed search of this seed
    (packed_trials.py) left in the unit's checkpoint is resumed after, as any other.
    """
    from nasrepro.datasets import trial_search_data
    from nasrepro.store import load_state, save_state, unit_record, write_unit

    cfg, settings = trial.config, trial.search
    label = _label(trial)
    use_store = store if (evaluate and not rerun) else None
    search_rec, selection_rec = _read_units(use_store, trial)
    if search_rec is not None and selection_rec is not None:
        if run_id is None:
            run_id = open_trial_run(trial, tracker, experiment_id, parent_run_id, run_name)
        tracker.set_tags(run_id, {"units.reused": "search,selection"})
        progress(f"{label} search and selection already recorded; reused")
        return SearchOutcome(search_rec, selection_rec, run_id)
    kept = load_state(store, trial.search_key) if search_rec is not None and store else None
    start = time.perf_counter()
    clock = TrialClock(None)  # this process's time; earlier processes' once resumed
    created = datetime.now(UTC).isoformat(timespec="seconds")
    seed_everything(trial.seed, settings.deterministic)
    set_tf32(settings.tf32)
    search_device = torch.device(primary_device(device))
    on_device = device_data_wanted(data_on_device, search_device)
    data = trial_search_data(
        cfg,
        root=data_root,
        seed=trial.seed,
        rank=ddp.rank if ddp else 0,
        world=ddp.world if ddp else 1,
        on_device=search_device if on_device else None,
    )
    if ddp is not None and not ddp.main:
        tracker = NullTracker()  # rank 0 alone writes to MLflow
    space = build_space(cfg["space"])
    hooks = search_hooks(cfg["methods"], cfg["method_args"])
    space_args = dict(cfg["space_args"])
    for hook in hooks:
        space_args = hook.configure_space(space_args)
    speed: dict[str, Any] = {"fused": False, "cuda_graph": False, "channels_last": False}
    if fast and kept is None:  # the switches that win here, on this supernet and batch
        from nasrepro.bench import fast_switches

        speed = fast_switches(
            cfg["space"], space_args, settings.order, settings.batch_size,
            data.image_size, data.num_classes, data.in_channels, search_device,
            graphable=not hooks
            and not settings.stages
            and settings.order == 1
            and not settings.clip_includes_alpha  # the graphed step clips the weights alone
            and settings.arch_grad_clip is None
            and (ddp is None or ddp.world == 1),
        )  # fmt: skip
        if ddp is not None:  # every rank runs rank 0's choice: replicas must stay bit-equal
            speed = ddp.gather(speed)[0]
    if speed["fused"]:
        space_args["fused"] = True
    supernet = space.build_supernet(data.num_classes, in_channels=data.in_channels, **space_args)
    evaluator = build_evaluator(cfg)
    ctx = SearchContext(
        supernet=supernet,
        settings=settings,
        hooks=hooks,
        device=search_device,  # `cuda:0,1`: search on the first GPU
        criterion=nn.CrossEntropyLoss(),
        cuda_graph=speed["cuda_graph"],
        channels_last=speed["channels_last"],
    )
    ckpt = sel_ckpt = None
    if checkpoint_dir is not None:
        ckpt = unit_checkpoint(checkpoint_dir, "search", trial.search_key or trial.config_hash)
        sel_ckpt = unit_checkpoint(
            checkpoint_dir, "selection", trial.selection_key or trial.config_hash
        )
    ckpt_key = trial.search_key or trial.config_hash
    ctx.dist = ddp
    ctx.valid_batches = data.loader.arch_pass
    resume = None
    if kept is not None:
        resume = {"engine": kept["engine"]}
    elif ckpt is not None and ckpt.exists():
        try:
            resume = load_checkpoint(ckpt, ckpt_key)
        except CheckpointError as exc:
            progress(f"{label} {exc}; starting the trial over")
            if ddp is None or ddp.main:
                remove_checkpoints(ckpt)
    selected = None
    if sel_ckpt is not None and sel_ckpt.exists() and resume is not None:
        with contextlib.suppress(CheckpointError):
            selected = load_checkpoint(sel_ckpt, trial.selection_key or "").get("selected")
    if kept is not None:
        progress(f"{label} resuming after the search (recorded: its final state restored)")
    if resume is not None and resume.get("mlflow_run_id"):
        run_id = resume["mlflow_run_id"]  # continue the interrupted run, not a new one
        tracker.reopen(run_id)
        if selected is not None:
            where = "the selection"
        elif resume["engine"].get("finished"):
            where = "the search"
        else:
            where = f"epoch {resume['engine']['epoch']}"
        progress(f"{label} resuming after {where} from {ckpt}")
    else:
        if ckpt is not None and (ddp is None or ddp.main) and resume is None:
            remove_checkpoints(ckpt)  # stage files of an older, abandoned attempt
            assert sel_ckpt is not None
            remove_checkpoints(sel_ckpt)
        if run_id is None:
            run_id = open_trial_run(trial, tracker, experiment_id, parent_run_id, run_name)
    main = ddp is None or ddp.main
    if ckpt is not None and main:
        # A resumed trial adds to the time its earlier processes spent; a fresh one (its
        # stage files were just removed) starts from nothing.
        clock.attach(clock_path(ckpt), continue_earlier=resume is not None)
        on_save(ckpt, clock.flush)
        assert sel_ckpt is not None
        on_save(sel_ckpt, clock.flush)  # the selection's stage checkpoints (PT tuning)
    payload: dict[str, Any] = {
        "config_hash": ckpt_key,
        "mlflow_run_id": run_id,
        "parent_run_id": parent_run_id,
        **({} if resume is None else {k: resume[k] for k in ("engine", "packed") if k in resume}),
    }

    def save(state: dict[str, Any]) -> None:
        if ddp is not None:  # each rank's RNGs; rank 0 writes
            state = {**state, "rng_by_rank": ddp.gather(state["rng"])}
        if ckpt is not None and (ddp is None or ddp.main):
            payload["engine"] = state
            save_checkpoint(ckpt, payload)
        if ddp is not None:
            ddp.barrier()

    if ddp is not None and resume is not None and "rng_by_rank" in resume["engine"]:
        resume["engine"]["rng"] = resume["engine"]["rng_by_rank"][ddp.rank]

    scope = contextlib.ExitStack()  # bars labelled, stage decisions to this run as they happen
    scope.enter_context(trial_scope(label, stage_sink(tracker, run_id)))
    computed: list[str] = []
    try:
        tracker.log_params(run_id, flatten({"data": {"split": data.split}}))
        on_epoch_end = epoch_logger(
            trial, space, supernet, evaluator if evaluate else None, tracker, run_id, progress,
            label, on_epoch, clock,
        )  # fmt: skip

        def build_stage(args: dict[str, Any]) -> Any:  # a progressive search's supernets
            return space.build_supernet(
                data.num_classes, in_channels=data.in_channels, **{**space_args, **args}
            )

        history = run_stages(
            ctx,
            build_stage,
            data.loader,
            data.steps_per_epoch,
            on_epoch_end,
            save,
            None if resume is None else resume["engine"],
        )
        supernet = ctx.supernet  # the last stage's
        if ddp is not None:
            check_replicas(ddp, supernet)
            if not ddp.main:
                return None
        history_json = finite_or_none([asdict(h) for h in history])
        if not evaluate:
            tracker.log_json(run_id, history_json, "search_history.json")
            tracker.end_run(run_id)
            search_only = {"result": {"history": history_json}, "key": None}
            return SearchOutcome(search_only, None, run_id)
        if search_rec is None:
            result = {
                "epochs": settings.total_epochs(),
                "history": history_json,
                "stopped_by": ctx.state.get("stopped_by"),
                "stopped_at_epoch": ctx.state.get("stopped_at_epoch"),
                # the score a best-of-N selection reads when the method sets one
                # (RobustDARTS' infer() accuracy: search/infer.py)
                "valid_acc": finite_or_none(ctx.state.get("search_valid_acc")),
                "search_data": data.split,
            }
            search_rec = unit_record(
                "search",
                search_identity(cfg),
                trial.seed,
                result,
                cost=unit_cost(
                    clock,
                    "search",
                    device_name(device),
                    (ddp.world if ddp is not None else 1) if search_device.type == "cuda" else 0,
                ),
                provenance={
                    **provenance(
                        device, settings.deterministic, time.perf_counter() - start, created
                    ),
                    "speed_switches": speed,
                    "search_processes": ddp.world if ddp is not None else 1,
                    # searched with other seeds in one packed step (packed_trials.py):
                    # which seeds, the timings that chose it; its seconds are its share
                    "packed_search": payload.get("packed"),
                },
                mlflow={"tracking_uri": tracker.uri, "run_id": run_id},
                computed_for=_computed_for(trial),
            )
            computed.append("search")
            if store is not None:
                save_state(store, search_rec["key"], {"config_hash": search_rec["key"],
                                                      "engine": payload["engine"]})  # fmt: skip
                search_rec["_path"] = str(write_unit(store, search_rec))
        tracker.log_json(run_id, history_json, "search_history.json")
        if history and history[-1].alpha:
            tracker.log_text(run_id, alpha_table(history_json, space.edge_op_names), ALPHA_TABLE)
            log_alpha_figure(
                tracker, run_id, history_json, {**search_tags(trial), "space": cfg["space"]}
            )
        clock.enter("select")
        select_start = time.perf_counter()
        if selected is not None:  # selection finished before the interruption
            arch, selection = selected["genotype"], selected["selection"]
        else:
            ctx.checkpoint = sel_ckpt  # PT/PT-Mag tuning checkpoints beside it
            selector = catalog.get("selector", cfg["selector"])
            genotype = selector(
                space, supernet, ctx=ctx, data=data, history=history, **cfg["selector_args"]
            )
            arch = space.format_genotype(genotype)
            selection = finite_or_none(ctx.state.get("selection"))
            if sel_ckpt is not None:
                save_checkpoint(
                    sel_ckpt,
                    {
                        "config_hash": trial.selection_key or "",
                        "selected": {"genotype": arch, "selection": selection},
                    },
                )
        selection_rec = unit_record(
            "selection",
            selection_identity(cfg),
            trial.seed,
            {"genotype": arch, "selection": selection},
            cost=unit_cost(
                clock,
                "select",
                device_name(device),
                1 if search_device.type == "cuda" else 0,
            ),
            provenance=provenance(
                device, settings.deterministic, time.perf_counter() - select_start, created
            ),
            mlflow={"tracking_uri": tracker.uri, "run_id": run_id},
            computed_for=_computed_for(trial),
        )
        computed.append("selection")
        if store is not None:
            selection_rec["_path"] = str(write_unit(store, selection_rec))
        tracker.set_tags(run_id, {"genotype": arch})
    except BaseException as exc:
        if ckpt is not None and sel_ckpt is not None:
            if main:
                clock.flush()  # Ctrl-C, SIGTERM, an error: this process's time is kept
            forget_saves(ckpt)
            forget_saves(sel_ckpt)
        fail_run(tracker, run_id, exc)
        raise
    finally:
        scope.close()
    if ckpt is not None and sel_ckpt is not None:
        forget_saves(ckpt)
        forget_saves(sel_ckpt)
        if store is not None:  # recorded in the store: the checkpoints are done
            remove_checkpoints(ckpt)
            remove_checkpoints(sel_ckpt)
    return SearchOutcome(search_rec, selection_rec, run_id, computed)


# ---------------------------------------------------------------------- retrain unit


def retrain_key(trial: Trial, dataset: str, genotype: str) -> str:
    return unit_key("retrain", retrain_identity(trial.config, dataset, genotype), trial.seed)


def run_retrain_unit(
    trial: Trial,
    dataset: str,
    genotype: str,
    *,
    tracker: Tracker,
    run_id: str,
    data_root: str | None,
    device: str,
    progress: Progress = _stderr,
    checkpoint_dir: str | Path | None = None,
    store: str | Path | None = None,
    rerun: bool = False,
    fast: bool = False,
    data_on_device: bool | None = None,
) -> dict[str, Any]:
    """One retraining of `genotype` on `dataset` with the trial's recipe and seed: read from
    `store` when recorded there (unless `rerun`), else trained (resuming from its
    checkpoint after a kill) and recorded. Metrics go to the trial's run `run_id`.
    `data_on_device`: images held and augmented on the device (None: on a GPU)."""
    from nasrepro.store import read_unit, unit_record, write_unit

    cfg = trial.config
    identity = retrain_identity(cfg, dataset, genotype)
    key = unit_key("retrain", identity, trial.seed)
    if store is not None and not rerun:
        rec = read_unit(store, "retrain", key)
        if rec is not None:
            return rec
    label = f"{_label(trial)} retrain {dataset}"
    start = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    search = cfg.get("search") or {}
    deterministic = bool(search.get("deterministic", True))
    seed_everything(trial.seed, deterministic)
    set_tf32(bool(search.get("tf32", False)))
    evaluator = build_evaluator(cfg)
    base = unit_checkpoint(checkpoint_dir, "retrain", key) if checkpoint_dir is not None else None
    clock = TrialClock(None)
    clock.enter("eval")
    if base is not None:
        clock.attach(clock_path(base), continue_earlier=clock_path(base).exists())
        on_save(base, clock.flush)
    try:
        result = evaluator.score(
            genotype,
            [dataset],
            ["test_acc", "valid_acc"],
            space=cfg["space"],
            data_root=data_root,
            device=device,
            seed=trial.seed,
            checkpoint=base,
            tracking={"uri": tracker.uri, "run_id": run_id},
            log=lambda metrics, step: tracker.log_metrics(run_id, metrics, step),
            progress=lambda line: progress(f"{_label(trial)} {line}"),
            channels_last=fast,
            data_on_device=device_data_wanted(data_on_device, torch.device(primary_device(device))),
        )
    except BaseException:
        if base is not None:
            clock.flush()
            forget_saves(base)
        raise
    record = unit_record(
        "retrain",
        identity,
        trial.seed,
        {"metrics": result.metrics, "source": result.source},
        cost=unit_cost(clock, "eval", device_name(device), gpu_count(device)),
        provenance=provenance(device, deterministic, time.perf_counter() - start, created),
        mlflow={"tracking_uri": tracker.uri, "run_id": run_id},
        computed_for=_computed_for(trial),
    )
    record = finite_or_none(record)
    if store is not None:
        record["_path"] = str(write_unit(store, record))
    if base is not None:
        forget_saves(base)
        remove_checkpoints(base)
    values = ", ".join(f"{m} {v:.2f}" for m, v in result.metrics.get(dataset, {}).items())
    progress(f"{label}: {values}")
    return record


# --------------------------------------------------------------------- the trial record


@dataclass
class Evaluation:
    """What the evaluator gives the trial record: metrics per dataset, the cell's index
    (NB201 lookups; -1 otherwise), the evaluator's source, the units behind it and the cost
    of the evaluations."""

    metrics: dict[str, dict[str, float]]
    arch_index: int
    source: dict[str, Any]
    retrain_units: dict[str, str] = field(default_factory=dict)
    not_retrained: dict[str, str] = field(default_factory=dict)
    costs: list[dict[str, Any]] = field(default_factory=list)


def evaluate_cell(
    trial: Trial,
    arch: str,
    retrained: dict[str, dict[str, Any]],
    not_retrained: dict[str, str],
    *,
    data_root: str | None = None,
    device: str = "cpu",
) -> Evaluation:
    """The trial's evaluation: for the `retrain` evaluator, the retraining unit records
    given per dataset and, for each dataset not retrained (with the reason), the cell's
    parameters and FLOPs only; for a lookup evaluator (NB201 tables, complexity), the
    lookup itself, timed here."""
    cfg = trial.config
    if cfg["evaluator"] != "retrain":
        clock = TrialClock(None)
        clock.enter("eval")
        result = build_evaluator(cfg).score(
            arch,
            cfg["eval_datasets"],
            ["test_acc", "valid_acc"],
            space=cfg["space"],
            data_root=data_root,
            device=device,
            seed=trial.seed,
        )
        cost = unit_cost(clock, "eval", device_name(device), 0)
        return Evaluation(result.metrics, result.arch_index, result.source, costs=[cost])
    metrics: dict[str, dict[str, float]] = {}
    runs: dict[str, Any] = {}
    evaluator = build_evaluator(cfg)
    for ds in cfg["eval_datasets"]:
        if ds in retrained:
            rec = retrained[ds]
            metrics[ds] = rec["result"]["metrics"][ds]
            runs[ds] = rec["result"]["source"]["runs"][ds]
        elif ds in not_retrained:
            metrics[ds] = evaluator.complexity(ds, arch, cfg["space"])
    sources = [r["result"]["source"] for r in retrained.values()]
    produced = {m for vals in metrics.values() for m in vals}
    source = {
        "backend": "retrain",
        "genotype": arch,
        "space": cfg["space"],
        "runs": runs,
        "not_covered": [ds for ds in cfg["eval_datasets"] if ds not in evaluator.recipes],
        "not_retrained": dict(not_retrained),
        "unavailable": sorted(m for m in ("test_acc", "valid_acc") if m not in produced),
        "smoke": any(s.get("smoke") for s in sources),
        "reduced": any(s.get("reduced") for s in sources),
        "fixture": bool(evaluator.run["fixture"]),
    }
    return Evaluation(
        metrics,
        -1,
        source,
        {ds: r["key"] for ds, r in retrained.items()},
        dict(not_retrained),
        [r["cost"] for r in retrained.values()],
    )

def device_data_wanted(flag: bool | None, device: torch.device) -> bool:
    """Images on the device: as asked, else on a GPU (where the CPU loader sets the pace)."""
    return device.type == "cuda" if flag is None else flag


def search_tags(trial: Trial) -> dict[str, str]:
    """The MLflow tags of a searched trial's child run."""
    cfg = trial.config
    return {
        "suite": trial.suite,
        "experiment": trial.experiment,
        "budget": trial.budget,
        "seed": str(trial.seed),
        "claim_ids": ",".join(trial.claim_ids),
        "method": "+".join(cfg.get("methods", ["published cell"])) or "darts",
        "space": cfg["space"],
        "dataset": cfg["dataset"],
        "config_hash": trial.config_hash,
        SOURCE: trial.suite_path,
    }


def epoch_logger(
    trial: Trial,
    space: Any,
    supernet: nn.Module,
    evaluator: Any,
    tracker: Tracker,
    run_id: str,
    progress: Progress,
    label: str,
    on_epoch: Callable[[EpochLog], None] | None = None,
    clock: TrialClock | None = None,
) -> Callable[[EpochLog], None]:
    """What happens after each search epoch of a trial (alone or packed): the NB201 lookup
    of the current argmax cell (with an NB201 evaluator; `evaluator` None skips it), the
    epoch's metrics to its MLflow run, a progress line, then `on_epoch`. With the trial's
    `clock`, the lookup's time is kept out of the search's seconds: a search cost holds no
    benchmark queries (EX/SS-DARTS §3's aligned timing protocol)."""
    cfg = trial.config
    epochs = trial.search.total_epochs()
    lookup_each_epoch = (
        evaluator is not None and cfg["space"] == "nb201" and cfg["evaluator"].startswith("nb201")
    )

    def on_epoch_end(log: EpochLog) -> None:
        if lookup_each_epoch:
            # The NB201 score of the current argmax cell makes collapse visible per epoch.
            if clock is not None:
                clock.enter("eval")
            geno = space.derive_argmax(supernet)
            res = evaluator.score(space.format_genotype(geno), cfg["eval_datasets"], ["test_acc"])
            if clock is not None:
                clock.enter("search")
            for ds, vals in res.metrics.items():
                log.diagnostics[f"lookup.{ds}.test_acc"] = vals["test_acc"]
        metrics = {
            "train_loss": log.train_loss,
            "train_acc": log.train_acc,
            "valid_loss": log.valid_loss,
            "valid_acc": log.valid_acc,
            "lr": log.lr,
            "epoch_seconds": log.seconds,
            **log.diagnostics,
            **alpha_summary(log.alpha, space.edge_op_names),
        }
        tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if v == v}, log.epoch)
        progress(
            f"{label} epoch {log.epoch + 1}/{epochs} "
            f"train {log.train_loss:.3f}/{log.train_acc:.1f}% "
            f"valid {log.valid_loss:.3f}/{log.valid_acc:.1f}% ({log.seconds:.1f}s)"
        )
        if on_epoch is not None:
            on_epoch(log)

    return on_epoch_end


def record_identity(trial: Trial) -> dict[str, Any]:
    """The fields every record starts with: who asked for the trial (labels) and what it
    computed (configuration, hashes, fidelity version: its identity)."""
    return {
        "schema": SCHEMA,
        "suite": trial.suite,
        "suite_version": trial.suite_version,
        "suite_hash": trial.suite_hash,
        "experiment": trial.experiment,
        "claim_ids": list(trial.claim_ids),
        "budget": trial.budget,
        "budget_description": trial.budget_description,
        "seed": trial.seed,
        "config_hash": trial.config_hash,
        "group_hash": trial.group_hash,
        "fidelity_version": FIDELITY_VERSION,
        "config": trial.config,
    }


def assemble_record(
    trial: Trial,
    outcome: SearchOutcome,
    evaluation: Evaluation,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    device: str,
) -> dict[str, Any]:
    """The searched trial's registry record from its units (docs/plan.md, "How a claim's
    value is assembled"): search data, history and search cost from the search unit, the
    genotype from the selection unit, metrics and evaluation cost from the retraining units
    (or lookups), the trial's own identity and labels. Logs the final metrics to the
    trial's run and ends it."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    search, selection = outcome.search, outcome.selection
    assert selection is not None
    arch = selection["result"]["genotype"]
    cost = assembled_cost([search["cost"], selection["cost"]], evaluation.costs)
    final = {
        f"final.{ds}.{m}": v for ds, vals in evaluation.metrics.items() for m, v in vals.items()
    }
    run_id = outcome.run_id
    history = search["result"]["history"]
    # Table 3's "optimal" row: the best test accuracy over the per-epoch cells, an oracle
    # recorded beside the selected cell's metrics (evaluate/trajectory.py), never a selection
    oracle = (
        trajectory_oracle(trial.config, history, build_evaluator(trial.config))
        if trial.config.get("genotype") is None
        else {}
    )
    metrics = {
        ds: {**vals, **({TRAJECTORY_METRIC: oracle[ds]["test_acc"]} if ds in oracle else {})}
        for ds, vals in evaluation.metrics.items()
    }
    final.update(
        {f"final.{ds}.{TRAJECTORY_METRIC}": o["test_acc"] for ds, o in oracle.items()}
    )
    tracker.log_metrics(run_id, final, trial.search.epochs)
    tracker.set_tags(run_id, {"genotype": arch, "evaluator": trial.config["evaluator"]})
    tracker.log_json(
        run_id,
        {"genotype": arch, "arch_index": evaluation.arch_index, "source": evaluation.source},
        "genotype.json",
    )
    search_prov = search.get("provenance") or {}
    record = {
        **record_identity(trial),
        "space": trial.config["space"],
        "search_dataset": trial.config["dataset"],
        "search_data": search["result"]["search_data"],
        "genotype": arch,
        "arch_index": evaluation.arch_index,
        # per evaluated dataset, plus the measured search cost (None on a CPU)
        "metrics": {**metrics, "search_cost_gpu_days": search_cost_gpu_days(cost)},
        "cost": cost,
        "evaluation": {
            "evaluator": trial.config["evaluator"],
            "source": evaluation.source,
            "fixture": bool(evaluation.source.get("fixture", False)),
        },
        "search": {
            "epochs": search["result"]["epochs"],
            "history": history,
            "stopped_by": search["result"]["stopped_by"],
            "stopped_at_epoch": search["result"]["stopped_at_epoch"],
            "selection": selection["result"]["selection"],
            "valid_acc": search["result"].get("valid_acc"),
            **({"trajectory_oracle": oracle} if oracle else {}),
        },
        "units": {
            "search": search["key"],
            "selection": selection["key"],
            "retrain": evaluation.retrain_units,
            "not_retrained": evaluation.not_retrained,
        },
        "mlflow": {
            "tracking_uri": tracker.uri,
            "experiment_id": experiment_id,
            "run_id": run_id,
            "parent_run_id": parent_run_id,
        },
        "provenance": {
            **provenance(device, trial.search.deterministic, cost["total_seconds"], created),
            "speed_switches": search_prov.get("speed_switches"),
            "search_processes": search_prov.get("search_processes", 1),
            "search_host": search_prov.get("host"),
            "packed_search": search_prov.get("packed_search"),
        },
    }
    tracker.end_run(run_id)
    return finite_or_none(record)


# ----------------------------------------------------------------- one trial, in order


def execute_trial(
    trial: Trial,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    data_root: str | None,
    device: str,
    progress: Progress = _stderr,
    on_epoch: Callable[[EpochLog], None] | None = None,
    run_name: str | None = None,
    checkpoint_dir: str | Path | None = None,
    evaluate: bool = True,
    ddp: Dist | None = None,
    eval_device: str | None = None,
    fast: bool = False,
    store: str | Path | None = None,
    rerun: bool = False,
    retrain: list[str] | None = None,
    data_on_device: bool | None = None,
) -> dict[str, Any] | None:
    """Run `trial` under a child MLflow run and return its registry record (not yet
    written): its search and selection units, one retraining unit per dataset in `retrain`
    (default: every evaluated dataset; the others get parameters and FLOPs only), or the
    lookups, then the record assembled from them. With `store` (the registry directory)
    each unit recorded there is read instead of computed, and each one computed is recorded.

    `on_epoch` sees every epoch's log after it is tracked (Optuna reports and prunes there).
    `evaluate=False` (tuning) stops after the search: no selection, no lookups, no test
    numbers, and the returned dict holds only the MLflow ids and the search history.
    `ddp`: this process's rank in a data-parallel search (trial_worker.py). Rank 0 tracks,
    checkpoints, selects and evaluates; the other ranks return None after the search.
    `eval_device`: where the evaluator runs, if not on `device` (a data-parallel retraining
    over the GPUs of a data-parallel search).
    `fast`: the fp32 speed switches that keep the math (benchmarks/README.md) that win when
    timed on this trial's supernet, batch and device (`bench.fast_switches`): NB201's fused
    mixed ops, channels_last on a CPU, CUDA graphs for plain first-order searches on a GPU;
    recorded (with the timings) in the record's provenance, not in its config.
    `data_on_device`: search and retraining images held and augmented on the device
    (datasets/device_data.py); None: on a GPU. The record's `search_data.loader` says so.
    """
    if trial.benchmark_query:  # seconds of queries: no units, nothing to share
        return _execute_query(
            trial,
            tracker=tracker,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            device=device,
            progress=progress,
            run_name=run_name,
        )
    if trial.given_cell:
        return execute_given_cell(
            trial,
            tracker=tracker,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            data_root=data_root,
            device=eval_device or device,
            progress=progress,
            run_name=run_name,
            checkpoint_dir=checkpoint_dir,
            store=store,
            rerun=rerun,
            retrain=retrain,
            data_on_device=data_on_device,
        )
    outcome = run_search_unit(
        trial,
        tracker=tracker,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        data_root=data_root,
        device=device,
        progress=progress,
        on_epoch=on_epoch,
        run_name=run_name,
        checkpoint_dir=checkpoint_dir,
        evaluate=evaluate,
        ddp=ddp,
        fast=fast,
        store=store,
        rerun=rerun,
        data_on_device=data_on_device,
    )
    if outcome is None:
        return None  # a rank other than 0 of a data-parallel search
    if not evaluate:
        return {
            "mlflow": {"run_id": outcome.run_id, "parent_run_id": parent_run_id},
            "search": {"history": outcome.search["result"]["history"]},
        }
    assert outcome.selection is not None
    arch = outcome.selection["result"]["genotype"]
    try:
        evaluation = _evaluate_units(
            trial,
            arch,
            outcome.run_id,
            retrain,
            tracker=tracker,
            data_root=data_root,
            device=eval_device or device,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            store=store,
            rerun=rerun,
            fast=fast,
            data_on_device=data_on_device,
        )
        record = assemble_record(
            trial,
            outcome,
            evaluation,
            tracker=tracker,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            device=device,
        )
    except BaseException as exc:
        fail_run(tracker, outcome.run_id, exc)
        raise
    progress(
        f"{_label(trial)} genotype {arch} -> "
        + metrics_line(evaluation.metrics, trial.budget)
    )
    return record


def _evaluate_units(
    trial: Trial,
    arch: str,
    run_id: str,
    retrain: list[str] | None,
    **kwargs: Any,
) -> Evaluation:
    """The trial's retraining units in this process (the `retrain` evaluator), or its
    lookups. `retrain`: the datasets to retrain (None: every evaluated one)."""
    cfg = trial.config
    if cfg["evaluator"] != "retrain":
        return evaluate_cell(trial, arch, {}, {}, data_root=kwargs["data_root"])
    wanted = cfg["eval_datasets"] if retrain is None else retrain
    done = {
        ds: run_retrain_unit(trial, ds, arch, run_id=run_id, **kwargs)
        for ds in cfg["eval_datasets"]
        if ds in wanted
    }
    skipped = {ds: "not asked for" for ds in cfg["eval_datasets"] if ds not in wanted}
    return evaluate_cell(trial, arch, done, skipped, data_root=kwargs["data_root"])


def _given_arch(cfg: dict[str, Any]) -> str:
    """The experiment's published cell as the evaluators read it: NB201 arch strings as
    given, DARTS-space names resolved to their Genotype(...) string."""
    if cfg["space"] == "nb201":
        return str(cfg["genotype"])
    from nasrepro.nets.genotypes import get_genotype

    return get_genotype(str(cfg["genotype"])).to_str()


def execute_given_cell(
    trial: Trial,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    data_root: str | None,
    device: str,
    progress: Progress = _stderr,
    run_name: str | None = None,
    run_id: str | None = None,
    checkpoint_dir: str | Path | None = None,
    store: str | Path | None = None,
    rerun: bool = False,
    retrain: list[str] | None = None,
    retrained: dict[str, dict[str, Any]] | None = None,
    skip: dict[str, str] | None = None,
    data_on_device: bool | None = None,
) -> dict[str, Any]:
    """A trial of a published cell (`genotype:`): no search and no selection, only the
    evaluator (params/FLOPs, a benchmark lookup, or retraining units with this seed).
    `retrained`: retraining unit records already computed (the runner's jobs), by dataset;
    `skip`: why each other dataset is not retrained."""
    cfg = trial.config
    label = _label(trial)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    seed_everything(trial.seed, True)
    arch = _given_arch(cfg)
    tags = {**search_tags(trial), "method": "published cell", "genotype": str(cfg["genotype"])}
    if run_id is not None:
        tracker.set_tags(run_id, {"genotype": str(cfg["genotype"])})
    else:
        run_id = tracker.start_run(
            experiment_id,
            run_name or child_run_name(trial.experiment, trial.budget, trial.seed),
            tags,
            parent_run_id,
        )
        tracker.log_params(run_id, flatten(cfg))
        tracker.log_params(run_id, {"seed": str(trial.seed)})
    try:
        if cfg["evaluator"] == "retrain":
            units = dict(retrained or {})
            wanted = cfg["eval_datasets"] if retrain is None else retrain
            for ds in cfg["eval_datasets"]:
                if ds in wanted and ds not in units:
                    units[ds] = run_retrain_unit(
                        trial, ds, arch, tracker=tracker, run_id=run_id, data_root=data_root,
                        device=device, progress=progress, checkpoint_dir=checkpoint_dir,
                        store=store, rerun=rerun, data_on_device=data_on_device,
                    )  # fmt: skip
            why = skip or {}
            skipped = {
                ds: why.get(ds, "not asked for") for ds in cfg["eval_datasets"] if ds not in units
            }
            evaluation = evaluate_cell(trial, arch, units, skipped, data_root=data_root)
        else:
            evaluation = evaluate_cell(trial, arch, {}, {}, data_root=data_root, device=device)
        final = {
            f"final.{ds}.{m}": v for ds, vals in evaluation.metrics.items() for m, v in vals.items()
        }
        tracker.log_metrics(run_id, final, 0)
        tracker.log_json(
            run_id,
            {"genotype": arch, "arch_index": evaluation.arch_index, "source": evaluation.source},
            "genotype.json",
        )
        cost = assembled_cost([], evaluation.costs)
        record = {
            **record_identity(trial),
            "space": cfg["space"],
            "search_dataset": cfg["dataset"],
            "search_data": None,
            "given_genotype": str(cfg["genotype"]),
            "genotype": arch,
            "arch_index": evaluation.arch_index,
            "metrics": evaluation.metrics,
            "cost": cost,
            "evaluation": {
                "evaluator": cfg["evaluator"],
                "source": evaluation.source,
                "fixture": bool(evaluation.source.get("fixture", False)),
            },
            "search": None,
            "mlflow": {
                "tracking_uri": tracker.uri,
                "experiment_id": experiment_id,
                "run_id": run_id,
                "parent_run_id": parent_run_id,
            },
            "provenance": provenance(device, True, cost["total_seconds"], created),
        }
        if cfg["evaluator"] == "retrain":
            record["units"] = {
                "retrain": evaluation.retrain_units,
                "not_retrained": evaluation.not_retrained,
            }
    except BaseException as exc:
        fail_run(tracker, run_id, exc)
        raise
    tracker.end_run(run_id)
    progress(
        f"{label} {cfg['genotype']} -> "
        + metrics_line(evaluation.metrics, trial.budget, digits=3)
    )
    return finite_or_none(record)


def _execute_query(
    trial: Trial,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    device: str,
    progress: Progress,
    run_name: str | None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A search by NAS-Bench-201 queries (`query:`, nasrepro/search/queries.py): the
    algorithm reads the benchmark file the `nb201-api` evaluator opened (its validation
    accuracies and recorded training times), then the chosen cell is scored like any other.
    Seconds, not hours: it trains nothing, so it is no unit of work (docs/plan.md).
    `run_id`: the trial's child run when the runner opened it."""
    from nasrepro.search.queries import run_query

    cfg = trial.config
    label = f"[{trial.suite}/{trial.experiment} {trial.budget} seed {trial.seed}]"
    start = time.perf_counter()
    clock = TrialClock(None)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    seed_everything(trial.seed, True)  # Python's, numpy's and torch's streams, as prepare_seed
    evaluator = build_evaluator(cfg)
    tags = {
        "suite": trial.suite,
        "experiment": trial.experiment,
        "budget": trial.budget,
        "seed": str(trial.seed),
        "claim_ids": ",".join(trial.claim_ids),
        "method": str(cfg["query"]["algorithm"]),
        "space": cfg["space"],
        "dataset": cfg["dataset"],
        "config_hash": trial.config_hash,
        SOURCE: trial.suite_path,
    }
    if run_id is not None:
        tracker.set_tags(run_id, {"method": tags["method"]})
    else:
        run_id = tracker.start_run(
            experiment_id,
            run_name or child_run_name(trial.experiment, trial.budget, trial.seed),
            tags,
            parent_run_id,
        )
    try:
        tracker.log_params(run_id, flatten({**cfg, "seed": trial.seed}))
        prepare = None
        if getattr(evaluator, "kind", None) == "nats-dir":  # one file per cell, read on demand
            from nasrepro.evaluate.nb201 import _load_archive_cell

            def prepare(index: int) -> None:
                _load_archive_cell(evaluator.api, evaluator.path, index)

        found = run_query(
            cfg["query"], evaluator.api, cfg["dataset"], str(evaluator.path), prepare
        )
        arch = found["genotype"]
        progress(
            f"{label} {found['algorithm']}: {found['queries']} queries, "
            f"{found['simulated_seconds']:.0f} simulated s -> {arch}"
        )
        for step, q in enumerate(found["trace"]):
            tracker.log_metrics(run_id, {"query.valid_acc": q["valid_acc"]}, step)
        clock.enter("eval")
        result = evaluator.score(arch, cfg["eval_datasets"], ["test_acc", "valid_acc"])
        final = {
            f"final.{ds}.{m}": v for ds, vals in result.metrics.items() for m, v in vals.items()
        }
        tracker.log_metrics(run_id, final, 0)
        tracker.log_json(run_id, found, "query.json")
        record = {
            **record_identity(trial),
            "space": cfg["space"],
            "search_dataset": cfg["dataset"],
            "search_data": None,
            "genotype": arch,
            "arch_index": result.arch_index,
            "metrics": result.metrics,
            "cost": trial_cost(clock, device_name(device), 0, 0),
            "evaluation": {
                "evaluator": cfg["evaluator"],
                "source": result.source,
                "fixture": bool(result.source.get("fixture", False)),
            },
            "search": {"history": [], "query": found},
            "mlflow": {
                "tracking_uri": tracker.uri,
                "experiment_id": experiment_id,
                "run_id": run_id,
                "parent_run_id": parent_run_id,
            },
            "provenance": provenance(device, True, time.perf_counter() - start, created),
        }
    except BaseException as exc:
        fail_run(tracker, run_id, exc)
        raise
    tracker.end_run(run_id)
    progress(
        f"{label} {arch} -> "
        + metrics_line(result.metrics, trial.budget)
    )
    return finite_or_none(record)


def metrics_line(
    metrics: dict[str, dict[str, float]], budget: str, digits: int = 2
) -> str:
    """A trial's numbers for its progress line ("cifar10 test_acc 94.37, ..."), with what a
    number of this budget is."""
    numbers = ", ".join(
        f"{ds} {m} {v:.{digits}f}" for ds, vals in metrics.items() for m, v in vals.items()
    )
    return numbers + budget_caveat(budget)


def budget_caveat(budget: str) -> str:
    """What a number of this budget is: only full-budget numbers are results."""
    if budget == "smoke":
        return " (smoke budget: a pipeline check, not a result)"
    if budget == "reduced":
        return " (reduced budget: not comparable to the paper's numbers)"
    return ""
