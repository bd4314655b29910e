"""Wall time a unit of work (or a whole trial) will take on a named device, from
measured step times (no running).

search = steps × search step time; selection = PT tuning; retraining = steps × retraining
step time, one per dataset. Step times come from `nasrepro/data/step_times.json`: per
device the measured rows of benchmark files (the NB201 and S0 first-order steps, the CIFAR
retraining step), and the ratios `nasrepro bench --ratios` measured side by side on a CPU
(S1-S4 and NB201 against S0, second order against first per space, each method against
plain DARTS). Each is scaled to the unit's batch, cells, image area and methods, and every
factor is listed in the estimate's `basis` as measured, scaled (and from what) or assumed.
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
    "cifar10": ("nb201", "darts", "nb201-single-level", "darts-single-level"),
    "cifar100": ("nb201", "darts", "nb201-single-level"),
    "svhn": ("darts",),
    "imagenet16-120": ("nb201", "nb201-single-level"),
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
    elif protocol in ("nb201-single-level", "darts-single-level"):  # both sides: all of train
        sides = {"weights": ("train", "all", n), "arch": ("train", "all", n)}
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


def _ratio(group: str, name: str) -> dict[str, Any] | None:
    ratios = step_times().get("ratios", {})
    found = ratios.get(group, {}).get(name)
    return None if found is None else {"file": ratios.get("file"), **found}


# Methods whose step is DARTS' first-order step plus work that does not scale with the
# supernet (not measured; the reason is listed in the basis).
ASSUMED_FACTORS: dict[str, tuple[float, str]] = {
    "drnas": (1.0, "one Dirichlet draw per α row and forward"),
    "snas": (1.0, "one Gumbel-softmax draw per α row and forward"),
    "beta_darts": (1.0, "a logsumexp of α added to the α loss"),
    "fair_darts": (1.0, "sigmoid(α) instead of softmax(α), a mean over σ(α) in the α loss"),
    "gaea": (1.0, "the α step's forward and backward as DARTS', a mirror step instead of Adam"),
    "sgas": (
        1.0,
        "every op of every edge still runs (decided edges one-hot, pruned edges zero); SGAS' "
        "own code runs the decided op alone and skips pruned edges, so its later epochs are "
        "cheaper",
    ),
}


def _enas_factor(config: dict[str, Any], args: dict[str, Any], basis: list[str]) -> float:
    """ENAS (methods/enas.py): its weight step trains one sampled cell, as RSPS' (measured
    ratio); each epoch then scores train_steps·num_aggregate controller samples with one
    forward pass each on a validation batch of the same size, counted per weight step at
    1/3 of a forward+backward step (assumed); the controller's LSTM is not counted."""
    # without a search (a bare factor query): ENAS.sh's CIFAR-10 search, batch 128
    search = config.get("search") or {"batch_size": 128}
    split = search_split(config.get("dataset", "cifar10"), search, config.get("space", "nb201"))
    images = (split["weights"] or {}).get("images") or 0
    per_epoch = max(1, math.ceil(images / search["batch_size"]))
    if search.get("steps_per_epoch"):
        per_epoch = min(per_epoch, int(search["steps_per_epoch"]))
    samples = int(args.get("train_steps", 50)) * int(args.get("num_aggregate", 20))
    rsps = _ratio("method", "rsps")
    path = rsps.get("used", rsps["ratio"]) if rsps is not None else 1.0
    factor = round(path * (1 + samples / (3 * per_epoch)), 4)
    basis.append(
        f"enas: x{factor} = rsps' one-path weight step x{path} (CPU ratio, measured) x (1 + "
        f"{samples} controller forwards per epoch / (3 x {per_epoch} weight steps)) (counted; "
        "a forward = 1/3 step, assumed)"
    )
    return factor


