"""`retrain`: train a DARTS-cell genotype's evaluation network from scratch and test it.

One training per requested dataset that `recipes` covers, with the recipe's settings:

    evaluator: retrain
    evaluator_args:
      recipes:
        cifar10: {layers: 20, init_channels: 36, epochs: 600, batch_size: 96, lr: 0.025,
                  lr_schedule: cosine, lr_min: 0.0, momentum: 0.9, weight_decay: 3.0e-4,
                  grad_clip: 5.0, cutout: 16, drop_path: 0.2, auxiliary_weight: 0.4}
      # run-level keys (a budget's evaluator_args lands here and overrides every recipe):
      dataset: digits, epochs: 1, max_steps: 4, batch_size: 16, layers: 2, init_channels: 4,
      image_size: 16

The training loop is quark0/darts cnn/train.py (CIFAR) and train_imagenet.py / PC-DARTS
train_imagenet.py (ImageNet): SGD with momentum and weight decay on *all* parameters (timm's
`create_optimizer_v2` would exempt biases and BN; DARTS does not), the learning rate set per
epoch, drop-path ramped as 0.2·epoch/epochs, the auxiliary loss weighted by 0.4, gradients
clipped to norm 5, and the test set evaluated after every epoch; the final epoch's accuracy is
the result (quark0's protocol), or with `report: best` the best epoch's (what some papers
print); both are recorded in `source.runs.<dataset>`. timm supplies the cosine and step schedules,
label smoothing, drop-path, gradient clipping, EMA and the ImageNet transforms.

Nothing is made up: a metric is returned only for a dataset that was trained and tested here;
`source` records the resolved recipe, the data actually used, the epochs and steps actually
run, and whether the run was reduced (a smoke run, a substituted dataset, a step cap).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from nasrepro._compat import ensure_torchvision
from nasrepro.catalog import Arg, Bool, Choice, Int, Map, Str, register_evaluator
from nasrepro.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, stage_path
from nasrepro.distributed import (
    Dist,
    EpochShards,
    device_ids,
    launch,
    primary_device,
    sync_batch_norm,
)
from nasrepro.evaluate.nb201 import LookupResult
from nasrepro.progress import Bar
from nasrepro.search.engine import rng_state, set_rng_state

# --------------------------------------------------------------------------- options

SCHEDULES = ("cosine", "step", "linear")
NETS = ("cifar", "imagenet")

# quark0/darts cnn/train.py as the papers ran it (--auxiliary --cutout): 20 cells, 36
# channels, 600 epochs, batch 96, SGD 0.025 cosine to 0, momentum 0.9, wd 3e-4, clip 5,
# cutout 16, drop-path 0.2, auxiliary weight 0.4.
CIFAR_RECIPE: dict[str, Any] = {
    "layers": 20,
    "init_channels": 36,
    "epochs": 600,
    "batch_size": 96,
    "lr": 0.025,
    "lr_schedule": "cosine",
    "lr_min": 0.0,
    "lr_gamma": 0.97,
    "lr_decay_period": 1,
    "warmup_epochs": 0,
    "momentum": 0.9,
    "weight_decay": 3e-4,
    "grad_clip": 5.0,
    "cutout": 16,
    "drop_path": 0.2,
    "auxiliary_weight": 0.4,
    "label_smoothing": 0.0,
    "ema_decay": None,
    # fp32 as the papers trained. `bf16` (autocast) is an opt-in variant that changes the
    # math: a different recipe, so its retrainings are other units and its experiments
    # other trials, never judged as an fp32 claim unless the suite points a claim at it.
    "precision": "fp32",
}
PRECISIONS = ("fp32", "bf16")
# quark0/darts cnn/train_imagenet.py (--auxiliary): 14 cells, 48 channels, 250 epochs,
# batch 128, SGD 0.1 with StepLR(1, γ=0.97), wd 3e-5, clip 5, label smoothing 0.1, no
# drop-path, auxiliary weight 0.4.
IMAGENET_RECIPE: dict[str, Any] = {
    **CIFAR_RECIPE,
    "layers": 14,
    "init_channels": 48,
    "epochs": 250,
    "batch_size": 128,
    "lr": 0.1,
    "lr_schedule": "step",
    "weight_decay": 3e-5,
    "cutout": 0,
    "drop_path": 0.0,
    "label_smoothing": 0.1,
}
RECIPE_KEYS = ("source", "net", *CIFAR_RECIPE)
# Keys of the run rather than of a recipe; only at the top level of evaluator_args.
RUN_KEYS = (
    "recipes",
    "dataset",
    "max_steps",
    "max_eval_batches",
    "image_size",
    "num_workers",
    "download",
    "fixture",
    "eval_every",
    "processes",
    "sync_bn",
    "report",
)
RUN_DEFAULTS: dict[str, Any] = {
    "dataset": None,  # train on this registered dataset instead of the recipe's (smoke)
    "max_steps": None,  # cap on optimizer steps per epoch
    "max_eval_batches": None,  # cap on test batches per evaluation
    "image_size": None,  # for datasets rendered at any size (digits) or resized (imagenet)
    "num_workers": 2,  # quark0 train.py DataLoader num_workers=2
    "download": False,
    "fixture": False,  # the caller declares the data a generated test fixture
    "eval_every": 1,  # quark0 evaluates the test set after every epoch
    # Data-parallel processes (nasrepro/distributed.py): None = one per GPU of the trial's
    # device (`cuda:0,1` → 2; one process on CPU or a single GPU); an integer forces that
    # many (on CPU: gloo, for tests).
    "processes": None,
    "sync_bn": True,  # batch-norm statistics over all processes = the single-process math
    # Which test accuracy the metrics report: `final` (the last epoch, quark0's protocol)
    # or `best` (the best epoch's, as some papers report); both are always recorded.
    "report": "final",
}
PCDARTS_TAIL_EPOCHS = 5  # PC-DARTS train_imagenet.py adjust_lr: `args.epochs - 5`, hard-coded
_WHERE = "evaluator retrain"


def _fail(where: str, key: str, value: Any, want: str) -> ValueError:
    return ValueError(f"{_WHERE}: {where}{key} = {value!r}: {want}")


def _int(where: str, key: str, v: Any, lo: int, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if type(v) is not int or v < lo:
        raise _fail(where, key, v, f"expected an integer >= {lo}")
    return v


def _float(
    where: str,
    key: str,
    v: Any,
    lo: float,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lb, hb = "(" if lo_open else "[", ")" if hi_open else "]"
        raise _fail(where, key, v, f"expected a number in {lb}{lo}, {hi}{hb}")
    return float(v)


def _check_recipe(where: str, recipe: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the recipe keys present (types and ranges); returns a plain dict."""
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(
            f"{_WHERE}: {where}unknown key(s) {unknown}; known: {', '.join(RECIPE_KEYS)}"
        )
    r = dict(recipe)
    for key in ("layers", "init_channels", "epochs", "batch_size", "lr_decay_period"):
        if key in r:
            _int(where, key, r[key], 1)
    for key in ("warmup_epochs", "cutout"):
        if key in r:
            _int(where, key, r[key], 0)
    if "lr" in r:
        _float(where, "lr", r["lr"], 0.0, lo_open=True)
    for key in ("lr_min", "momentum", "weight_decay", "auxiliary_weight"):
        if key in r:
            _float(where, key, r[key], 0.0)
    if "lr_gamma" in r:
        _float(where, "lr_gamma", r["lr_gamma"], 0.0, 1.0, lo_open=True)
    if "grad_clip" in r and r["grad_clip"] is not None:
        _float(where, "grad_clip", r["grad_clip"], 0.0, lo_open=True)
    for key in ("drop_path", "label_smoothing"):
        if key in r:
            _float(where, key, r[key], 0.0, 1.0, hi_open=True)
    if r.get("ema_decay") is not None:
        _float(where, "ema_decay", r["ema_decay"], 0.0, 1.0, lo_open=True, hi_open=True)
    if "lr_schedule" in r and r["lr_schedule"] not in SCHEDULES:
        raise _fail(where, "lr_schedule", r["lr_schedule"], f"one of {', '.join(SCHEDULES)}")
    if "precision" in r and r["precision"] not in PRECISIONS:
        raise _fail(where, "precision", r["precision"], f"one of {', '.join(PRECISIONS)}")
    if "net" in r and r["net"] not in NETS:
        raise _fail(where, "net", r["net"], f"one of {', '.join(NETS)}")
    if "source" in r and not isinstance(r["source"], str):
        raise _fail(where, "source", r["source"], "a string naming where the recipe comes from")
    return r


