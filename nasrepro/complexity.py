"""Parameter and FLOP counts, with the conventions NAS papers use.

FLOPs are multiply-accumulates per image counted by forward hooks on convolutions,
linear layers and pooling; BN and activations are not counted. NB201's `get_model_infos`
(AutoDL xautodl/utils/flop_benchmark.py) hooks pooling too but sums convolutions and linear
layers only: 528.359 M for DARTS_V2's CIFAR network against 529.640 M here.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(module: nn.Module, exclude: tuple[nn.Parameter, ...] = ()) -> int:
    skip = {id(p) for p in exclude}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """MACs for one image of shape (C, H, W)."""
    total = 0

    def conv_hook(m: nn.Conv2d, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        kernel = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total += out.numel() * kernel + (out.numel() if m.bias is not None else 0)

    def linear_hook(m: nn.Linear, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    def pool_hook(m: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        total += out.numel() * k * k

    def adaptive_hook(m: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        total += inp[0].numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.AvgPool2d | nn.MaxPool2d):
            handles.append(m.register_forward_hook(pool_hook))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            handles.append(m.register_forward_hook(adaptive_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
