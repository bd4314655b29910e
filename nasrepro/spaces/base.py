"""What the search engine needs from a search space."""

from __future__ import annotations

import abc
from typing import Any, Protocol

import torch
from torch import nn

from nasrepro.spaces.mixed import MixedOp


class Supernet(nn.Module, abc.ABC):
    """A weight-sharing network with architecture parameters α kept apart from weights.

    `forward(x, cell_weights=None)`: `cell_weights`, when given, is one tensor of mixing
    weights per search cell (already normalised) and replaces softmax(α) for that cell —
    the hook per-cell regularizers (Λ-DARTS) and perturbation methods need.
    """

    @abc.abstractmethod
    def arch_parameters(self) -> list[nn.Parameter]:
        """The α tensors, in a fixed order."""

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weight_parameters(self) -> list[tuple[str, nn.Parameter]]:
        arch = {id(p) for p in self.arch_parameters()}
        return [(n, p) for n, p in self.named_parameters() if id(p) not in arch]

    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        """softmax(α) per α tensor, keyed for logging (e.g. `normal`)."""
        return {
            name: torch.softmax(a.detach(), dim=-1)
            for name, a in zip(self.alpha_names(), self.arch_parameters(), strict=True)
        }

    @abc.abstractmethod
    def cell_alpha_index(self) -> list[int]:
        """For each search cell, in forward order, the index of the α tensor it mixes with
        (NB201: all 0; DARTS: 0 for normal, 1 for reduction cells)."""

    def cell_weights(self) -> list[torch.Tensor]:
        """softmax(α) for every search cell: the default `cell_weights` of forward()."""
        probs = [torch.softmax(a, dim=-1) for a in self.arch_parameters()]
        return [probs[i] for i in self.cell_alpha_index()]

    def mixed_ops(self) -> list[MixedOp]:
        """Every mixed edge of the supernet, in module order."""
        return [m for m in self.modules() if isinstance(m, MixedOp)]

    @abc.abstractmethod
    def alpha_names(self) -> list[str]:
        """One name per α tensor (e.g. `cell` on NB201, `normal`/`reduce` on DARTS)."""


class SearchSpace(Protocol):
    """A registered search space (see `nasrepro.catalog.register_space`)."""

    name: str
    ops: tuple[str, ...]

    def build_supernet(self, num_classes: int, **args: Any) -> Supernet: ...

    def build_network(self, genotype: Any, num_classes: int, **args: Any) -> nn.Module: ...

    def edge_op_names(self, alpha_name: str, edge: int) -> tuple[str, ...]: ...

    def parse_genotype(self, text: str) -> Any: ...

    def format_genotype(self, genotype: Any) -> str: ...

    def derive_argmax(self, supernet: Supernet) -> Any: ...


def build_space(name: str) -> SearchSpace:
    from nasrepro import catalog

    return catalog.get("space", name)()
