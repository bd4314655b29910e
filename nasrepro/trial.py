"""Execute one trial: data, supernet, search, selection, evaluation, tracking, record."""

from __future__ import annotations

import math
import sys
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
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)
from nasrepro.distributed import Dist, check_replicas, primary_device
from nasrepro.methods.base import build_hooks
from nasrepro.plan import Trial
from nasrepro.provenance import provenance
from nasrepro.registry import SCHEMA
from nasrepro.search.engine import EpochLog, SearchContext, run_search, seed_everything
from nasrepro.spaces import build_space
from nasrepro.tracking import NullTracker, Tracker, flatten

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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


def _alpha_metrics(space: Any, alpha: dict[str, list[list[float]]]) -> dict[str, float]:
    out = {}
    for name, rows in alpha.items():
        for e, row in enumerate(rows):
            for k, p in enumerate(row):
                out[f"alpha.{name}.e{e}.{space.edge_op_names(name, e)[k]}"] = p
    return out


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
    """
    from nasrepro.datasets import build_search_data

    cfg, settings = trial.config, trial.search
    label = f"[{trial.suite}/{trial.experiment} {trial.budget} seed {trial.seed}]"
    start = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    seed_everything(trial.seed, settings.deterministic)
    data = build_search_data(
        cfg["dataset"],
        root=data_root,
        batch_size=settings.batch_size,
        seed=trial.seed,
        image_size=settings.image_size,
        train_limit=settings.train_limit,
        rank=ddp.rank if ddp else 0,
        world=ddp.world if ddp else 1,
    )
    if ddp is not None and not ddp.main:
        tracker = NullTracker()  # rank 0 alone writes to MLflow
    space = build_space(cfg["space"])
    hooks = build_hooks(cfg["methods"], cfg["method_args"])
    space_args = dict(cfg["space_args"])
    for hook in hooks:
        space_args = hook.configure_space(space_args)
    search_device = torch.device(primary_device(device))
    speed: dict[str, Any] = {"fused": False, "cuda_graph": False, "channels_last": False}
    if fast:  # the switches that win here, measured on this supernet and batch (bench.py)
        from nasrepro.bench import fast_switches

        speed = fast_switches(
            cfg["space"], space_args, settings.order, settings.batch_size,
            data.image_size, data.num_classes, data.in_channels, search_device,
            graphable=not hooks and settings.order == 1 and (ddp is None or ddp.world == 1),
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
    tags = {
        "suite": trial.suite,
        "experiment": trial.experiment,
        "budget": trial.budget,
        "seed": str(trial.seed),
        "claim_ids": ",".join(trial.claim_ids),
        "method": "+".join(cfg["methods"]) or "darts",
        "space": cfg["space"],
        "dataset": cfg["dataset"],
        "config_hash": trial.config_hash,
    }
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
            experiment_id, run_name or f"seed{trial.seed}", tags, parent_run_id
        )
    payload: dict[str, Any] = {
        "config_hash": trial.config_hash,
        "mlflow_run_id": run_id,
        "parent_run_id": parent_run_id,
        **({} if resume is None else {k: resume[k] for k in ("engine", "selected") if k in resume}),
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

    try:
        if resume is None:
            tracker.log_params(run_id, flatten(cfg))
            tracker.log_params(run_id, {"seed": str(trial.seed), "data.split": str(data.split)})
        lookup_each_epoch = (
            evaluate and cfg["space"] == "nb201" and cfg["evaluator"].startswith("nb201")
        )

        def on_epoch_end(log: EpochLog) -> None:
            if lookup_each_epoch:
                # The NB201 score of the current argmax cell makes collapse visible per epoch.
                geno = space.derive_argmax(supernet)
                res = evaluator.score(
                    space.format_genotype(geno), cfg["eval_datasets"], ["test_acc"]
                )
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
                **_alpha_metrics(space, log.alpha),
            }
            tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if v == v}, log.epoch)
            progress(
                f"{label} epoch {log.epoch + 1}/{settings.epochs} "
                f"train {log.train_loss:.3f}/{log.train_acc:.1f}% "
                f"valid {log.valid_loss:.3f}/{log.valid_acc:.1f}% ({log.seconds:.1f}s)"
            )
            if on_epoch is not None:
                on_epoch(log)

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
        wall = time.perf_counter() - start
        record = {
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
            "config": cfg,
            "space": cfg["space"],
            "search_dataset": cfg["dataset"],
            "search_data": data.split,
            "genotype": arch,
            "arch_index": result.arch_index,
            "metrics": result.metrics,
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
            },
        }
    except BaseException as exc:
        tracker.set_tags(run_id, {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        tracker.end_run(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end_run(run_id)
    progress(
        f"{label} genotype {arch} -> "
        + ", ".join(
            f"{ds} {m} {v:.2f}" for ds, vals in result.metrics.items() for m, v in vals.items()
        )
    )
    return record
