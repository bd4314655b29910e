"""Several seeds of one experiment searched as one packed step (`nasrepro run --pack-seeds`).

The runner sends a *pack job* (a TrialJob whose `pack` names the other seeds) before the
seeds' search units. It searches the seeds together (search/packed.py) and writes each
seed's search-unit checkpoint (`checkpoint.unit_checkpoint`, keyed by the seed's search
unit) after every epoch, in the single-seed format and under the seed's own MLflow run;
each seed's search-unit job then finds a finished search, resumes after it, records the
search and selection units, and the runner assembles one record per seed. Nothing is lost
if the pack fails or is killed: each seed continues from its last checkpoint, packed again
on a re-run or alone.

Default (`--pack-seeds` not given): on a GPU, four seeds, if a measured packed step beats the
seeds' single steps by 5% on the trial's own supernet and batch (like `--fast`); on a CPU no
packing (a full-size CPU step is compute-bound: measured no gain, search/multiseed.py).
Time: each seed's clock gets its 1/K share of the pack's wall time, so the seeds' GPU-hours
sum to the GPU time spent; the record's provenance says it was packed (`packed_search`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasrepro.jobs import Trial, TrialJob

Progress = Callable[[str], None]

__all__ = ["DEFAULT_PACK", "PAYS", "measure_packing", "search_packed"]

DEFAULT_PACK = 4  # seeds per packed step on a GPU (one H200 holds four NB201 searches)
PAYS = 1.05  # packed per-seed time must beat the single step by 5% (as `--fast` switches)


def measure_packing(
    config: dict[str, Any],
    image_size: int,
    num_classes: int,
    in_channels: int,
    device: torch.device,
    k: int,
    steps: int = 5,
    warmup: int = 2,
) -> dict[str, Any]:
    """Median ms of one packed step of k seeds against k single steps of the same supernet
    and batch on `device` (CUDA: the packed step as one CUDA graph, the single step too
    where it can be graphed; fused NB201 ops); `pays` when k single steps take PAYS times
    the packed one. The timing builds
    seeded supernets under `fork_rng`: the trial's random stream does not move."""
    from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
    from nasrepro.search.graphed import (
        GraphedMultiSeedStep,
        GraphedStepError,
        check_graphable,
        graph_first_order_step,
    )
    from nasrepro.search.multiseed import MultiSeedSearch
    from nasrepro.spaces import build_space
    from nasrepro.suite import SearchSettings
    from nasrepro.timing import median_step_ms

    settings = SearchSettings.model_validate(config["search"])
    cuda = device.type == "cuda"
    space_args = dict(config["space_args"])
    if cuda and config["space"] == "nb201":
        space_args["fused"] = True
    batch = settings.batch_size
    shape = (k, batch, in_channels, image_size, image_size)
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.manual_seed(0)
        xw, xa = torch.randn(shape, device=device), torch.randn(shape, device=device)
        yw = torch.randint(0, num_classes, shape[:2], device=device)
        ya = torch.randint(0, num_classes, shape[:2], device=device)
        space = build_space(config["space"])
        nets = [
            space.build_supernet(num_classes, in_channels=in_channels, **space_args).to(device)
            for _ in range(k)
        ]
        multi = MultiSeedSearch(nets, settings, optimizer_impl="fused" if cuda else "default")
        packed_step: Any
        if cuda:
            packed_step = GraphedMultiSeedStep(multi, xw, yw, xa, ya, accuracy=True)
        else:
            packed_step = lambda *b: multi.step(*b, check=False, accuracy=True)  # noqa: E731
        packed_ms = median_step_ms(lambda: packed_step(xw, yw, xa, ya), device, steps, warmup)
        net = space.build_supernet(num_classes, in_channels=in_channels, **space_args)
        ctx = SearchContext(net.to(device).train(), settings, [], device, nn.CrossEntropyLoss())
        build_optimizers(ctx)
        single_graphed = True
        try:  # the single seed's fastest path: graphed where it can be (a GPU, no α clip)
            check_graphable(ctx)
            single: Any = graph_first_order_step(ctx, xw[0], yw[0], xa[0], ya[0])
        except GraphedStepError:
            single_graphed = False

            def single(x_w: Any, y_w: Any, x_a: Any, y_a: Any) -> None:
                if settings.resolved_alpha_step() == "before_weights":
                    arch_step(ctx, x_w, y_w, x_a, y_a)
                    weight_step(ctx, x_w, y_w)
                else:
                    weight_step(ctx, x_w, y_w)
                    arch_step(ctx, x_w, y_w, x_a, y_a)

        one = (xw[0], yw[0], xa[0], ya[0])
        single_ms = median_step_ms(lambda: single(*one), device, steps, warmup)
    speedup = k * single_ms / packed_ms
    return {
        "seeds": k,
        "packed_step_ms": round(packed_ms, 3),
        "single_step_ms": round(single_ms, 3),
        "speedup": round(speedup, 3),
        "pays": speedup >= PAYS,
        "graph": cuda,
        "single_graphed": single_graphed,
        "fused": bool(space_args.get("fused", False)),
        "device": str(device),
    }