def _check_run(options: Mapping[str, Any]) -> dict[str, Any]:
    run = {**RUN_DEFAULTS, **{k: options[k] for k in RUN_KEYS if k in options and k != "recipes"}}
    if run["dataset"] is not None and not isinstance(run["dataset"], str):
        raise _fail("", "dataset", run["dataset"], "a registered dataset name")
    _int("", "max_steps", run["max_steps"], 1, allow_none=True)
    _int("", "max_eval_batches", run["max_eval_batches"], 1, allow_none=True)
    _int("", "image_size", run["image_size"], 8, allow_none=True)
    _int("", "num_workers", run["num_workers"], 0)
    _int("", "eval_every", run["eval_every"], 1)
    _int("", "processes", run["processes"], 1, allow_none=True)
    for key in ("download", "fixture", "sync_bn"):
        if not isinstance(run[key], bool):
            raise _fail("", key, run[key], "true or false")
    if run["report"] not in ("final", "best"):
        raise _fail("", "report", run["report"], "final or best")
    return run


# --------------------------------------------------------------------------- pieces


class Cutout:
    """quark0 cnn/utils.py Cutout(length): zero a length x length square (clipped at the
    border) centred on a uniformly drawn pixel of the normalized CHW tensor. Draws from
    torch's generator, which DataLoader seeds per worker (quark0 used numpy's)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        y = int(torch.randint(h, (1,)))
        x = int(torch.randint(w, (1,)))
        half = self.length // 2
        y1, y2 = max(0, y - half), min(h, y + half)
        x1, x2 = max(0, x - half), min(w, x + half)
        img = img.clone()
        img[..., y1:y2, x1:x2] = 0.0
        return img

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


class _WithCutout(Dataset):
    """A dataset whose images get `Cutout` after their own transform (quark0 appends it
    after Normalize)."""

    def __init__(self, data: Dataset, length: int) -> None:
        self.data = data
        self.cutout = Cutout(length)

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.data[index]
        return self.cutout(x), y


def _on_device_recipe(wanted: bool, train: Any, test: Any, name: str) -> Any:
    """The augmentation recipe when the retraining's images can live on the device (uint8
    arrays under the DARTS-script transforms), else None (the DataLoader stays)."""
    if not wanted:
        return None
    from nasrepro.datasets.device_data import supported

    r = supported(train, name, "darts")
    return r if r is not None and supported(test, name, "darts", train=False) == r else None


def pcdarts_linear_lr(epoch: int, epochs: int, lr: float, warmup_epochs: int) -> float:
    """PC-DARTS train_imagenet.py: `adjust_lr` decays linearly, lr·(E−5−e)/(E−5), with a
    gentler slope lr·(E−e)/((E−5)·5) over the last 5 epochs; the warm-up then overrides the
    first epochs with lr·(e+1)/5 (`if epoch < 5 and batch_size > 256`; the recipe states
    `warmup_epochs` explicitly instead of keying it on the batch size).

    Runs of at most 5 epochs (reduced budgets), where the reference formula divides by zero or
    turns negative, decay as lr·(E−e)/E after the warm-up: no tail."""
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is not in [0, {epochs})")
    if epoch < warmup_epochs:
        return lr * (epoch + 1) / warmup_epochs
    tail = PCDARTS_TAIL_EPOCHS if epochs > PCDARTS_TAIL_EPOCHS else 0
    if epochs - epoch > tail:
        return lr * (epochs - tail - epoch) / (epochs - tail)
    return lr * (epochs - epoch) / ((epochs - tail) * tail)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Mapping[str, Any]) -> Any:
    """A timm scheduler stepped with `step(epoch + 1)` after each epoch: `cosine` (quark0
    CosineAnnealingLR(epochs) to lr_min) and `step` (quark0 StepLR(period, γ)) from timm's
    `create_scheduler_v2`; `linear` is PC-DARTS' schedule as a timm `Scheduler`. timm's
    `poly` with warm-up is not that schedule (it warms from warmup_lr, not lr/5, and decays
    over all epochs without PC-DARTS' last-5-epoch tail), so it is not used."""
    ensure_torchvision()  # timm imports torchvision (docs/stack.md)
    from timm.scheduler import create_scheduler_v2
    from timm.scheduler.scheduler import Scheduler

    epochs, kind = recipe["epochs"], recipe["lr_schedule"]
    if kind != "linear" and recipe["warmup_epochs"]:
        raise ValueError(f"{_WHERE}: warmup_epochs is defined for lr_schedule linear only")
    if kind == "cosine":
        sched, _ = create_scheduler_v2(
            optimizer, "cosine", num_epochs=epochs, min_lr=recipe["lr_min"], warmup_epochs=0
        )
        return sched
    if kind == "step":
        sched, _ = create_scheduler_v2(
            optimizer,
            "step",
            num_epochs=epochs,
            decay_epochs=recipe["lr_decay_period"],
            decay_rate=recipe["lr_gamma"],
            warmup_epochs=0,
        )
        return sched
    if recipe["lr_min"]:
        raise ValueError(f"{_WHERE}: the linear (PC-DARTS) schedule has no lr_min; set it to 0")

    class PcDartsLinear(Scheduler):
        def _get_lr(self, t: int) -> list[float]:
            e = min(t, epochs - 1)
            return [
                pcdarts_linear_lr(e, epochs, base, recipe["warmup_epochs"])
                for base in self.base_values
            ]

    sched = PcDartsLinear(optimizer, "lr", t_in_epochs=True)
    sched.step(0)  # the first epoch's lr (warm-up starts at lr/warmup_epochs)
    return sched


def _criterion(label_smoothing: float) -> nn.Module:
    if label_smoothing > 0:
        # timm's LabelSmoothingCrossEntropy = PC-DARTS/quark0 CrossEntropyLabelSmooth:
        # (1−ε)·NLL + ε·mean over classes of −log p.
        ensure_torchvision()
        from timm.loss import LabelSmoothingCrossEntropy

        return LabelSmoothingCrossEntropy(smoothing=label_smoothing)
    return nn.CrossEntropyLoss()


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _topk_correct(logits: torch.Tensor, y: torch.Tensor, k: int) -> tuple[int, int]:
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit = top.eq(y.view(-1, 1))
    return int(hit[:, :1].sum()), int(hit.any(dim=1).sum())


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    max_batches: int | None,
    ddp: Dist | None = None,
) -> dict[str, float]:
    """Top-1/top-5 accuracy (%) and cross-entropy over the loader (quark0 `infer`); with
    `ddp`, over every rank's shard of the test set."""
    model.eval()
    ce = nn.CrossEntropyLoss(reduction="sum")
    n = top1 = top5 = 0
    loss = 0.0
    batches = 0
    with torch.no_grad():
        for x, y in loader:
            if max_batches is not None and batches >= max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss += float(ce(logits, y))
            c1, c5 = _topk_correct(logits, y, 5)
            top1, top5, n = top1 + c1, top5 + c5, n + len(y)
            batches += 1
    if ddp is not None:
        top1, top5, loss, n, batches = ddp.sum([top1, top5, loss, n, batches])
    if n == 0:
        raise ValueError(f"{_WHERE}: the test set yielded no images")
    return {
        "acc": 100.0 * top1 / n,
        "top5": 100.0 * top5 / n,
        "loss": loss / n,
        "images": float(n),
        "batches": float(batches),
    }


