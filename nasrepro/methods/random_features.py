"""RF-DARTS (paper 000): DARTS with random features — convolutions frozen at their
initialisation, only BatchNorm affine weights (and α) trained (Eq. 2–3).

Table 1 enumerates the learnable-module options of the supernet:

| option | convolution | BN affine | here |
| --- | --- | --- | --- |
| A | trained | trained | every weight trains; search-cell BNs get affine weights |
| B | trained | off | plain DARTS: search-cell BNs without affine weights |
| C | frozen | trained | RF-DARTS: only BN affine weights train |
| D | frozen | off | only the affine weights of BNs outside the search cells train |

Reading of the table (no public code; docs/fidelity.md): the BN-affine column is the search
cells' BN (`affine` space argument: DARTS "disables BN affine weights", §1), the
convolution column is every weight that is not a BN affine weight (convolutions, and the
final linear classifier unless `train_classifier`). BN layers outside the search cells
(stem, NB201 reduction blocks, head) are affine in every reference supernet and train in
every option, as in DARTS — so option B is exactly the DARTS baseline the paper says it is.
Frozen weights get `requires_grad=False`: no gradient, no weight decay, no update, also in
optimizers built later (e.g. a selector's tuning phase).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasrepro.catalog import Bool, Choice, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

Option = Literal["A", "B", "C", "D"]
# Table 1: (convolution trained, search-cell BN affine) per option.
OPTIONS: dict[str, tuple[bool, bool]] = {
    "A": (True, True),
    "B": (True, False),
    "C": (False, True),
    "D": (False, False),
}


def bn_affine_ids(net: nn.Module) -> set[int]:
    """ids of every BatchNorm affine weight and bias in `net`."""
    ids: set[int] = set()
    for module in net.modules():
        if isinstance(module, _BatchNorm):
            ids.update(id(p) for p in (module.weight, module.bias) if p is not None)
    return ids


def linear_ids(net: nn.Module) -> set[int]:
    """ids of the parameters of every nn.Linear (the classifier) in `net`."""
    return {id(p) for m in net.modules() if isinstance(m, nn.Linear) for p in m.parameters()}


def trainable_names(net: Any, option: Option, train_classifier: bool = False) -> list[str]:
    """Names of the weights `option` trains in `net` (a Supernet), in parameter order.

    Non-BN weights train iff the option trains convolutions (the classifier also when
    `train_classifier`); BN affine weights inside mixed edges iff the option has BN affine;
    other BN affine weights (stem, reduction blocks, head) always.
    """
    train_conv, cell_affine = OPTIONS[option]
    bn = bn_affine_ids(net)
    cell_bn = {i for mixed in net.mixed_ops() for i in bn_affine_ids(mixed)}
    head = linear_ids(net) if train_classifier else set()
    names = []
    for name, p in net.named_weight_parameters():
        if id(p) in cell_bn:
            trained = cell_affine
        elif id(p) in bn:
            trained = True
        else:
            trained = train_conv or id(p) in head
        if trained:
            names.append(name)
    return names


@register_method(
    "rf",
    "RF-DARTS: conv frozen at init, BN affine trained (Table 1 options A-D)",
    args={"option": Choice("A", "B", "C", "D"), "train_classifier": Bool()},
)
class RandomFeatures(MethodHook):
    """Args: option (A | B | C | D, default C = RF-DARTS), train_classifier (also train the
    final linear layer when convolutions are frozen; a variant — the paper does not say)."""

    name = "rf"
    data_parallel = True  # only chooses which weights train

    def __init__(
        self, option: Option = "C", train_classifier: bool = False, **unknown: Any
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(
                f"method 'rf': unknown argument(s) {sorted(unknown)} (known: option, "
                "train_classifier)"
            )
        if option not in OPTIONS:
            raise ValueError(
                f"method 'rf': option must be one of {', '.join(OPTIONS)}, got {option!r}"
            )
        if not isinstance(train_classifier, bool):
            raise ValueError(
                f"method 'rf': train_classifier must be true or false, got {train_classifier!r}"
            )
        self.option: Option = option
        self.train_classifier = train_classifier
        self.n_tensors = 0
        self.n_params = 0

    def configure_space(self, space_args: dict[str, Any]) -> dict[str, Any]:
        _, affine = OPTIONS[self.option]
        if "affine" in space_args and bool(space_args["affine"]) != affine:
            raise ValueError(
                f"method 'rf': option {self.option} needs space argument affine={affine}, "
                f"the experiment sets affine={space_args['affine']}"
            )
        return {**space_args, "affine": affine}

    def trainable_weights(
        self, ctx: SearchContext, params: list[torch.nn.Parameter]
    ) -> list[torch.nn.Parameter]:
        # Runs after every hook's on_build, so DARTS-' auxiliary convolutions are covered.
        net = ctx.supernet
        _, affine = OPTIONS[self.option]
        if affine and not any(bn_affine_ids(mixed) for mixed in net.mixed_ops()):
            raise ValueError(
                f"method 'rf': option {self.option} needs BN affine weights in the search "
                "cells, but the supernet has none (build it with affine=True)"
            )
        names = set(trainable_names(net, self.option, self.train_classifier))
        keep = {id(p) for name, p in net.named_weight_parameters() if name in names}
        for p in net.weight_parameters():
            if id(p) not in keep:
                p.requires_grad_(False)
        chosen = [p for p in params if id(p) in keep]
        if not chosen:
            raise ValueError(
                f"method 'rf': option {self.option} leaves no trainable weights in this supernet"
            )
        self.n_tensors = len(chosen)
        self.n_params = sum(p.numel() for p in chosen)
        return chosen

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {
            "rf.trainable_tensors": float(self.n_tensors),
            "rf.trainable_params": float(self.n_params),
        }
