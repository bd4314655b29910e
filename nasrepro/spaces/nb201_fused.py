"""Fused evaluation of NB201 search cells (space arg `fused: true`, issue #6).

The plain cell runs 5 ops on each of 6 edges: ~100 small kernels per cell forward, which
makes the C=16 supernet launch-bound on a GPU. All edges leaving one node share their
input, so per source node this evaluates, with the same math:

- ReLU once, then ONE 3x3 convolution whose weight concatenates, over the outgoing edges,
  every `nor_conv_1x1` kernel (zero-padded to 3x3: with padding 1 and stride 1 this is the
  1x1 convolution) and every `nor_conv_3x3` kernel, followed by ONE batch norm over the
  concatenated channels (BN is per channel, so this equals the separate BNs);
- the 3x3 average pool once;
- every outgoing edge's weighted sum Σ_k w_k·op_k(x) as one matmul of an (edges x features)
  mixing matrix, gathered from the edge weights, with the stacked features
  [x, pool(x), conv outputs]. `none` (x·0) contributes exactly 0 and is left out.

The fused weight and BN affine tensors are built every forward from the original modules'
parameters (torch.cat / F.pad), so parameters, state_dict, optimizers, checkpoints and the
unrolled step's functional_call are unchanged and autograd gives each op's own gradient.
BN running statistics, when tracked, are read from and written back to each op's buffers.
A cell that cannot be fused exactly (DARTS- `extras`, partial channels, module hooks,
BNs with differing settings, cumulative-average BN momentum) runs the plain path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module

from nasrepro.spaces.mixed import MixedOp
from nasrepro.spaces.nb201 import EDGES, MAX_NODES, OPS, AvgPool3x3, ReLUConvBN, SearchCell, Zero

SKIP, CONV1, CONV3, POOL = (
    OPS.index(n) for n in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
)
_OP_TYPES: tuple[type[nn.Module], ...] = (Zero, nn.Identity, ReLUConvBN, ReLUConvBN, AvgPool3x3)
# Per source node j < 3, the edges (indices into EDGES) that leave it, in EDGES order.
OUT_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (_, src) in enumerate(EDGES) if src == j) for j in range(MAX_NODES - 1)
)


def _mix_index() -> torch.Tensor:
    """Flat index into F.pad(weights.flatten(), (1, 0)) (slot 0 is the constant 0) giving,
    per source node with E outgoing edges, an (E, 2 + 2E) mixing matrix whose row r mixes
    the features [x, pool(x), conv1x1 of edge 0..E-1, conv3x3 of edge 0..E-1] for edge r."""
    flat: list[int] = []
    for edges in OUT_EDGES:
        n = len(edges)
        for r, e in enumerate(edges):
            row = [0] * (2 + 2 * n)
            row[0], row[1] = 1 + e * len(OPS) + SKIP, 1 + e * len(OPS) + POOL
            row[2 + r] = 1 + e * len(OPS) + CONV1
            row[2 + n + r] = 1 + e * len(OPS) + CONV3
            flat += row
    return torch.tensor(flat, dtype=torch.long)


def _static_fusable(edges: nn.ModuleList) -> bool:
    """The edges are plain NB201 mixed ops with stride-1 convolutions (no partial channels)."""
    for edge in edges:
        if type(edge) is not MixedOp or edge.op_names != OPS:
            return False
        if any(type(op) is not t for op, t in zip(edge.ops, _OP_TYPES, strict=True)):
            return False
        for op, k in ((edge.ops[CONV1], 1), (edge.ops[CONV3], 3)):
            conv = op[1]
            if (conv.kernel_size, conv.stride, conv.padding, conv.dilation) != (
                (k, k),
                (1, 1),
                ((k - 1) // 2,) * 2,
                (1, 1),
            ) or (conv.groups, conv.bias, conv.padding_mode) != (1, None, "zeros"):
                return False
    return True


def _bn_settings(bn: nn.BatchNorm2d) -> tuple[Any, ...]:
    return (bn.training, bn.track_running_stats, bn.affine, bn.eps, bn.momentum,
            bn.running_mean is None)  # fmt: skip


class FusedSearchCell(SearchCell):
    """`SearchCell` with the fused forward; same submodules, so the same state_dict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Non-persistent: moves with .to(), stays out of state_dict and checkpoints.
        self.register_buffer("mix_index", _mix_index(), persistent=False)
        self._static_ok = _static_fusable(self.edges)

    def _fusable(self, weights: torch.Tensor) -> bool:
        if not self._static_ok or not isinstance(weights, torch.Tensor):
            return False
        if weights.shape != (len(EDGES), len(OPS)):
            return False
        if _module._global_forward_hooks or _module._global_forward_pre_hooks:
            return False  # e.g. FLOP counting: the fused path skips the op modules' forward
        bns = []
        for edge in self.edges:
            if edge.extras:  # DARTS- auxiliary skip: method-added terms run on the plain path
                return False
            for mod in (edge, *edge.ops, *edge.ops[CONV1], *edge.ops[CONV3]):
                if mod._forward_hooks or mod._forward_pre_hooks:
                    return False
            bns += [edge.ops[CONV1][2], edge.ops[CONV3][2]]
        first = _bn_settings(bns[0])
        if first[4] is None:  # momentum None: a cumulative average needing a host sync
            return False
        return all(_bn_settings(bn) == first for bn in bns[1:])

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if not self._fusable(weights):
            return super().forward(x, weights)
        # All mixing matrices in one gather; slot 0 of the padded weights is the zero entry.
        mix = F.pad(weights.reshape(-1), (1, 0))[self.mix_index]
        nodes = [x]
        incoming: list[list[torch.Tensor]] = [[] for _ in range(MAX_NODES)]
        offset = 0
        for j, edges in enumerate(OUT_EDGES):
            src = nodes[j]
            n = len(edges)
            k = 2 + 2 * n
            m = mix[offset : offset + n * k].view(n, k)
            offset += n * k
            convs = [self.edges[e].ops[CONV1] for e in edges]
            convs += [self.edges[e].ops[CONV3] for e in edges]
            y = _relu_conv_bn(src, convs)
            pool = self.edges[edges[0]].ops[POOL](src)
            b, c, h, w = src.shape
            convs_out = [t.reshape(b, -1, c, h, w) for t in y]
            feats = torch.cat([src.unsqueeze(1), pool.unsqueeze(1), *convs_out], 1)
            out = torch.matmul(m, feats.reshape(b, k, c * h * w))  # (b, n, c·h·w)
            for r, e in enumerate(edges):
                incoming[EDGES[e][0]].append(out[:, r].view(b, c, h, w))
            # node j+1's sources are 0..j, all done now; sum in the plain path's edge order
            total = incoming[j + 1][0]
            for t in incoming[j + 1][1:]:
                total = total + t
            nodes.append(total)
        return nodes[-1]


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _relu_conv_bn(x: torch.Tensor, ops: list[nn.Module]) -> list[torch.Tensor]:
    """ReLU-Conv-BN of every op in `ops` (1x1 ones first) on x: outputs with the ops'
    channels concatenated, in `ops` order, as one or two tensors (the caller concatenates).

    On a GPU (launch-bound) the 1x1 kernels are zero-padded to 3x3 so one convolution and
    one BN do all; on a CPU (compute-bound: the padding would cost 9x the 1x1 multiply-adds)
    the 1x1 and the 3x3 kernels run as two convolutions and BNs. Both are the plain ops'
    math: the padded taps add exact zeros, BN is per channel."""
    ones = [op for op in ops if op[1].kernel_size == (1, 1)]
    threes = [op for op in ops if op[1].kernel_size == (3, 3)]
    relu = F.relu(x)
    if not x.is_cuda and ones and threes:
        return [
            _batch_norm(F.conv2d(relu, _cat([op[1].weight for op in group]), None, 1, pad), bns)
            for group, pad in ((ones, 0), (threes, 1))
            for bns in [[op[2] for op in group]]
        ]
    padded = [F.pad(op[1].weight, (1, 1, 1, 1)) for op in ones]
    weight = _cat([*padded, *[op[1].weight for op in threes]])
    return [_batch_norm(F.conv2d(relu, weight, None, 1, 1), [op[2] for op in ops])]