def train_batches(
    train_set: Dataset, batch: int, sampler: Any, workers: int, device: torch.device
) -> Any:
    """The retraining's batches: the same images, augmentations and order whatever builds
    them. The seam for a GPU data path (decoding and augmenting on the device, issue #20):
    it replaces this loader, keeping the sampler's epoch-indexed order."""
    return DataLoader(
        train_set,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


# --------------------------------------------------------------------------- evaluator

_DARTS_CELL_SPACES = ("darts", "s1", "s2", "s3", "s4")


def _check_retrain_args(args: dict[str, Any], eval_datasets: list[str]) -> None:
    """What `validate` checks beyond single arguments: the options build, and every
    evaluation dataset has a recipe (a dataset without one would be skipped silently)."""
    evaluator = RetrainEvaluator(**args)
    missing = [ds for ds in eval_datasets if ds not in evaluator.recipes]
    if missing:
        raise ValueError(
            f"no recipe for eval dataset(s) {missing}; recipes cover {sorted(evaluator.recipes)}"
        )


@register_evaluator(
    "retrain",
    "train the genotype's DARTS evaluation network, test accuracy",
    # types here; ranges and recipe contents are RetrainEvaluator's own checks (the `check`)
    args={
        "recipes": Map(required=True),
        "dataset": Str(nullable=True),
        "max_steps": Int(1, nullable=True),
        "max_eval_batches": Int(1, nullable=True),
        "image_size": Int(8, nullable=True),
        "num_workers": Int(0),
        "download": Bool(),
        "fixture": Bool(),
        "eval_every": Int(1),
        "processes": Int(1, nullable=True),
        "sync_bn": Bool(),
        "report": Choice("final", "best"),
        **{key: Arg("any") for key in RECIPE_KEYS},
    },
    datasets=None,
    check=_check_retrain_args,
)
class RetrainEvaluator:
    """Retrain a DARTS-cell genotype per dataset recipe (quark0 / PC-DARTS protocols).

    Options: `recipes` {eval dataset: recipe} (required; recipe keys and their defaults in
    CIFAR_RECIPE / IMAGENET_RECIPE, plus `source` and `net`), and run-level keys
    (RUN_DEFAULTS). Any recipe key given at the top level overrides it in every recipe: this
    is how a budget's `evaluator_args` shrinks the runs.
    """

    def __init__(self, **options: Any) -> None:
        from nasrepro import catalog

        allowed = set(RUN_KEYS) | set(RECIPE_KEYS)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(
                f"{_WHERE}: unknown option(s) {unknown}; run keys: {', '.join(RUN_KEYS)}; "
                f"recipe keys: {', '.join(RECIPE_KEYS)}"
            )
        recipes = options.get("recipes")
        if not isinstance(recipes, Mapping) or not recipes:
            raise ValueError(
                f"{_WHERE}: `recipes` must map each eval dataset to a training recipe, e.g. "
                "recipes: {cifar10: {epochs: 600, ...}}"
            )
        known = catalog.names("dataset")
        self.options = dict(options)  # what a data-parallel worker rebuilds this from
        self.overrides = _check_recipe(
            "", {k: v for k, v in options.items() if k in RECIPE_KEYS and k != "source"}
        )
        if "source" in options:
            raise ValueError(f"{_WHERE}: `source` belongs inside a recipe, not at the top level")
        self.run = _check_run(options)
        if self.run["dataset"] is not None and self.run["dataset"] not in known:
            raise _fail("", "dataset", self.run["dataset"], f"one of {', '.join(known)}")
        self.recipes: dict[str, dict[str, Any]] = {}
        self.paper_recipes: dict[str, dict[str, Any]] = {}
        for ds, recipe in recipes.items():
            if ds not in known:
                raise ValueError(
                    f"{_WHERE}: recipes.{ds}: not a registered dataset ({', '.join(known)})"
                )
            if not isinstance(recipe, Mapping):
                raise ValueError(f"{_WHERE}: recipes.{ds} must be a mapping of recipe keys")
            given = _check_recipe(f"recipes.{ds}.", recipe)
            base = IMAGENET_RECIPE if ds == "imagenet" else CIFAR_RECIPE
            paper = {**base, **given}
            resolved = {**paper, **self.overrides}
            self._check_consistency(ds, resolved)
            self.paper_recipes[ds] = paper
            self.recipes[ds] = resolved

    @staticmethod
    def _check_consistency(ds: str, r: Mapping[str, Any]) -> None:
        where = f"recipes.{ds} (with overrides)"
        if r["lr_schedule"] != "linear" and r["warmup_epochs"]:
            raise ValueError(f"{_WHERE}: {where}: warmup_epochs needs lr_schedule linear")
        if r["lr_schedule"] == "linear":
            if r["lr_min"]:
                raise ValueError(f"{_WHERE}: {where}: lr_schedule linear (PC-DARTS) has no lr_min")

    def score(
        self, genotype_str: str, datasets: list[str], metrics: list[str], **runtime: Any
    ) -> LookupResult:
        """Train and test the genotype's network on each dataset with a recipe.

        `runtime`: space, data_root, device, seed, checkpoint, log(metrics, step),
        progress(line), tracking (uri, run_id: where data-parallel workers log), as the trial
        passes them; all optional here (defaults: darts, env data root, cpu, 0, none).
        With `checkpoint` (the trial's checkpoint file) every epoch is checkpointed beside
        it and a killed retraining resumes; a dataset already finished is not retrained.
        """
        space = runtime.get("space") or "darts"
        if space not in _DARTS_CELL_SPACES:
            raise ValueError(
                f"{_WHERE}: retrains DARTS-cell genotypes ({', '.join(_DARTS_CELL_SPACES)}), "
                f"not space {space!r}"
            )
        genotype = self._parse(space, genotype_str)
        covered = [ds for ds in datasets if ds in self.recipes]
        if not covered:
            raise ValueError(
                f"{_WHERE}: no recipe for any of {datasets}; recipes cover {sorted(self.recipes)}"
            )
        log: Callable[[dict[str, float], int], None] = runtime.get("log") or (lambda m, s: None)
        progress: Callable[[str], None] = runtime.get("progress") or (lambda line: None)
        device = str(runtime.get("device") or "cpu")
        seed = int(runtime.get("seed") or 0)
        ckpt = runtime.get("checkpoint")
        gpus = device_ids(device)
        processes = self.run["processes"] or (len(gpus) if gpus else 1)
        values: dict[str, dict[str, float]] = {}
        runs: dict[str, Any] = {}
        for ds in covered:
            if self.recipes[ds]["batch_size"] % processes:
                raise ValueError(
                    f"{_WHERE}: recipes.{ds}.batch_size {self.recipes[ds]['batch_size']} is "
                    f"not divisible by the {processes} data-parallel processes"
                )
        for ds in covered:
            path = None if ckpt is None else stage_path(Path(ckpt), f"retrain-{ds}")
            if processes == 1:
                values[ds], runs[ds] = self.train_on(
                    ds,
                    genotype,
                    runtime.get("data_root"),
                    torch.device(primary_device(device)),
                    seed,
                    log,
                    progress,
                    path,
                    channels_last=bool(runtime.get("channels_last")),
                    on_device=bool(runtime.get("data_on_device")),
                )
                continue
            spec = {
                "options": self.options,
                "dataset": ds,
                "genotype": genotype.to_str(),
                "data_root": runtime.get("data_root"),
                "seed": seed,
                "checkpoint": None if path is None else str(path),
                "tracking": runtime.get("tracking"),
                "channels_last": bool(runtime.get("channels_last")),
            }
            workdir = Path(ckpt).parent if ckpt is not None else Path.cwd() / "checkpoints"
            out = launch(
                "nasrepro.evaluate.retrain_worker",
                spec,
                processes,
                workdir / f"ddp-{seed}-{ds}",
                progress,
                gpus,
            )
            values[ds], runs[ds] = out["values"], out["info"]
        produced = {m for vals in values.values() for m in vals}
        source: dict[str, object] = {
            "backend": "retrain",
            "genotype": genotype.to_str(),
            "space": space,
            "runs": runs,
            "not_covered": [ds for ds in datasets if ds not in self.recipes],
            "unavailable": sorted(m for m in metrics if m not in produced),
            "smoke": any(r["smoke"] for r in runs.values()),
            "reduced": any(r["reduced"] for r in runs.values()),
            "fixture": bool(self.run["fixture"]),
        }
        return LookupResult(values, -1, genotype.to_str(), source)

    def complexity(self, ds: str, genotype_str: str, space: str = "darts") -> dict[str, float]:
        """Parameters and FLOPs (M) of the network `train_on` would train on `ds`, counted
        as it counts them, without training: a dataset no claim reads accuracy on is not
        retrained, but its cell's size is still recorded."""
        ensure_torchvision()
        import timm

        from nasrepro.datasets import get_source
        from nasrepro.nets.darts_eval import MODEL_NAMES, count_eval_flops, count_eval_params

        genotype = self._parse(space, genotype_str)
        r, run = self.recipes[ds], self.run
        train_name = run["dataset"] or ds
        source = get_source(train_name)(run["image_size"])
        net = r.get("net") or ("imagenet" if train_name == "imagenet" else "cifar")
        model = timm.create_model(
            MODEL_NAMES[net],
            genotype=genotype,
            num_classes=source.num_classes,
            layers=r["layers"],
            init_channels=r["init_channels"],
            auxiliary=r["auxiliary_weight"] > 0,
            drop_path_rate=r["drop_path"],
            in_chans=source.in_channels,
        )
        return {
            "params_m": count_eval_params(model) / 1e6,
            "flops_m": count_eval_flops(model, source.image_size, source.in_channels) / 1e6,
        }

    @staticmethod
    def _parse(space: str, text: str) -> Any:
        from nasrepro.nets.genotypes import get_genotype
        from nasrepro.spaces import build_space

        genotype = get_genotype(text)
        # the space's own check: each op must be one its edge could have chosen
        build_space(space).parse_genotype(genotype.to_str())
        return genotype

    def _data(self, train_name: str, image_size: int | None, root: Any) -> tuple[Any, Any, Any]:
        from nasrepro.datasets import get_source, resolve_root

        source = get_source(train_name)(image_size)
        data_root = resolve_root(root) if source.needs_root else None
        protocol = "darts" if "darts" in source.protocols else None
        kw = {"download": self.run["download"], "protocol": protocol}
        train = source.dataset("train", data_root, augment=True, **kw)
        test = source.dataset("test", data_root, augment=False, **kw)
        return source, train, test

    def train_on(
        self,
        ds: str,
        genotype: Any,
        data_root: Any,
        device: torch.device,
        seed: int,
        log: Callable[[dict[str, float], int], None],
        progress: Callable[[str], None],
        checkpoint: Path | None = None,
        ddp: Dist | None = None,
        channels_last: bool = False,
        on_device: bool = False,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """Train and test on `ds`; with `ddp`, this process's share of a data-parallel run
        (rank 0 logs, reports and checkpoints). `channels_last` (`nasrepro run --fast`):
        network and batches in channels_last memory format, the same fp32 math up to
        rounding; recorded in the run's `speed_switches`, not in its identity. `on_device`:
        images held and augmented on `device` (datasets/device_data.py) where the data
        allow it, one process only."""
        ensure_torchvision()
        import timm
        from timm.utils import ModelEmaV3, dispatch_clip_grad

        from nasrepro.datasets.transforms import describe_transform
        from nasrepro.nets.darts_eval import MODEL_NAMES, count_eval_flops, count_eval_params

        ddp = ddp or Dist()
        r, run = self.recipes[ds], self.run
        key = f"{checkpoint.stem if checkpoint else ''}:{ds}:{genotype.to_str()}:{ddp.world}"
        state = self._resume(checkpoint, key, ddp, progress)
        if state is not None and state.get("finished"):
            progress(f"retrain {ds}: finished before the interruption, not retrained")
            return state["values"], state["info"]
        if r["batch_size"] % ddp.world:
            raise ValueError(
                f"{_WHERE}: recipes.{ds}.batch_size {r['batch_size']} is not divisible by "
                f"the {ddp.world} data-parallel processes"
            )
        train_name = run["dataset"] or ds
        start = time.perf_counter()
        _seed(seed)  # the same initial network in every process
        source, train_set, test_set = self._data(train_name, run["image_size"], data_root)
        images = _on_device_recipe(on_device and ddp.world == 1, train_set, test_set, train_name)
        net = r.get("net") or ("imagenet" if train_name == "imagenet" else "cifar")
        transform = describe_transform(getattr(train_set, "transform", None))
        raw_train = train_set
        if r["cutout"]:
            train_set = _WithCutout(train_set, r["cutout"])
            transform += f", Cutout({r['cutout']})"
        pin = device.type == "cuda"
        workers = run["num_workers"]
        per_process = r["batch_size"] // ddp.world
        # Epoch-indexed shards: the same batches after a resume and, split over processes,
        # the single process's batches. Workers are not persistent: each epoch's workers
        # are seeded from the (checkpointed) torch RNG, so a resume sees the same crops.
        sampler = EpochShards(len(train_set), seed, ddp.rank, ddp.world)
        train_loader = train_batches(train_set, per_process, sampler, workers, device)
        test_loader = DataLoader(
            test_set,
            batch_size=per_process,
            sampler=EpochShards(len(test_set), 0, ddp.rank, ddp.world, False, False),
            num_workers=workers,
            pin_memory=pin,
        )
        if images is not None:  # the same sampler's indices, augmented on the device
            from nasrepro.datasets.device_data import DeviceTrainLoader

            train_loader = DeviceTrainLoader(  # type: ignore[assignment]
                raw_train, images, per_process, sampler, seed, device, r["cutout"]
            )
            test_loader = DeviceTrainLoader(  # type: ignore[assignment]
                test_set, images, per_process, test_loader.sampler, seed, device, train=False
            )
            transform += f" (on {device}: nasrepro/datasets/device_data.py)"
        model = timm.create_model(
            MODEL_NAMES[net],
            genotype=genotype,
            num_classes=source.num_classes,
            layers=r["layers"],
            init_channels=r["init_channels"],
            auxiliary=r["auxiliary_weight"] > 0,
            drop_path_rate=r["drop_path"],
            in_chans=source.in_channels,
        )
        params = count_eval_params(model)
        flops = count_eval_flops(model, source.image_size, source.in_channels)
        if ddp.world > 1 and run["sync_bn"]:
            model = sync_batch_norm(model, device.type == "cuda")
        model.to(device)
        memory = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            model.to(memory_format=memory)
        autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if r["precision"] == "bf16"
            else contextlib.nullcontext()
        )
        trained: nn.Module = model
        if ddp.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            _seed(seed + 7919 * ddp.rank)  # own crops, cutouts and drop-path masks per rank
        # all parameters decay, auxiliary tower included (quark0 train.py SGD(model.parameters()))
        optimizer = torch.optim.SGD(
            model.parameters(), r["lr"], momentum=r["momentum"], weight_decay=r["weight_decay"]
        )
        scheduler = build_scheduler(optimizer, r)
        criterion = _criterion(r["label_smoothing"]).to(device)
        ema = ModelEmaV3(model, decay=r["ema_decay"]) if r["ema_decay"] else None
        epochs = r["epochs"]
        steps_per_epoch = len(train_loader)
        if run["max_steps"] is not None:
            steps_per_epoch = min(steps_per_epoch, run["max_steps"])
        history: list[dict[str, float]] = []
        last_test: dict[str, float] | None = None
        best: list[Any] = [-1.0, -1, float("nan")]  # test acc, epoch, top-5 of the best epoch
        first = 0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            set_rng_state(state["rng"][ddp.rank])
            history, best, last_test = state["history"], state["best"], state["last_test"]
            best = [*best, float("nan")][:3]  # checkpoints before the top-5 entry
            first = len(history)
            progress(f"retrain {ds}: resuming after epoch {first} from {checkpoint}")

        def save(finished: bool, extra: dict[str, Any]) -> None:
            rngs = ddp.gather(rng_state())
            if checkpoint is not None and ddp.main:
                save_checkpoint(
                    checkpoint,
                    {
                        "config_hash": key,
                        "finished": finished,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "ema": None if ema is None else ema.state_dict(),
                        "rng": rngs,
                        "history": history,
                        "best": best,
                        "last_test": last_test,
                        **extra,
                    },
                )
            ddp.barrier()

        bar = Bar(f"retrain {ds}", (epochs - first) * steps_per_epoch)
        for epoch in range(first, epochs):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            drop = model.set_drop_path(epoch, epochs)
            sampler.set_epoch(epoch)
            trained.train()
            tot_loss, correct, seen = 0.0, 0, 0
            for step, (x, y) in enumerate(bar.iterate(train_loader)):
                if step >= steps_per_epoch:
                    break
                x = x.to(device, non_blocking=True, memory_format=memory)
                y = y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with autocast:
                    out = trained(x)
                    logits, aux = out if isinstance(out, tuple) else (out, None)
                    loss = criterion(logits, y)
                    if aux is not None:
                        loss = loss + r["auxiliary_weight"] * criterion(aux, y)
                loss.backward()
                if r["grad_clip"]:
                    dispatch_clip_grad(model.parameters(), r["grad_clip"], mode="norm")
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                tot_loss += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
            scheduler.step(epoch + 1)
            tot_loss, correct, seen = ddp.sum([tot_loss, correct, seen])
            row = {
                "train_loss": tot_loss / max(seen, 1),
                "train_acc": 100.0 * correct / max(seen, 1),
                "lr": lr,
                "drop_path_prob": drop,
            }
            if (epoch + 1) % run["eval_every"] == 0 or epoch == epochs - 1:
                eval_model = ema.module if ema is not None else model
                last_test = evaluate(eval_model, test_loader, device, run["max_eval_batches"], ddp)
                row.update(test_acc=last_test["acc"], test_loss=last_test["loss"])
                if last_test["acc"] > best[0]:
                    best = [last_test["acc"], epoch, last_test["top5"]]
            row["epoch_seconds"] = time.perf_counter() - t0
            history.append(row)
            if ddp.main:
                log({f"retrain.{ds}.{k}": v for k, v in row.items()}, epoch)
                test_txt = f" test {row['test_acc']:.2f}%" if "test_acc" in row else ""
                progress(
                    f"retrain {ds} ({train_name}) epoch {epoch + 1}/{epochs} lr {lr:.4g} "
                    f"train {row['train_loss']:.3f}/{row['train_acc']:.1f}%{test_txt} "
                    f"({row['epoch_seconds']:.1f}s)"
                )
            if epoch + 1 < epochs:
                save(False, {})
        bar.close()
        assert last_test is not None  # the last epoch always evaluates
        reported = last_test if run["report"] == "final" else {"acc": best[0], "top5": best[2]}
        values = {
            "test_acc": reported["acc"],
            "test_err": 100.0 - reported["acc"],
            "top1_err": 100.0 - reported["acc"],
            "top5_err": 100.0 - reported["top5"],
            "params_m": params / 1e6,
            "flops_m": flops / 1e6,
        }
        overridden = {k: v for k, v in self.overrides.items() if self.paper_recipes[ds].get(k) != v}
        full_epoch = steps_per_epoch == len(train_loader)
        full_test = last_test["images"] == len(test_set)
        info = {
            "recipe": r,
            "recipe_source": r.get("source"),
            "paper_recipe": self.paper_recipes[ds],
            "overridden": overridden,
            "trained_on": train_name,
            "substituted": train_name != ds,
            "net": net,
            "model": MODEL_NAMES[net],
            "image_size": source.image_size,
            "num_classes": source.num_classes,
            "train_size": len(train_set),
            "test_size": len(test_set),
            "test_images_evaluated": int(last_test["images"]),
            "train_transform": transform,
            "epochs_planned": epochs,
            "epochs_run": len(history),
            "steps_per_epoch": steps_per_epoch,
            "full_epochs": full_epoch,
            "max_steps_per_epoch": run["max_steps"],
            "processes": ddp.world,
            "batch_per_process": per_process,
            "sync_bn": bool(run["sync_bn"]) if ddp.world > 1 else None,
            "params": params,
            "params_convention": "all parameters except the auxiliary tower (quark0 "
            "count_parameters_in_MB: names containing 'auxiliary' excluded)",
            "flops": flops,
            "flops_convention": "multiply-adds per image, eval mode (no auxiliary tower), "
            "convolutions + linear layers with bias (conv_fc, nasrepro.complexity)",
            "weights_evaluated": "ema" if ema is not None else "final",
            "precision": r["precision"],
            "speed_switches": {"channels_last": channels_last},
            "final_epoch_test_acc": last_test["acc"],
            "final_epoch_top5": last_test["top5"],
            "best_test_acc": best[0],
            "best_epoch": best[1],
            "best_epoch_top5": best[2],
            "reported": run["report"],
            "seed": seed,
            "device": str(device),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "wall_seconds": time.perf_counter() - start,
            "resumed": state is not None,
            "history": history,
            "smoke": train_name != ds or not full_epoch or not full_test,
            "reduced": bool(overridden) or train_name != ds or not full_epoch or not full_test,
        }
        save(True, {"values": values, "info": info})
        return values, info

    @staticmethod
    def _resume(
        path: Path | None, key: str, ddp: Dist, progress: Callable[[str], None]
    ) -> dict[str, Any] | None:
        """The retraining's checkpoint, or None to start over (with the reason reported)."""
        if path is None or not path.exists():
            return None
        try:
            return load_checkpoint(path, key)
        except CheckpointError as exc:
            if ddp.main:
                progress(f"{exc}; retraining from the start")
            return None
