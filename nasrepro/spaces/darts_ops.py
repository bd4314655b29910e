"""The DARTS operations (quark0/darts cnn/operations.py, commit f276dd3) and RobustDARTS'
`noise` (automl/RobustDARTS src/operations.py, commit 3dec3fe), as plain modules.

Every op maps C channels to C channels; `stride` 2 halves the spatial size. Each builder
`(c, stride, affine) -> nn.Module` is registered as `darts/<name>`. The search supernet
puts BN(affine=False) after the pooling ops (`search_op`), as quark0's search MixedOp does;
the discrete networks use the builders as they are, with affine BN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasrepro.catalog import register_op

OpBuilder = Callable[[int, int, bool], nn.Module]


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BN; the cells' 1x1 preprocessing."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_in,
                kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked ReLU -> depthwise -> pointwise -> BN blocks (dilation 1); only the first
    depthwise conv carries the stride."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """Zeros of the input's shape, subsampled by `stride` (x[:, :, ::s, ::s] · 0)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (C_out/2 each) on x and on x shifted by one pixel,
    concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even output channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class NoiseOp(nn.Module):
    """RobustDARTS S4's `noise` (NoiseOp(stride, 0., 1.)): fresh N(0, 1) samples of the
    shape of x[:, :, ::s, ::s], in training and evaluation, unscaled and carrying no
    gradient to x."""

    def __init__(self, stride: int, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.stride = stride
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.empty_like(x).normal_(self.mean, self.std).detach()


# Padding and dilation per op: quark0 cnn/operations.py OPS.
@register_op("darts/none", "zeros, stride-subsampled (DARTS Zero)")
def none_op(c: int, stride: int, affine: bool) -> nn.Module:
    return Zero(stride)


@register_op("darts/max_pool_3x3", "MaxPool 3x3, padding 1")
def max_pool_3x3(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.MaxPool2d(3, stride=stride, padding=1)


@register_op("darts/avg_pool_3x3", "AvgPool 3x3, padding 1, count_include_pad=False")
def avg_pool_3x3(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


@register_op("darts/skip_connect", "identity; FactorizedReduce(C, C) on stride 2")
def skip_connect(c: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine)


@register_op("darts/sep_conv_3x3", "SepConv 3x3 (two ReLU-dw-pw-BN blocks), padding 1")
def sep_conv_3x3(c: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(c, c, 3, stride, 1, affine=affine)


@register_op("darts/sep_conv_5x5", "SepConv 5x5 (two ReLU-dw-pw-BN blocks), padding 2")
def sep_conv_5x5(c: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(c, c, 5, stride, 2, affine=affine)


@register_op("darts/dil_conv_3x3", "DilConv 3x3, dilation 2, padding 2")
def dil_conv_3x3(c: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(c, c, 3, stride, 2, 2, affine=affine)


@register_op("darts/dil_conv_5x5", "DilConv 5x5, dilation 2, padding 4")
def dil_conv_5x5(c: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(c, c, 5, stride, 4, 2, affine=affine)


@register_op("darts/noise", "RobustDARTS S4: fresh N(0,1) noise of the (subsampled) input shape")
def noise(c: int, stride: int, affine: bool) -> nn.Module:
    return NoiseOp(stride, 0.0, 1.0)  # RobustDARTS OPS['noise']: NoiseOp(stride, 0., 1.)


OPS: dict[str, OpBuilder] = {
    "none": none_op,
    "max_pool_3x3": max_pool_3x3,
    "avg_pool_3x3": avg_pool_3x3,
    "skip_connect": skip_connect,
    "sep_conv_3x3": sep_conv_3x3,
    "sep_conv_5x5": sep_conv_5x5,
    "dil_conv_3x3": dil_conv_3x3,
    "dil_conv_5x5": dil_conv_5x5,
    "noise": noise,
}

# quark0 cnn/genotypes.py PRIMITIVES (the 8-op DARTS space, S0; RobustDARTS' s5).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# The 7-op space of darts-pt/SDARTS/Λ-DARTS: PRIMITIVES without `none`, same order
# (ruocwang/darts-pt sota/cnn/spaces.py, commit c31e376).
PRIMITIVES_NO_NONE: tuple[str, ...] = PRIMITIVES[1:]


def build_op(name: str, c: int, stride: int, affine: bool) -> nn.Module:
    """The op `name` on `c` channels (as the discrete networks use it)."""
    if name not in OPS:
        raise KeyError(f"unknown DARTS op {name!r} (known: {', '.join(OPS)})")
    return OPS[name](c, stride, affine)


def search_op(name: str, c: int, stride: int, affine: bool = False) -> nn.Module:
    """The op as a search MixedOp holds it: BN affine=False, pooling followed by
    BN(c, affine=False) (quark0 cnn/model_search.py MixedOp: `if 'pool' in primitive`).
    `affine=True` is RF-DARTS' search setting (only BN affine weights train)."""
    op = build_op(name, c, stride, affine=affine)
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(c, affine=affine))
    return op
