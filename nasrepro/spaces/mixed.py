"""The mixed operation shared by every space: Σ_k w_k·op_k(x), plus method-added terms.

Methods extend edges without editing a space: DARTS- appends an auxiliary skip to
`extras`; partial-channel and other variants are space arguments a method sets before
the supernet is built (`MethodHook.configure_space`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SampledOps:
    """A sampled architecture in place of an edge's mixing weights: `index` names the one op
    each edge computes; `weights`, when given, are GDAS' straight-through hard weights.

    Without weights the edge outputs op_k(x) alone (a discrete path: SETN's and RSPS' weight
    steps, xautodl search_cells.py `forward_dynamic`). With weights (edges × ops) it outputs
    Σ_j (w_j·op_j(x) if j = k else w_j), the other ops' weights added as scalars: 0 in value,
    their gradient the straight-through estimator's (`forward_gdas`). Indexing by edge gives
    that edge's pair, so cells index it as they index a weight matrix.
    """

    index: torch.Tensor  # (edges,) or a 0-dim tensor for one edge
    weights: torch.Tensor | None = None

    def __getitem__(self, edge: int) -> SampledOps:
        return SampledOps(self.index[edge], None if self.weights is None else self.weights[edge])

    def mix(self, x: torch.Tensor, ops: Iterable[nn.Module]) -> torch.Tensor:
        k = int(self.index)
        ops = list(ops)
        if self.weights is None:
            return ops[k](x)
        pairs = enumerate(zip(self.weights, ops, strict=True))
        return sum(w * op(x) if j == k else w for j, (w, op) in pairs)  # type: ignore[return-value]


class MixedOp(nn.Module):
    """One edge of a supernet. `op_names[k]` names `ops[k]`; `stride` is the edge's stride.

    `channels` is the edge's full input (= output) channel count, for `extras` that must
    build their own modules (DARTS-' FactorizedReduce on stride-2 edges); None if unknown.
    """

    def __init__(
        self,
        ops: Iterable[nn.Module],
        op_names: Iterable[str],
        stride: int = 1,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.op_names = tuple(op_names)
        self.stride = stride
        self.channels = channels
        self.extras = nn.ModuleList()  # terms added to the edge output, e.g. DARTS- β·skip

    def forward(self, x: torch.Tensor, weights: torch.Tensor | SampledOps) -> torch.Tensor:
        if isinstance(weights, SampledOps):
            out = weights.mix(x, self.ops)
        else:
            out = sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))
        for extra in self.extras:
            out = out + extra(x)
        return out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g·c, H, W) -> view (N, g, c, H, W), swap g and c, flatten back: output channel
    i·g + j is input channel j·c + i (PC-DARTS model_search.py `channel_shuffle`)."""
    n, channels, h, w = x.shape
    x = x.view(n, groups, channels // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, channels, h, w)


class PartialMixedOp(MixedOp):
    """PC-DARTS partial channel connection (Xu et al., 2020; yuhuixu1993/PC-DARTS
    model_search.py MixedOp, commit b74702f): only the first C/K channels go through the
    ops (which the space builds for C/K channels); the other C - C/K channels bypass them,
    max-pooled 2x2 on stride-2 edges; the concatenation is channel-shuffled with K groups.

    `extras` see the full input x and are added to the shuffled output.
    """

    def __init__(
        self,
        ops: Iterable[nn.Module],
        op_names: Iterable[str],
        stride: int = 1,
        channels: int | None = None,
        k: int = 4,
        shuffle: bool = True,
    ) -> None:
        super().__init__(ops, op_names, stride, channels)
        self.k = k
        self.shuffle = shuffle  # DARTS- Table 5 ablates the shuffle away
        self.mp = nn.MaxPool2d(2, 2)  # PC-DARTS MixedOp.mp: the bypass of reduction edges

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        part = x.shape[1] // self.k
        xtemp, xtemp2 = x[:, :part], x[:, part:]
        temp1 = sum(w * op(xtemp) for w, op in zip(weights, self.ops, strict=True))
        # The reference tests the spatial size (temp1.shape[2] == x.shape[2]) to detect a
        # reduction edge; for the even sizes DARTS supports this is the edge's stride.
        bypass = xtemp2 if temp1.shape[2] == x.shape[2] else self.mp(xtemp2)
        out = torch.cat([temp1, bypass], dim=1)
        if self.shuffle:
            out = channel_shuffle(out, self.k)
        for extra in self.extras:
            out = out + extra(x)
        return out
