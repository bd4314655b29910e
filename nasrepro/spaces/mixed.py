"""The mixed operation shared by every space: Σ_k w_k·op_k(x), plus method-added terms.

Methods extend edges without editing a space: DARTS- appends an auxiliary skip to
`extras`; partial-channel and other variants are space arguments a method sets before
the supernet is built (`MethodHook.configure_space`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class MixedOp(nn.Module):
    """One edge of a supernet. `op_names[k]` names `ops[k]`; `stride` is the edge's stride."""

    def __init__(self, ops: Iterable[nn.Module], op_names: Iterable[str], stride: int = 1) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.op_names = tuple(op_names)
        self.stride = stride
        self.extras = nn.ModuleList()  # terms added to the edge output, e.g. DARTS- β·skip

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))
        for extra in self.extras:
            out = out + extra(x)
        return out
