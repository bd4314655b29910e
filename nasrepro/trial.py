"""Execute one trial: data, supernet, search, selection, evaluation, tracking, record."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasrepro import catalog
from nasrepro.checkpoint import (
    CheckpointError,
    checkpoint_path,
    forget_saves,
    load_checkpoint,
    on_save,
    remove_checkpoints,
    save_checkpoint,
)
from nasrepro.cost import TrialClock, clock_path, gpu_count, search_cost_gpu_days, trial_cost
from nasrepro.distributed import Dist, check_replicas, primary_device
from nasrepro.jobs import FIDELITY_VERSION, Trial
from nasrepro.methods.base import search_hooks
from nasrepro.progress import emit, trial_scope
from nasrepro.provenance import device_name, provenance, set_tf32
from nasrepro.registry import SCHEMA
from nasrepro.search.engine import EpochLog, SearchContext, run_search, seed_everything
from nasrepro.spaces import build_space
from nasrepro.tracking import (
    ALPHA_TABLE,
    SOURCE,
    NullTracker,
    Tracker,
    alpha_summary,
    alpha_table,
    child_run_name,
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
    data_on_device: bool | None = None,
) -> dict[str, Any] | None:
    """Run `trial` under a child MLflow run and return its registry record (not yet written).

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
    `data_on_device`: search (and retraining) images held and augmented on the device
    (datasets/device_data.py); None: on a GPU. The record's `search_data.loader` says so.
    """
    if trial.benchmark_query:
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
        return _execute_given_cell(
            trial,
            tracker=tracker,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            data_root=data_root,
            device=eval_device or device,
            progress=progress,
            run_name=run_name,
            checkpoint_dir=checkpoint_dir,
            data_on_device=data_on_device,
        )
    from nasrepro.datasets import trial_search_data

    cfg, settings = trial.config, trial.search
    label = f"[{trial.suite}/{trial.experiment} {trial.budget} seed {trial.seed}]"
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
    if fast:  # the switches that win here, measured on this supernet and batch (bench.py)
        from nasrepro.bench import fast_switches

        speed = fast_switches(
            cfg["space"], space_args, settings.order, settings.batch_size,
            data.image_size, data.num_classes, data.in_channels, search_device,
            graphable=not hooks
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
    ckpt = checkpoint_path(checkpoint_dir, trial) if checkpoint_dir is not None else None
    ctx.checkpoint = ckpt
    ctx.dist = ddp
    ctx.valid_batches = data.loader.arch_pass
    tags = search_tags(trial)
    resume = None
    if ckpt is not None and ckpt.exists():
        try:
            resume = load_checkpoint(ckpt, trial.config_hash)
        except CheckpointError as exc:
            progress(f"{label} {exc}; starting the trial over")
            if ddp is None or ddp.main:
                remove_checkpoints(ckpt)
    if resume is not None:
        run_id = resume["mlflow_run_id"]  # continue the interrupted run, not a new one
        tracker.reopen(run_id)
        if resume.get("selected"):
            where = "the selection"
        elif resume["engine"].get("finished"):
            where = "the search"
        else:
            where = f"epoch {resume['engine']['epoch']}"
        progress(f"{label} resuming after {where} from {ckpt}")
    else:
        if ckpt is not None and (ddp is None or ddp.main):
            remove_checkpoints(ckpt)  # stage files of an older, abandoned attempt
        run_id = tracker.start_run(
            experiment_id,
            run_name or child_run_name(trial.experiment, trial.budget, trial.seed),
            tags,
            parent_run_id,
        )
    main = ddp is None or ddp.main
    if ckpt is not None and main:
        # A resumed trial adds to the time its earlier processes spent; a fresh one (its
        # stage files were just removed) starts from nothing.
        clock.attach(clock_path(ckpt), continue_earlier=resume is not None)
        on_save(ckpt, clock.flush)
    payload: dict[str, Any] = {
        "config_hash": trial.config_hash,
        "mlflow_run_id": run_id,
        "parent_run_id": parent_run_id,
        **(
            {}
            if resume is None
            else {k: resume[k] for k in ("engine", "selected", "packed") if k in resume}
        ),
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
    try:
        if resume is None:
            tracker.log_params(run_id, flatten(cfg))
            tracker.log_params(run_id, flatten({"seed": trial.seed, "data": {"split": data.split}}))
        on_epoch_end = epoch_logger(
            trial, space, supernet, evaluator if evaluate else None, tracker, run_id, progress,
            label, on_epoch,
        )  # fmt: skip

        history = run_search(
            ctx,
            data.loader,
            data.steps_per_epoch,
            on_epoch_end,
            save,
            None if resume is None else resume["engine"],
        )
        if ddp is not None:
            check_replicas(ddp, supernet)
            if not ddp.main:
                return None
        if not evaluate:
            tracker.log_json(run_id, [asdict(h) for h in history], "search_history.json")
            tracker.end_run(run_id)
            return {
                "mlflow": {"run_id": run_id, "parent_run_id": parent_run_id},
                "search": {"history": [asdict(h) for h in history]},
            }
        if "selected" in payload:  # selection finished before the interruption
            arch = payload["selected"]["genotype"]
            if payload["selected"]["selection"] is not None:
                ctx.state["selection"] = payload["selected"]["selection"]
        else:
            selector = catalog.get("selector", cfg["selector"])
            genotype = selector(
                space, supernet, ctx=ctx, data=data, history=history, **cfg["selector_args"]
            )
            arch = space.format_genotype(genotype)
            payload["selected"] = {
                "genotype": arch,
                "selection": finite_or_none(ctx.state.get("selection")),
            }
            if ckpt is not None:
                save_checkpoint(ckpt, payload)
        clock.enter("eval")
        result = evaluator.score(
            arch,
            cfg["eval_datasets"],
            ["test_acc", "valid_acc"],
            space=cfg["space"],
            data_root=data_root,
            device=eval_device or device,
            seed=trial.seed,
            checkpoint=ckpt,
            tracking={"uri": tracker.uri, "run_id": run_id},
            log=lambda metrics, step: tracker.log_metrics(run_id, metrics, step),
            progress=lambda line: progress(f"{label} {line}"),
            data_on_device=device_data_wanted(
                data_on_device, torch.device(primary_device(eval_device or device))
            ),
        )
        final = {
            f"final.{ds}.{m}": v for ds, vals in result.metrics.items() for m, v in vals.items()
        }
        tracker.log_metrics(run_id, final, settings.epochs)
        tracker.set_tags(run_id, {"genotype": arch, "evaluator": cfg["evaluator"]})
        history_json = finite_or_none([asdict(h) for h in history])
        tracker.log_json(
            run_id,
            {"genotype": arch, "arch_index": result.arch_index, "source": result.source},
            "genotype.json",
        )
        tracker.log_json(run_id, history_json, "search_history.json")
        if history and history[-1].alpha:
            tracker.log_text(run_id, alpha_table(history_json, space.edge_op_names), ALPHA_TABLE)
            log_alpha_figure(tracker, run_id, history_json, {**tags, "space": cfg["space"]})
        wall = time.perf_counter() - start
        cost = trial_cost(
            clock,
            device_name(device),
            (ddp.world if ddp is not None else 1) if search_device.type == "cuda" else 0,
            gpu_count(eval_device or device),
        )
        record = {
            **record_identity(trial),
            "space": cfg["space"],
            "search_dataset": cfg["dataset"],
            "search_data": data.split,
            "genotype": arch,
            "arch_index": result.arch_index,
            # per evaluated dataset, plus the measured search cost (None on a CPU)
            "metrics": {**result.metrics, "search_cost_gpu_days": search_cost_gpu_days(cost)},
            "cost": cost,
            "evaluation": {
                "evaluator": cfg["evaluator"],
                "source": result.source,
                "fixture": bool(result.source.get("fixture", False)),
            },
            "search": {
                "epochs": settings.epochs,
                "history": history_json,
                "stopped_by": ctx.state.get("stopped_by"),
                "stopped_at_epoch": ctx.state.get("stopped_at_epoch"),
                "selection": finite_or_none(ctx.state.get("selection")),
                # the score a best-of-N selection reads when the method sets one
                # (RobustDARTS' infer() accuracy: search/infer.py)
                "valid_acc": finite_or_none(ctx.state.get("search_valid_acc")),
            },
            "mlflow": {
                "tracking_uri": tracker.uri,
                "experiment_id": experiment_id,
                "run_id": run_id,
                "parent_run_id": parent_run_id,
            },
            "provenance": {
                **provenance(device, settings.deterministic, wall, created),
                "speed_switches": speed,
                "search_processes": ddp.world if ddp is not None else 1,
                # searched with other seeds in one packed step (nasrepro/packed_trials.py):
                # which seeds, the timings that chose it; its search seconds are its share
                "packed_search": payload.get("packed"),
            },
        }
    except BaseException as exc:
        if ckpt is not None:
            if main:
                clock.flush()  # Ctrl-C, SIGTERM, an error: this process's time is kept
            forget_saves(ckpt)
        tracker.set_tags(run_id, {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        tracker.end_run(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        scope.close()
    if ckpt is not None:
        forget_saves(ckpt)
    tracker.end_run(run_id)
    progress(
        f"{label} genotype {arch} -> "
        + ", ".join(
            f"{ds} {m} {v:.2f}" for ds, vals in result.metrics.items() for m, v in vals.items()
        )
        + budget_caveat(trial.budget)
    )
    return record


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
        "method": "+".join(cfg["methods"]) or "darts",
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
) -> Callable[[EpochLog], None]:
    """What happens after each search epoch of a trial (alone or packed): the NB201 lookup
    of the current argmax cell (with an NB201 evaluator; `evaluator` None skips it), the
    epoch's metrics to its MLflow run, a progress line, then `on_epoch`."""
    cfg = trial.config
    epochs = trial.search.epochs
    lookup_each_epoch = (
        evaluator is not None and cfg["space"] == "nb201" and cfg["evaluator"].startswith("nb201")
    )

    def on_epoch_end(log: EpochLog) -> None:
        if lookup_each_epoch:
            # The NB201 score of the current argmax cell makes collapse visible per epoch.
            geno = space.derive_argmax(supernet)
            res = evaluator.score(space.format_genotype(geno), cfg["eval_datasets"], ["test_acc"])
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