def _randomnas_factor(config: dict[str, Any], basis: list[str]) -> float:
    """RandomNAS on the DARTS space (`rsps`, methods/sampled_paths.py): each weight step runs
    the whole supernet forward and backward with one-hot weights, one of first-order DARTS'
    two passes (counted x0.5), and no α step; selector `sampled_best` then runs n·batches
    candidate forwards plus finalists × (α split batches) full-pass forwards, spread over the
    search's weight steps at 1/3 of a forward+backward pass each (assumed)."""
    search = config.get("search") or {"batch_size": 64, "epochs": 100}
    split = search_split(config.get("dataset", "cifar10"), search, "darts")
    images = (split["weights"] or {}).get("images") or 0
    per_epoch = max(1, math.ceil(images / search["batch_size"]))
    if search.get("steps_per_epoch"):
        per_epoch = min(per_epoch, int(search["steps_per_epoch"]))
    steps = per_epoch * int(search.get("epochs", 1))
    sel = config.get("selector_args") or {}
    batch = int(sel.get("batch_size", search["batch_size"]))
    valid = math.ceil(((split["arch"] or {}).get("images") or 0) / batch)
    n, batches = int(sel.get("n", 100)), int(sel.get("batches", 1))
    finalists = int(sel.get("finalists", 0))
    forwards = n * batches + min(finalists, n) * valid
    factor = round(0.5 * (1 + forwards / (3 * 0.5 * steps)), 4) if steps else 0.5
    basis.append(
        f"rsps (DARTS space, RandomNAS): x{factor} = 0.5 (one whole-supernet pass per step, "
        f"first-order DARTS runs two; counted) x (1 + {forwards} selection forwards / (3 x 0.5 "
        f"x {steps} weight steps)) (counted; a forward = 1/3 step, assumed)"
    )
    return factor


def _method_factor(config: dict[str, Any], basis: list[str]) -> float:
    """Product of the methods' step-time factors: measured on the H200 where a GPU session
    measured one (Λ-DARTS), else the CPU ratio against plain DARTS (on S0, or on NB201 for
    the NB201-only sampled-path methods), else counted, else assumed (x1.0, said so)."""
    gpu = step_times()["method_factors"]
    total = 1.0
    for m in config["methods"]:
        args = config["method_args"].get(m, {})
        if m == "lambda":
            key = "lambda/forward_backward" if args.get("difference") == "forward_backward" else m
            total *= gpu[key]["factor"]
            basis.append(f"{key} x{gpu[key]['factor']} (measured, H200 ratio)")
            continue
        if m == "rsps" and config.get("space") == "darts":
            total *= _randomnas_factor(config, basis)
            continue
        name = f"pc/k{int(args.get('k', 4))}" if m == "pc" else m
        cpu = _ratio("method", name)
        if cpu is not None:
            used = cpu.get("used", cpu["ratio"])
            total *= used
            note = "" if used == cpu["ratio"] else f", x{used} used: {cpu['note']}"
            basis.append(
                f"{name} x{cpu['ratio']} (CPU ratio to {cpu['to']}, measured{note})"
            )
        elif m == "pc":
            k = int(args.get("k", 4))
            total /= k
            basis.append(f"pc: partial channels 1/{k} of the mixed-op cost (assumed)")
        elif m == "rdarts":  # R-DARTS: one whole search per grid point
            runs = len(args.get("weight_decays") or [0]) * len(args.get("drop_path_probs") or [0])
            total *= runs
            basis.append(f"rdarts: x{runs}, one search per grid point (counted)")
        elif m == "sdarts_adv":  # SmoothDARTS attacker/perturb.py Linf_PGD_alpha
            steps = int(args.get("steps", 7))
            factor = round(1 + (steps + 1) / 3, 3)
            total *= factor
            basis.append(
                f"sdarts_adv: x{factor} (counted, not measured: per weight step {steps} PGD "
                "passes backward to α only, 2/3 of a weight pass each, and two loss forwards, "
                "1/3 each, on top of first-order DARTS' two passes; DARTS- (Chu et al. 2021, "
                "S0-S4 results) reports SDARTS-ADV needs 3x its search time)"
            )
        elif m == "snas_darts":  # single level: the weight batch's pass trains α too
            total *= 0.5
            basis.append(
                "snas_darts: x0.5 (counted, not measured: one forward and backward per step, "
                "where first-order DARTS runs two, the weight pass and the α pass)"
            )
        elif m == "enas":
            total *= _enas_factor(config, args, basis)
        elif m in ASSUMED_FACTORS:
            factor, why = ASSUMED_FACTORS[m]
            total *= factor
            basis.append(f"{m}: x{factor} per step (assumed, not measured: {why})")
        elif m != "darts":
            basis.append(f"{m}: x1.0 per step (assumed, not measured: no ratio case)")
    return total