def _write_share(path: Path, earlier: list[dict[str, float]], seconds: float) -> None:
    """A seed's clock file (nasrepro/cost.py format): the earlier processes, then this
    pack's share of the search time."""
    procs = [*earlier, {"search_seconds": seconds, "eval_seconds": 0.0}]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"processes": procs}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _earlier(path: Path) -> list[dict[str, float]]:
    """The processes a seed's clock file lists (cost.TrialClock reads it the same way)."""
    from nasrepro.cost import PHASES, TrialClock

    clock = TrialClock(None)
    clock.attach(path, continue_earlier=True)
    return [{f"{p}_seconds": e[p] for p in PHASES} for e in clock.earlier]


def search_packed(job: TrialJob, progress: Progress) -> dict[str, Any]:
    """Search `job.trial` and `job.pack` together, leaving each seed's finished search in
    its checkpoint; returns what was packed (or why not). The seeds' own jobs do the rest."""
    from nasrepro.checkpoint import (
        CheckpointError,
        checkpoint_path,
        load_checkpoint,
        remove_checkpoints,
        save_checkpoint,
    )
    from nasrepro.cost import clock_path
    from nasrepro.datasets import trial_search_data
    from nasrepro.distributed import primary_device
    from nasrepro.provenance import set_tf32
    from nasrepro.search.engine import SearchContext, rng_state, seed_everything
    from nasrepro.search.packed import not_packable, run_packed_search
    from nasrepro.spaces import build_space
    from nasrepro.store import StoreLock, read_unit
    from nasrepro.tracking import Tracker, child_run_name, fail_run, flatten
    from nasrepro.trial import build_evaluator, device_data_wanted, epoch_logger, search_tags

    trials: list[Trial] = [job.trial, *job.pack]
    label = f"[{job.trial.suite}/{job.trial.experiment} {job.trial.budget} packed seeds " + (
        ",".join(str(t.seed) for t in trials) + "]"
    )
    why = not_packable(job.trial.config)
    if why is not None:
        return {"packed": False, "why": why}
    device = torch.device(primary_device(job.device))
    with contextlib.ExitStack() as locks:
        mine: list[Trial] = []
        resumes: list[dict[str, Any] | None] = []
        for t in trials:
            assert t.search_key is not None
            ckpt = checkpoint_path(job.checkpoint_dir, t)  # the seed's search-unit checkpoint
            # the seed's search unit, locked in the shared store (UnitLocked: another has it)
            where = f"{t.suite}/{t.experiment} seed {t.seed} packed search"
            locks.enter_context(StoreLock(job.registry, t.search_key, where))
            if not job.rerun and read_unit(job.registry, "search", t.search_key) is not None:
                continue
            state = None
            if ckpt.exists():
                try:
                    state = load_checkpoint(ckpt, t.search_key)
                except CheckpointError as exc:
                    progress(f"{label} {exc}; seed {t.seed} starts over")
                    remove_checkpoints(ckpt)
            if state is not None and (state.get("selected") or state["engine"].get("finished")):
                continue  # searched already
            mine.append(t)
            resumes.append(state)
        epochs = [0 if r is None else int(r["engine"]["epoch"]) for r in resumes]
        if epochs:  # pack the seeds standing at the most common epoch (earliest on ties)
            common = min(set(epochs), key=lambda e: (-epochs.count(e), e))
            keep = [i for i, e in enumerate(epochs) if e == common]
            mine, resumes = [mine[i] for i in keep], [resumes[i] for i in keep]
        if len(mine) < 2:
            return {"packed": False, "why": "fewer than two seeds left to search"}
        cfg, settings = mine[0].config, mine[0].search
        data, ctxs, rngs, evaluator = [], [], [], build_evaluator(cfg)
        space = build_space(cfg["space"])
        measured = None
        on_device = device if device_data_wanted(job.data_on_device, device) else None
        for t in mine:
            seed_everything(t.seed, settings.deterministic)
            set_tf32(settings.tf32)
            d = trial_search_data(cfg, root=job.data_root, seed=t.seed, on_device=on_device)
            data.append(d)
        if job.pack_measured:
            d = data[0]
            measured = measure_packing(
                cfg, d.image_size, d.num_classes, d.in_channels, device, len(mine)
            )
            if not measured["pays"]:
                progress(
                    f"{label} not packed: {len(mine)} seeds packed {measured['packed_step_ms']} "
                    f"ms/step vs {measured['single_step_ms']} ms/step alone "
                    f"({measured['speedup']}x, below {PAYS}x); each seed searches alone"
                )
                return {"packed": False, "why": "does not pay", "measured": measured}
        space_args = dict(cfg["space_args"])
        if device.type == "cuda" and cfg["space"] == "nb201":
            space_args["fused"] = True  # one convolution per node: the launch-bound GPU case
        for t, d in zip(mine, data, strict=True):
            seed_everything(t.seed, settings.deterministic)  # as the seed's own trial builds
            net = space.build_supernet(d.num_classes, in_channels=d.in_channels, **space_args)
            rngs.append(rng_state())  # what the seed's own search holds at every epoch
            ctxs.append(SearchContext(net, settings, [], device, nn.CrossEntropyLoss()))
        tracker = Tracker(job.tracking_uri)
        run_ids: list[str] = []
        for t, r, d in zip(mine, resumes, data, strict=True):
            if r is not None:
                run_ids.append(r["mlflow_run_id"])
                tracker.reopen(r["mlflow_run_id"])
                continue
            remove_checkpoints(checkpoint_path(job.checkpoint_dir, t))
            run_id = tracker.start_run(
                job.experiment_id,
                child_run_name(t.experiment, t.budget, t.seed),
                search_tags(t),
                job.parent_run_id,
            )
            tracker.log_params(run_id, flatten(t.config))
            tracker.log_params(run_id, flatten({"seed": t.seed, "data": {"split": d.split}}))
            run_ids.append(run_id)
        packed = {
            "seeds": [t.seed for t in mine],
            "graph": device.type == "cuda",
            "fused": bool(space_args.get("fused", False)),
            "measured": measured,
        }
        loggers = [
            epoch_logger(
                t, space, ctx.supernet, evaluator, tracker, run_id, progress,
                f"[{t.suite}/{t.experiment} {t.budget} seed {t.seed} (packed)]",
            )  # fmt: skip
            for t, ctx, run_id in zip(mine, ctxs, run_ids, strict=True)
        ]
        ckpts = [checkpoint_path(job.checkpoint_dir, t) for t in mine]
        earlier = [
            _earlier(clock_path(c)) if r is not None else []
            for c, r in zip(ckpts, resumes, strict=True)
        ]
        start = time.perf_counter()
        k = len(mine)

        def checkpoint(i: int, state: dict[str, Any]) -> None:
            payload = {
                "config_hash": mine[i].search_key,
                "mlflow_run_id": run_ids[i],
                "parent_run_id": job.parent_run_id,
                "engine": state,
                "packed": packed,
            }
            save_checkpoint(ckpts[i], payload)
            _write_share(clock_path(ckpts[i]), earlier[i], (time.perf_counter() - start) / k)

        progress(f"{label} searching {k} seeds in one packed step on {device}")
        try:
            run_packed_search(
                ctxs,
                [d.loader for d in data],
                data[0].steps_per_epoch,
                on_epoch_end=lambda i, log: loggers[i](log),
                checkpoint=checkpoint,
                resumes=resumes,
                rng_states=rngs,
                optimizer_impl="fused" if device.type == "cuda" else "default",
                graph=device.type == "cuda",
            )
        except BaseException as exc:
            for c, run_id in zip(ckpts, run_ids, strict=True):
                if not c.exists():  # no checkpoint names this run: nothing will continue it
                    fail_run(tracker, run_id, exc, "FAILED")
            raise
    return {"packed": True, **packed}
