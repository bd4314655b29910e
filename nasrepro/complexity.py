"""Parameter and FLOP counts, under the counting conventions NAS papers used.

Papers print "FLOPs" counted by different tools, and the tools disagree by up to 8 % on the
same network (DARTS_V2 on CIFAR: 528.4 M to 549.9 M). Each convention below is our own
forward-hook counter that gives what the named tool gives on the same network
(tests/test_complexity_conventions.py checks each against the real library):

- ``conv_fc``: multiply-adds of convolutions and linear layers, biases included, nothing
  else. NB201's ``get_model_infos`` (AutoDL xautodl/utils/flop_benchmark.py) counts this:
  it hooks pooling layers too but ``compute_average_flops_cost`` sums only Conv1d/Conv2d/
  Linear, so DARTS_V2 on CIFAR gives 528.359 M, not the 529.640 M a count with pooling
  gives. The harness's default (``flops_m`` of a record).
- ``thop``: ``thop.profile`` (pytorch-OpCounter 0.1.1) with its default rules: convolution
  multiply-adds without bias, BatchNorm 2·numel (4·numel with affine weights), AvgPool one
  per output, AdaptiveAvgPool (kernel + 1) per output, linear in_features per output,
  ReLU and MaxPool nothing. DARTS-' eval/train.py calls ``profile`` at 32×32.
- ``flops_counter``: the module hooks of flops-counter.pytorch (ptflops' ``pytorch``
  backend without its later patching of functionals): convolution and linear with bias,
  BatchNorm numel (2·numel with affine weights), ReLU its output's numel, every pooling
  layer (global average pooling included) its input's numel. PC-DARTS' ImageNet FLOPs
  (597 M, 586 M) are these counts.
- ``fvcore``: fvcore's ``FlopCountAnalysis`` defaults: convolution and linear multiply-adds
  without bias, BatchNorm (eval) numel (2·numel with affine weights), adaptive average
  pooling its input's numel; ReLU, other pooling, additions and concatenation nothing.

thop and flops-counter dispatch on the exact module type (a subclass of ``nn.AvgPool2d``
counts nothing there), so these two conventions do too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

CONVENTIONS: dict[str, str] = {
    "conv_fc": "convolutions + linear layers with bias (NB201 get_model_infos)",
    "thop": "thop 0.1.1 profile defaults (conv without bias, BN 2x/4x, pooling outputs)",
    "flops_counter": "flops-counter.pytorch module hooks (conv+fc, 2·BN, ReLU, pooling inputs)",
    "fvcore": "fvcore FlopCountAnalysis defaults (conv/linear without bias, BN, global pool)",
}
DEFAULT_CONVENTION = "conv_fc"

Counts = dict[str, int]
_Rule = Callable[[nn.Module, torch.Tensor, torch.Tensor], Counts]


def count_params(module: nn.Module, exclude: tuple[nn.Parameter, ...] = ()) -> int:
    skip = {id(p) for p in exclude}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def _conv(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> Counts:
    kernel = m.kernel_size[0] * m.kernel_size[1]
    macs = y.numel() * (m.in_channels // m.groups) * kernel
    bias = y.numel() if m.bias is not None else 0
    return {"conv_fc": macs + bias, "thop": macs, "flops_counter": macs + bias, "fvcore": macs}


def _linear(m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> Counts:
    macs = y.numel() * m.in_features
    bias = y.numel() if m.bias is not None else 0
    return {"conv_fc": macs + bias, "thop": macs, "flops_counter": macs + bias, "fvcore": macs}


def _batch_norm(m: nn.BatchNorm2d, x: torch.Tensor, y: torch.Tensor) -> Counts:
    scale = 2 if m.affine else 1
    n = x.numel()
    return {"thop": 2 * scale * n, "flops_counter": scale * n, "fvcore": scale * n}


def _relu(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Counts:
    return {"flops_counter": y.numel()}


def _max_pool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Counts:
    return {"flops_counter": x.numel()}


def _avg_pool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Counts:
    return {"thop": y.numel(), "flops_counter": x.numel()}


def _adaptive_avg_pool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Counts:
    # thop: (prod(input spatial / output spatial) + 1) per output element, truncated
    kernel = 1.0
    for i, o in zip(x.shape[2:], y.shape[2:], strict=True):
        kernel *= i / o
    return {
        "thop": int((kernel + 1) * y.numel()),
        "flops_counter": x.numel(),
        "fvcore": x.numel(),
    }


# Exact-type rules (thop, flops_counter dispatch on type(module)) and isinstance rules
# (get_model_infos uses isinstance; fvcore sees the aten op whatever the module class).
_EXACT: dict[type[nn.Module], _Rule] = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _relu,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
}
_BY_TYPE = ("thop", "flops_counter")


def _rule(m: nn.Module) -> tuple[_Rule | None, bool]:
    """The module's rule and whether its class is exactly the rule's (not a subclass)."""
    exact = _EXACT.get(type(m))
    if exact is not None:
        return exact, True
    for cls, rule in _EXACT.items():
        if isinstance(m, cls):
            return rule, False
    return None, False


def count_flops_by_convention(model: nn.Module, input_shape: tuple[int, int, int]) -> Counts:
    """Multiply-adds for one image of shape (C, H, W) under every convention of
    CONVENTIONS, from one forward pass in eval mode (an auxiliary tower does not run)."""
    totals = dict.fromkeys(CONVENTIONS, 0)
    handles = []

    def hook(rule: _Rule, exact: bool) -> Callable[..., None]:
        def count(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            for name, value in rule(m, inp[0], out).items():
                if exact or name not in _BY_TYPE:
                    totals[name] += int(value)

        return count

    for m in model.modules():
        rule, exact = _rule(m)
        if rule is not None:
            handles.append(m.register_forward_hook(hook(rule, exact)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return totals


def flops_metric(convention: str) -> str:
    """The record metric holding FLOPs (M) under `convention`: `flops_m` for the default,
    `flops_m.<convention>` for the others."""
    return "flops_m" if convention == DEFAULT_CONVENTION else f"flops_m.{convention}"


def count_flops(
    model: nn.Module, input_shape: tuple[int, int, int], convention: str = DEFAULT_CONVENTION
) -> int:
    """Multiply-adds for one image of shape (C, H, W) under `convention` (default conv_fc,
    NB201's get_model_infos)."""
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown FLOPs convention {convention!r} (known: {', '.join(CONVENTIONS)})"
        )
    return count_flops_by_convention(model, input_shape)[convention]