def _case(device: str, kind: str, basis: list[str]) -> dict[str, Any]:
    """A device's step time for `kind`; a case the device lacks is scaled from the H200's
    by the ratio of a case both have (the NB201 first-order step)."""
    cases = step_times()["devices"][device]["cases"]
    if kind in cases:
        case = cases[kind]
        basis.append(f"{device} {kind} {case['ms']:.1f} ms ({case['status']})")
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
    """One search step of the config's supernet, batch, image size, order and methods."""
    space = config["space"]
    search = config["search"]
    case = _case(device, "nb201/first" if space == "nb201" else "darts/first", basis)
    ms = float(case["ms"])
    if space not in ("nb201", "darts"):
        r = _ratio("space", space)
        if r is None:
            basis.append(f"{space}: the S0 step (8 ops per edge) used: an over-estimate")
        else:
            ms *= r["ratio"]
            basis.append(f"{space} x{r['ratio']} of the S0 step (CPU ratio, measured)")
    if search["order"] == 2:
        r = _ratio("second_order", space)
        if r is None:
            raise ValueError(f"no measured second-order ratio for space {space!r}")
        ms *= r["ratio"]
        basis.append(f"second order x{r['ratio']} ({space}, CPU ratio to first order, measured)")
    cells = _cells(space, config["space_args"])
    area = _image_area(config["dataset"], search.get("image_size"))
    scale = (search["batch_size"] / case["batch"]) * (cells / case["cells"]) * area
    width = int(config["space_args"].get("c", 16))
    # the cases are C=16 searches; convolutions cost ∝ C² (GAEA's NB201 supernet: C=24)
    scale *= (width / 16) ** 2
    if scale != 1:
        channels = f"channels {width}/16 squared, assumed" if width != 16 else "channels 16"
        basis.append(
            f"search x{scale:.3g} (batch {search['batch_size']}/{case['batch']}, cells "
            f"{cells}/{case['cells']}, image area {area:.3g}, linear; {channels})"
        )
    return ms * scale * _drop_ops_factor(config, basis) * _method_factor(config, basis)


# Convolution work per mixed NB201 edge, in C²·H·W multiply-adds: the ops a space may drop
# (nb201 `drop_ops`); none, skip and pooling do no convolution (counted as free).
_NB201_CONV_WORK = {"nor_conv_1x1": 1, "nor_conv_3x3": 9}


def _drop_ops_factor(config: dict[str, Any], basis: list[str]) -> float:
    """NB201 without some ops (GAEA's space without `none`): the mixed ops' convolution
    work of the kept ops over all five's (counted; stem and reduction blocks ignored, so a
    dropped convolution's saving is an upper bound)."""
    dropped = (config["space_args"] or {}).get("drop_ops") or []
    if config["space"] != "nb201" or not dropped:
        return 1.0
    full = sum(_NB201_CONV_WORK.values())
    kept = sum(w for op, w in _NB201_CONV_WORK.items() if op not in dropped)
    factor = round(kept / full, 3)
    basis.append(
        f"drop_ops {', '.join(dropped)}: x{factor} (counted: convolution work of the kept "
        "mixed ops; none, skip and pooling free)"
    )
    return factor


# A weight-only step (α frozen) ≈ half a first-order bilevel step (one forward-backward of
# two), assumed as for PT's tuning.
WEIGHT_ONLY_STEP = 0.5