def _given_arch(cfg: dict[str, Any]) -> str:
    """The experiment's published cell as the evaluators read it: NB201 arch strings as
    given, DARTS-space names resolved to their Genotype(...) string."""
    if cfg["space"] == "nb201":
        return str(cfg["genotype"])
    from nasrepro.nets.genotypes import get_genotype

    return get_genotype(str(cfg["genotype"])).to_str()


def _execute_given_cell(
    trial: Trial,
    *,
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    data_root: str | None,
    device: str,
    progress: Progress,
    run_name: str | None,
    checkpoint_dir: str | Path | None,
    data_on_device: bool | None = None,
) -> dict[str, Any]:
    """A trial of a published cell (`genotype:`): no search and no selection, only the
    evaluator (params/FLOPs, a benchmark lookup, or a retraining with this seed)."""
    cfg = trial.config
    label = f"[{trial.suite}/{trial.experiment} {trial.budget} seed {trial.seed}]"
    start = time.perf_counter()
    clock = TrialClock(None)
    clock.enter("eval")  # nothing is searched: all of a published cell's time is evaluation
    created = datetime.now(UTC).isoformat(timespec="seconds")
    seed_everything(trial.seed, True)
    evaluator = build_evaluator(cfg)
    arch = _given_arch(cfg)
    ckpt = checkpoint_path(checkpoint_dir, trial) if checkpoint_dir is not None else None
    tags = {
        "suite": trial.suite,
        "experiment": trial.experiment,
        "budget": trial.budget,
        "seed": str(trial.seed),
        "claim_ids": ",".join(trial.claim_ids),
        "method": "published cell",
        "space": cfg["space"],
        "dataset": cfg["dataset"],
        "config_hash": trial.config_hash,
        "genotype": str(cfg["genotype"]),
        SOURCE: trial.suite_path,
    }
    run_id = tracker.start_run(
        experiment_id,
        run_name or child_run_name(trial.experiment, trial.budget, trial.seed),
        tags,
        parent_run_id,
    )
    try:
        tracker.log_params(run_id, flatten(cfg))
        tracker.log_params(run_id, {"seed": str(trial.seed)})
        result = evaluator.score(
            arch,
            cfg["eval_datasets"],
            ["test_acc", "valid_acc"],
            space=cfg["space"],
            data_root=data_root,
            device=device,
            seed=trial.seed,
            checkpoint=ckpt,
            tracking={"uri": tracker.uri, "run_id": run_id},
            log=lambda metrics, step: tracker.log_metrics(run_id, metrics, step),
            progress=lambda line: progress(f"{label} {line}"),
            data_on_device=device_data_wanted(
                data_on_device, torch.device(primary_device(device))
            ),
        )
        final = {
            f"final.{ds}.{m}": v for ds, vals in result.metrics.items() for m, v in vals.items()
        }
        tracker.log_metrics(run_id, final, 0)
        tracker.log_json(
            run_id,
            {"genotype": arch, "arch_index": result.arch_index, "source": result.source},
            "genotype.json",
        )
        record = {
            **record_identity(trial),
            "space": cfg["space"],
            "search_dataset": cfg["dataset"],
            "search_data": None,
            "given_genotype": str(cfg["genotype"]),
            "genotype": arch,
            "arch_index": result.arch_index,
            "metrics": result.metrics,
            "cost": trial_cost(clock, device_name(device), 0, gpu_count(device)),
            "evaluation": {
                "evaluator": cfg["evaluator"],
                "source": result.source,
                "fixture": bool(result.source.get("fixture", False)),
            },
            "search": None,
            "mlflow": {
                "tracking_uri": tracker.uri,
                "experiment_id": experiment_id,
                "run_id": run_id,
                "parent_run_id": parent_run_id,
            },
            "provenance": provenance(device, True, time.perf_counter() - start, created),
        }
    except BaseException as exc:
        tracker.set_tags(run_id, {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        tracker.end_run(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end_run(run_id)
    progress(
        f"{label} {cfg['genotype']} -> "
        + ", ".join(
            f"{ds} {m} {v:.3f}" for ds, vals in result.metrics.items() for m, v in vals.items()
        )
        + budget_caveat(trial.budget)
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
) -> dict[str, Any]:
    """A search by NAS-Bench-201 queries (`query:`, nasrepro/search/queries.py): the
    algorithm reads the benchmark file the `nb201-api` evaluator opened (its validation
    accuracies and recorded training times), then the chosen cell is scored like any other.
    Seconds, not hours: it trains nothing."""
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
        tracker.set_tags(run_id, {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        tracker.end_run(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end_run(run_id)
    progress(
        f"{label} {arch} -> "
        + ", ".join(
            f"{ds} {m} {v:.2f}" for ds, vals in result.metrics.items() for m, v in vals.items()
        )
        + budget_caveat(trial.budget)
    )
    return finite_or_none(record)


def budget_caveat(budget: str) -> str:
    """What a number of this budget is: only full-budget numbers are results."""
    if budget == "smoke":
        return " (smoke budget: a pipeline check, not a result)"
    if budget == "reduced":
        return " (reduced budget: not comparable to the paper's numbers)"
    return ""
