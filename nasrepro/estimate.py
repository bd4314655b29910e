"""Wall time a trial will take on a named device, from measured step times (no running).

estimate = search steps × search step time + PT tuning + retraining steps × retraining step
time. Step times come from `nasrepro/data/step_times.json` (benchmark rows, per device);
each is scaled to the trial's batch, number of cells, image area and methods, and every
scaling is listed in the estimate's `basis` with whether it is measured, scaled or assumed.
Not counted: data loading, per-epoch NB201 lookups and test passes, early stops (DARTS+,
DARTS-ES and selective stop can end sooner: their estimate is an upper bound).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

from nasrepro.jobs import Trial

# Images per set (torchvision / the ImageNet-1k train set; the NB201 split files'
# halves are counted from the shipped files in search_split).
TRAIN_IMAGES = {
    "cifar10": 50_000,
    "cifar100": 50_000,
    "svhn": 73_257,
    "imagenet": 1_281_167,
    "imagenet16-120": 151_700,
    "digits": 1_797,
}
NATIVE_SIZE = {"cifar10": 32, "cifar100": 32, "svhn": 32, "imagenet16-120": 16, "imagenet": 224}
# Feature-map side after the stem: the ImageNet stems (search: PC-DARTS' three stride-2
# convs; evaluation: quark0's) reduce 224 to 28 before the first cell.
STEM_REDUCTION = {"imagenet": 8}


@cache
def step_times() -> dict[str, Any]:
    text = resources.files("nasrepro.data").joinpath("step_times.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def devices() -> list[str]:
    return sorted(step_times()["devices"])


@cache
def _split_len(name: str, half: str) -> int:
    from nasrepro.datasets.splits import load_split

    return len(load_split(name)[half])


# The protocols each dataset offers, first = its default (nasrepro/datasets/*.py).
PROTOCOLS = {
    "cifar10": ("nb201", "darts"),
    "cifar100": ("nb201", "darts"),
    "svhn": ("darts",),
    "imagenet16-120": ("nb201",),
    "imagenet": ("darts",),
    "digits": ("holdout",),
}


def _protocol(dataset: str, space: str, search: dict[str, Any]) -> str | None:
    """The search-data protocol the run would use: the one the suite names, else the
    space's own where the harness resolves it by space, else the dataset's default."""
    offered = PROTOCOLS.get(dataset)
    if offered is None:
        return None
    if search.get("data_protocol"):
        return str(search["data_protocol"])
    from nasrepro.datasets import search as search_data

    by_space = getattr(search_data, "space_protocol", None)
    if by_space is not None:
        own = by_space(space)
        if own in offered:
            return str(own)
    return offered[0]


def search_split(dataset: str, search: dict[str, Any], space: str = "nb201") -> dict[str, Any]:
    """Which set and how many images the search trains weights and α on, after
    `train_limit` (counted from the split files and set sizes; nothing is loaded)."""
    protocol = _protocol(dataset, space, search)
    n = TRAIN_IMAGES.get(dataset, 0)
    if protocol == "nb201" and dataset == "cifar10":
        sides = {
            "weights": ("train", "cifar-split.txt train", _split_len("cifar-split.txt", "train")),
            "arch": ("train", "cifar-split.txt valid", _split_len("cifar-split.txt", "valid")),
        }
    elif protocol == "nb201":
        file = (
            "cifar100-test-split.txt" if dataset == "cifar100" else "imagenet-16-120-test-split.txt"
        )
        sides = {
            "weights": ("train", "all", n),
            "arch": ("test", f"{file} xvalid", _split_len(file, "xvalid")),
        }
    elif protocol == "darts" and dataset == "imagenet":
        sides = {
            "weights": ("train", "PC-DARTS proxy, 10% per class (≈)", round(0.1 * n)),
            "arch": ("train", "PC-DARTS proxy, 2.5% per class (≈)", round(0.025 * n)),
        }
    elif protocol == "darts":
        sides = {
            "weights": ("train", f"indices[:{n // 2}]", n // 2),
            "arch": ("train", f"indices[{n // 2}:{n}]", n - n // 2),
        }
    elif protocol == "holdout" and dataset == "digits":
        sides = {
            "weights": ("all", "seeded 50% holdout", n // 2),
            "arch": ("all", "seeded 25% holdout", n // 4),
        }
    else:
        return {"dataset": dataset, "protocol": protocol, "weights": None, "arch": None}
    limit = search.get("train_limit")
    out: dict[str, Any] = {"dataset": dataset, "protocol": protocol}
    for side, (part, which, size) in sides.items():
        out[side] = {"set": part, "indices": which, "images": min(size, limit) if limit else size}
    return out


def _image_area(dataset: str, image_size: int | None) -> float:
    side = image_size or NATIVE_SIZE.get(dataset, 32)
    side = side / STEM_REDUCTION.get(dataset, 1)
    return (side / 32) ** 2


def _cells(space: str, space_args: dict[str, Any]) -> int:
    if space == "nb201":
        return 3 * int(space_args.get("n", 5)) + 2  # N cells per stage, two reductions
    return int(space_args.get("layers", 8))


def _method_factor(config: dict[str, Any], basis: list[str]) -> float:
    factors = step_times()["method_factors"]
    total = 1.0
    for m in config["methods"]:
        args = config["method_args"].get(m, {})
        if m == "lambda":
            key = "lambda/forward_backward" if args.get("difference") == "forward_backward" else m
            total *= factors[key]["factor"]
            basis.append(f"{key} x{factors[key]['factor']} (measured, H200 ratio)")
        elif m == "pc":
            k = int(args.get("k", 4))
            total /= k
            basis.append(f"{m}: partial channels 1/{k} of the mixed-op cost (assumed)")
        elif m == "rdarts":  # R-DARTS: one whole search per grid point
            runs = len(args.get("weight_decays") or [0]) * len(args.get("drop_path_probs") or [0])
            total *= runs
            basis.append(f"{m}: x{runs}, one search per grid point (counted)")
        elif m not in ("darts",):
            basis.append(f"{m}: x1.0 (assumed, not measured)")
    return total


def _case(device: str, kind: str, basis: list[str]) -> dict[str, Any]:
    """A device's step time for `kind`; a case the device lacks is scaled from the H200's
    by the ratio of a case both have (the NB201 first-order step)."""
    cases = step_times()["devices"][device]["cases"]
    if kind in cases:
        case = cases[kind]
        basis.append(f"{device} {kind} {case['ms']} ms ({case['status']})")
        return dict(case)
    ref = step_times()["devices"]["h200"]["cases"]
    anchor = next((k for k in ("nb201/first", "darts/first") if k in cases), None)
    if anchor is None:
        raise ValueError(f"device {device!r} has no measured step times")
    ratio = cases[anchor]["ms"] / ref[anchor]["ms"]
    case = dict(ref[kind])
    case["ms"] = ref[kind]["ms"] * ratio
    basis.append(
        f"{device} {kind} {case['ms']:.0f} ms (scaled: H200 {kind} x {device}/H200 ratio of "
        f"{anchor}, {ratio:.1f})"
    )
    return case


def _search_step_ms(config: dict[str, Any], device: str, basis: list[str]) -> float:
    space = config["space"]
    search = config["search"]
    kind = ("nb201/" if space == "nb201" else "darts/") + (
        "second" if search["order"] == 2 else "first"
    )
    case = _case(device, kind, basis)
    if space not in ("nb201", "darts"):
        basis.append(f"{space}: DARTS-space step (8 ops per edge) used: an over-estimate")
    cells = _cells(space, config["space_args"])
    area = _image_area(config["dataset"], search.get("image_size"))
    scale = (search["batch_size"] / case["batch"]) * (cells / case["cells"]) * area
    if scale != 1:
        basis.append(
            f"search x{scale:.3g} (batch {search['batch_size']}/{case['batch']}, cells "
            f"{cells}/{case['cells']}, image area {area:.3g}; linear, channels not scaled)"
        )
    return float(case["ms"] * scale * _method_factor(config, basis))


def _pt_hours(
    config: dict[str, Any], step_ms: float, steps: int, arch_images: int, basis: list[str]
) -> float:
    """DARTS-PT tuning: its weight steps (≈ half a bilevel step, assumed) and its held-out
    evaluations (one forward pass per candidate op per decision ≈ 1/6 step, assumed)."""
    args = config["selector_args"]
    interval = int(args.get("proj_interval", 5))
    nb201 = config["space"] == "nb201"
    rounds = 6 if nb201 else 14 + 3
    tune = args.get("tune_epochs") or interval * (rounds - 1) + (0 if nb201 else 1)
    tuning = tune * steps * step_ms * 0.5
    evals = 0.0
    if config["selector"] == "pt":
        ops = 5 if nb201 else 8
        batches = math.ceil(arch_images / config["search"]["batch_size"])
        if args.get("eval_batches"):
            batches = min(batches, int(args["eval_batches"]))
        evals = rounds * ops * batches * step_ms / 6
    basis.append(
        f"{config['selector']}: {tune} tuning epochs (+ held-out evaluations), assumed costs"
    )
    return (tuning + evals) / 3.6e6


def _retrain_hours(config: dict[str, Any], device: str, basis: list[str]) -> float:
    if config["evaluator"] != "retrain":
        return 0.0
    from nasrepro.evaluate.retrain import CIFAR_RECIPE, IMAGENET_RECIPE

    args = config["evaluator_args"]
    total = 0.0
    case = _case(device, "retrain/darts", basis)
    for ds in config["eval_datasets"]:
        base = IMAGENET_RECIPE if ds == "imagenet" else CIFAR_RECIPE
        recipe = {**base, **(args.get("recipes", {}).get(ds) or {})}
        train_on = args.get("dataset") or ds
        n = TRAIN_IMAGES.get(train_on, 50_000)
        per_epoch = math.ceil(n / recipe["batch_size"])
        if args.get("max_steps"):
            per_epoch = min(per_epoch, int(args["max_steps"]))
        area = _image_area(train_on, args.get("image_size"))
        scale = (
            (recipe["batch_size"] / case["batch"])
            * (recipe["layers"] / case["cells"])
            * (recipe["init_channels"] / case["channels"]) ** 2
            * area
        )
        hours = recipe["epochs"] * per_epoch * case["ms"] * scale / 3.6e6
        basis.append(
            f"retrain {ds}: {recipe['epochs']} epochs x {per_epoch} steps x "
            f"{case['ms'] * scale:.0f} ms (batch, cells, channels², image area scaled)"
        )
        total += hours
    return total


def estimate(trial: Trial, device: str) -> dict[str, Any]:
    """Hours of wall time of one trial on `device`, by stage, with how each was derived."""
    if device not in step_times()["devices"]:
        raise ValueError(f"unknown device {device!r} (known: {', '.join(devices())})")
    cfg = trial.config
    basis: list[str] = []
    if cfg.get("search") is None:  # a published cell (`genotype:`): evaluation only
        eval_h = _retrain_hours(cfg, device, basis)
        gpu = bool(step_times()["devices"][device]["gpu"])
        return {
            "search_steps": 0,
            "steps_per_epoch": 0,
            "search_step_ms": 0.0,
            "search_hours": 0.0,
            "select_hours": 0.0,
            "eval_hours": round(eval_h, 4),
            "hours": round(eval_h, 4),
            "gpu_hours": round(eval_h, 4) if gpu else None,
            "basis": [
                "no supernet: NAS-Bench-201 queries (seconds on a CPU)"
                if "query" in cfg
                else "no search: a published cell",
                *basis,
            ],
        }
    split = search_split(cfg["dataset"], cfg["search"], cfg["space"])
    images = (split["weights"] or {}).get("images") or 0
    per_epoch = math.ceil(images / cfg["search"]["batch_size"]) if images else 0
    if cfg["search"].get("steps_per_epoch"):
        per_epoch = min(per_epoch, cfg["search"]["steps_per_epoch"])
    steps = cfg["search"]["epochs"] * per_epoch
    step_ms = _search_step_ms(cfg, device, basis)
    search_h = steps * step_ms / 3.6e6
    select_h = 0.0
    if cfg["selector"] in ("pt", "pt_mag"):
        arch = (split["arch"] or {}).get("images") or 0
        select_h = _pt_hours(cfg, step_ms, per_epoch, arch, basis)
    eval_h = _retrain_hours(cfg, device, basis)
    total = search_h + select_h + eval_h
    gpu = bool(step_times()["devices"][device]["gpu"])
    return {
        "search_steps": steps,
        "steps_per_epoch": per_epoch,
        "search_step_ms": round(step_ms, 2),
        "search_hours": round(search_h, 4),
        "select_hours": round(select_h, 4),
        "eval_hours": round(eval_h, 4),
        "hours": round(total, 4),
        "gpu_hours": round(total, 4) if gpu else None,
        "basis": basis,
    }