def _stages_ms(config: dict[str, Any], device: str, per_epoch: int, basis: list[str]) -> float:
    """A progressive search (search.stages): per stage, the step of its supernet (cells,
    channels) x the share of the space's ops its edges still mix (linear, assumed), its
    α-frozen epochs at WEIGHT_ONLY_STEP of a step."""
    search = config["search"]
    full = 8 if config["space_args"].get("include_none", True) else 7
    total = 0.0
    for i, stage in enumerate(search["stages"]):
        sized = {k: stage[k] for k in ("layers", "c") if stage.get(k) is not None}
        args = {**config["space_args"], **sized}
        own: list[str] = []
        ms = _search_step_ms({**config, "space_args": args}, device, own)
        ops = stage.get("ops_per_edge") or full
        ms *= ops / full
        frozen = int(stage.get("frozen_epochs") or 0)
        epochs = search["epochs"] - frozen + WEIGHT_ONLY_STEP * frozen
        total += epochs * per_epoch * ms
        basis.append(
            f"stage {i + 1}: {args.get('layers', 8)} cells, {ops}/{full} ops per edge (linear, "
            f"assumed), {frozen} of {search['epochs']} epochs α frozen at x{WEIGHT_ONLY_STEP} "
            f"(assumed): {ms:.0f} ms per step [{'; '.join(own)}]"
        )
    return total


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