def _batch_norm(y: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
    """`_BatchNorm.forward` for BNs with equal settings over their concatenated channels."""
    bn = bns[0]
    update = bn.training and bn.track_running_stats
    use_buffers = (not bn.training or bn.track_running_stats) and bn.running_mean is not None
    mean = _cat([b.running_mean for b in bns]) if use_buffers else None
    var = _cat([b.running_var for b in bns]) if use_buffers else None
    weight = _cat([b.weight for b in bns]) if bn.affine else None
    bias = _cat([b.bias for b in bns]) if bn.affine else None
    out = F.batch_norm(
        y, mean, var, weight, bias, bn.training or bn.running_mean is None, bn.momentum, bn.eps
    )
    if update and mean is not None and len(bns) > 1:
        # batch_norm updated the concatenated copies; hand each op its slice back
        with torch.no_grad():
            c = bn.num_features
            _copy_all([b.running_mean for b in bns], list(mean.split(c)))
            _copy_all([b.running_var for b in bns], list(var.split(c)))
    if update and bn.num_batches_tracked is not None:
        with torch.no_grad():
            counts = [b.num_batches_tracked for b in bns]
            if _batched(counts[0]):
                for t in counts:
                    t.add_(1)
            else:
                torch._foreach_add_(counts, 1)
    return out


def _batched(t: torch.Tensor) -> bool:
    """A tensor seen inside vmap (packed seeds: search/multiseed.py)."""
    return bool(torch._C._functorch.is_batchedtensor(t))


def _copy_all(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    """`torch._foreach_copy_` (one kernel), or per tensor under vmap, which has no batching
    rule for the foreach op; the same copies either way."""
    if _batched(dst[0]) or _batched(src[0]):
        for d, s in zip(dst, src, strict=True):
            d.copy_(s)
    else:
        torch._foreach_copy_(dst, src)
