"""`complexity` evaluator: parameters and FLOPs of a DARTS-space cell's evaluation network.

The counts papers print beside a cell, computed from the cell alone (no data, no training):

- ``params_m``: parameters in millions of the evaluation network, auxiliary tower excluded,
  as quark0/darts cnn/utils.py ``count_parameters_in_MB`` counts them (1e6 parameters = 1 M);
- ``flops_m``: multiply-adds in millions for one image under the default convention
  (``conv_fc``, NB201's get_model_infos), and ``flops_m.<convention>`` under each other
  convention of ``complexity.CONVENTIONS`` (thop, flops_counter, fvcore): papers counted
  with different tools, and the verdict reads the count of the claim's convention.

CIFAR-10/100 and SVHN use the CIFAR network (20 cells, 36 channels, 32x32); ImageNet the
mobile-setting network (14 cells, 48 channels, 224x224), as the DARTS papers report them.
``evaluator_args`` override the size per network, e.g. ``{cifar: {layers: 20, init_channels:
36}}``, where a paper evaluates another size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasrepro.catalog import Map, register_evaluator

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10, "imagenet": 1000}
METRICS = ("params_m", "flops_m")  # plus flops_m.<convention>, see score()
_NETS = ("cifar", "imagenet")


@dataclass(frozen=True)
class ComplexityResult:
    """Same fields as the lookup evaluators' results (trial.py reads these)."""

    metrics: dict[str, dict[str, float]]
    arch_index: int | None
    arch_str: str
    source: dict[str, object]


def _net_of(dataset: str) -> str:
    return "imagenet" if dataset == "imagenet" else "cifar"


def _check_sizes(args: dict[str, Any], datasets: list[str]) -> None:
    """Each network's size override holds only layers and init_channels (validate time)."""
    for net in _NETS:
        extra = sorted(set(args.get(net) or {}) - {"layers", "init_channels"})
        if extra:
            raise ValueError(f"evaluator complexity: {net}: unknown size option(s) {extra}")


@register_evaluator(
    "complexity",
    "params_m / flops_m of a DARTS cell's evaluation network",
    args={net: Map(nullable=True) for net in _NETS},
    datasets=tuple(NUM_CLASSES),
    check=_check_sizes,
)
class ComplexityEvaluator:
    """params_m (auxiliary tower excluded) and flops_m of the evaluation network per dataset."""

    def __init__(self, **options: Any) -> None:
        from nasrepro.nets.darts_eval import NET_DEFAULTS

        bad = sorted(set(options) - set(_NETS))
        if bad:
            raise ValueError(
                f"evaluator complexity takes options {', '.join(_NETS)} "
                f"(each {{layers, init_channels}}), got {bad}"
            )
        self.sizes: dict[str, dict[str, int]] = {}
        for net in _NETS:
            given = dict(options.get(net) or {})
            extra = sorted(set(given) - {"layers", "init_channels"})
            if extra:
                raise ValueError(f"evaluator complexity: {net}: unknown size option(s) {extra}")
            self.sizes[net] = {**NET_DEFAULTS[net], **given}

    def score(
        self, arch_str: str, datasets: list[str], metrics: list[str], **runtime: Any
    ) -> ComplexityResult:
        """Count the network of `arch_str` (a genotype name or Genotype(...) string) for each
        dataset; `metrics` requested beyond params_m / flops_m are listed as unavailable."""
        from nasrepro.complexity import CONVENTIONS, flops_metric
        from nasrepro.nets.darts_eval import (
            NetworkCIFAR,
            NetworkImageNet,
            count_eval_flops_by_convention,
            count_eval_params,
        )
        from nasrepro.nets.genotypes import get_genotype

        bad = [d for d in datasets if d not in NUM_CLASSES]
        if bad:
            raise ValueError(
                f"evaluator complexity: unknown dataset(s) {bad} (known: {', '.join(NUM_CLASSES)})"
            )
        genotype = get_genotype(arch_str)
        out: dict[str, dict[str, float]] = {}
        for ds in datasets:
            net = _net_of(ds)
            size = self.sizes[net]
            cls = NetworkCIFAR if net == "cifar" else NetworkImageNet
            model = cls(
                genotype,
                num_classes=NUM_CLASSES[ds],
                layers=size["layers"],
                init_channels=size["init_channels"],
                auxiliary=True,  # built as trained; count_eval_params leaves the tower out
            )
            flops = count_eval_flops_by_convention(model, size["image_size"])
            out[ds] = {
                "params_m": count_eval_params(model) / 1e6,
                **{flops_metric(c): flops[c] / 1e6 for c in CONVENTIONS},
            }
        source: dict[str, object] = {
            "backend": "complexity",
            "networks": {ds: {"net": _net_of(ds), **self.sizes[_net_of(ds)]} for ds in datasets},
            "convention": "params without the auxiliary tower (quark0 count_parameters_in_MB); "
            "FLOPs = multiply-adds for one image, flops_m under conv_fc, flops_m.<name> under "
            "each other convention: "
            + "; ".join(f"{name}: {text}" for name, text in CONVENTIONS.items()),
            "unavailable": sorted({m for m in metrics if m not in METRICS}),
            "fixture": False,
        }
        return ComplexityResult(out, None, genotype.to_str(), source)