def _recipe(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    from nasrepro.evaluate.retrain import CIFAR_RECIPE, IMAGENET_RECIPE

    args = config["evaluator_args"]
    base = IMAGENET_RECIPE if dataset == "imagenet" else CIFAR_RECIPE
    top = {k: v for k, v in args.items() if k in base}  # a budget's run-wide overrides
    return {**base, **(args.get("recipes", {}).get(dataset) or {}), **top}


def retrain_estimate(config: dict[str, Any], dataset: str, device: str) -> dict[str, Any]:
    """Hours of one retraining of the config's cell on `dataset`, with its basis: the
    measured CIFAR step (DARTS_V2, 20 cells, 36 channels, batch 96) scaled linearly by
    batch, cells, channels² and image area; ImageNet's own step where a GPU measured it,
    else that CIFAR step scaled (listed as scaled)."""
    basis: list[str] = []
    args = config["evaluator_args"]
    recipe = _recipe(config, dataset)
    train_on = args.get("dataset") or dataset
    kind = "retrain/imagenet" if train_on == "imagenet" else "retrain/darts"
    case = _case(device, kind, basis)
    n = TRAIN_IMAGES.get(train_on, 50_000)
    per_epoch = math.ceil(n / recipe["batch_size"])
    if args.get("max_steps"):
        per_epoch = min(per_epoch, int(args["max_steps"]))
    area = _image_area(train_on, args.get("image_size")) / _image_area(
        "imagenet" if kind == "retrain/imagenet" else "cifar10", case.get("image_size")
    )
    scale = (
        (recipe["batch_size"] / case["batch"])
        * (recipe["layers"] / case["cells"])
        * (recipe["init_channels"] / case["channels"]) ** 2
        * area
    )
    if recipe.get("precision", "fp32") != "fp32":
        basis.append(f"{recipe['precision']}: costed as fp32 (no measured speed-up)")
    hours = recipe["epochs"] * per_epoch * case["ms"] * scale / 3.6e6
    basis.append(
        f"retrain {dataset}: {recipe['epochs']} epochs x {per_epoch} steps x "
        f"{case['ms'] * scale:.0f} ms (batch, cells, channels², image area scaled)"
    )
    return {"hours": round(hours, 4), "basis": basis}


def search_estimate(config: dict[str, Any], device: str) -> dict[str, Any]:
    """The search unit: steps × step time, with its basis."""
    basis: list[str] = []
    split = search_split(config["dataset"], config["search"], config["space"])
    images = (split["weights"] or {}).get("images") or 0
    per_epoch = math.ceil(images / config["search"]["batch_size"]) if images else 0
    if config["search"].get("steps_per_epoch"):
        per_epoch = min(per_epoch, config["search"]["steps_per_epoch"])
    steps = config["search"]["epochs"] * per_epoch
    staged = bool(config["search"].get("stages"))
    step_ms = _search_step_ms(config, device, [] if staged else basis)
    ms_total = steps * step_ms
    if staged:  # each stage's own supernet, listed per stage
        ms_total, steps = _stages_ms(config, device, per_epoch, basis), steps * len(
            config["search"]["stages"]
        )
        step_ms = ms_total / steps if steps else step_ms
    arch_images = (split["arch"] or {}).get("images") or 0
    extra = _sgas_pt_hours(config, step_ms, arch_images, basis)
    return {
        "steps": steps,
        "steps_per_epoch": per_epoch,
        "step_ms": round(step_ms, 2),
        "hours": round(ms_total / 3.6e6 + extra, 4),
        "arch_images": arch_images,
        "basis": basis,
    }


def _sgas_pt_hours(
    config: dict[str, Any], step_ms: float, arch_images: int, basis: list[str]
) -> float:
    """SGAS+PT's held-out evaluations during the search: per decision one forward pass over
    the α split per candidate op (≈ 1/6 step per batch, assumed as for PT); decisions
    counted from the schedule (8 per cell type at most: two inputs for each of 4 nodes)."""
    if "sgas" not in config["methods"]:
        return 0.0
    from nasrepro.methods.sgas import is_decision_epoch

    args = config["method_args"].get("sgas", {})
    if args.get("op_selection", "magnitude") != "perturbation":
        return 0.0
    warmup, freq = int(args.get("warmup_dec_epoch", 9)), int(args.get("decision_freq", 5))
    epochs = config["search"]["epochs"]
    per_cell = min(8, sum(is_decision_epoch(e, warmup, freq) for e in range(epochs)))
    ops = 7  # the 8-op DARTS space without `none`
    batches = math.ceil(arch_images / config["search"]["batch_size"])
    if args.get("eval_batches"):
        batches = min(batches, int(args["eval_batches"]))
    basis.append(
        f"sgas perturbation: 2 x {per_cell} decisions x {ops} ops x {batches} held-out "
        "batches at 1/6 step (counted decisions, assumed pass cost)"
    )
    return 2 * per_cell * ops * batches * step_ms / 6 / 3.6e6


def selection_estimate(config: dict[str, Any], device: str) -> dict[str, Any]:
    """The selection unit: DARTS-PT/PT-Mag tuning; other selectors read the search's
    α or history (no cost)."""
    if config["selector"] not in ("pt", "pt_mag"):
        return {"hours": 0.0, "basis": [f"{config['selector']}: reads the search (no cost)"]}
    search = search_estimate(config, device)
    basis: list[str] = []
    hours = _pt_hours(
        config, search["step_ms"], search["steps_per_epoch"], search["arch_images"], basis
    )
    return {"hours": round(hours, 4), "basis": basis}


def unit_hours(kind: str, config: dict[str, Any], dataset: str | None, device: str) -> float:
    """Estimated hours of one unit of `kind` (search, selection, retrain) of a config."""
    if kind == "search":
        return float(search_estimate(config, device)["hours"])
    if kind == "selection":
        return float(selection_estimate(config, device)["hours"])
    assert dataset is not None
    return float(retrain_estimate(config, dataset, device)["hours"])


def estimate(trial: Trial, device: str) -> dict[str, Any]:
    """Hours of wall time of one trial on `device` as a whole (search, selection and every
    evaluated dataset retrained), by stage, with how each was derived."""
    if device not in step_times()["devices"]:
        raise ValueError(f"unknown device {device!r} (known: {', '.join(devices())})")
    cfg = trial.config
    gpu = bool(step_times()["devices"][device]["gpu"])
    eval_h = 0.0
    eval_basis: list[str] = []
    if cfg["evaluator"] == "retrain":
        for ds in cfg["eval_datasets"]:
            r = retrain_estimate(cfg, ds, device)
            eval_h += r["hours"]
            eval_basis += r["basis"]
    if cfg.get("search") is None:  # a published cell (`genotype:`): evaluation only
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
                *eval_basis,
            ],
        }
    search = search_estimate(cfg, device)
    select = selection_estimate(cfg, device)
    total = search["hours"] + select["hours"] + eval_h
    return {
        "search_steps": search["steps"],
        "steps_per_epoch": search["steps_per_epoch"],
        "search_step_ms": search["step_ms"],
        "search_hours": search["hours"],
        "select_hours": select["hours"],
        "eval_hours": round(eval_h, 4),
        "hours": round(total, 4),
        "gpu_hours": round(total, 4) if gpu else None,
        "basis": [*search["basis"], *select["basis"], *eval_basis],
    }
