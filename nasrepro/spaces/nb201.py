"""NAS-Bench-201 search space, built as the reference DARTS search model does.

Reference: D-X-Y/AutoDL-Projects, xautodl/models/cell_searchs/search_model_darts.py
(TinyNetworkDarts), search_cells.py (NAS201SearchCell), cell_operations.py (OPS,
ResNetBasicblock) and cell_infers/tiny_network.py + cells.py (the discrete network).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasrepro.catalog import Bool, Int, Subset, register_op, register_space
from nasrepro.spaces.base import Supernet
from nasrepro.spaces.mixed import MixedOp, PartialMixedOp

# NB201's operation order (xautodl/models/cell_operations.py, NAS_BENCH_201).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
MAX_NODES = 4
# Edge (i <- j) order: AutoDL sorts the keys "i<-j" as strings; for 4 nodes this is also
# node-major order, the order of NB201 arch strings.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, MAX_NODES) for j in range(i))


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BN, NB201's `nor_conv` and ResNet sub-block."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        affine: bool,
        track_running_stats: bool,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool3x3(nn.AvgPool2d):
    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=False)


# Within NB201 cells every op has C_in == C_out and stride 1 (reductions are ResNet blocks),
# so skip is the identity and pooling needs no 1x1 pre-projection.
@register_op("nb201/none", "zero output (NB201 Zero)")
def _none(c: int, affine: bool, track: bool) -> nn.Module:
    return Zero()


@register_op("nb201/skip_connect", "identity")
def _skip(c: int, affine: bool, track: bool) -> nn.Module:
    return nn.Identity()


@register_op("nb201/nor_conv_1x1", "ReLU-Conv1x1-BN")
def _conv1(c: int, affine: bool, track: bool) -> nn.Module:
    return ReLUConvBN(c, c, 1, 1, 0, affine, track)


@register_op("nb201/nor_conv_3x3", "ReLU-Conv3x3-BN")
def _conv3(c: int, affine: bool, track: bool) -> nn.Module:
    return ReLUConvBN(c, c, 3, 1, 1, affine, track)


@register_op("nb201/avg_pool_3x3", "AvgPool3x3, count_include_pad=False")
def _pool(c: int, affine: bool, track: bool) -> nn.Module:
    return AvgPool3x3()


_OP_BUILDERS = {
    "none": _none,
    "skip_connect": _skip,
    "nor_conv_1x1": _conv1,
    "nor_conv_3x3": _conv3,
    "avg_pool_3x3": _pool,
}


class ResNetBasicBlock(nn.Module):
    """Stride-2 reduction between stages; BN affine with running stats, as in the reference."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, True, True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, True, True)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class SearchCell(nn.Module):
    """Four nodes, six mixed edges; the output is node 3 alone (no concatenation).

    `ops`: the candidate ops of every edge, in NB201's order (all five unless a suite drops
    some, `drop_ops`). `partial_channels` K > 1: PC-DARTS partial channels on every edge (ops
    on C/K channels, `PartialMixedOp`). PC-DARTS' authors published no NB201 code; this follows the
    third-party NB201 port aoiang/few-shot-NAS Few-Shot_NasBench201/lib/models/cell_searchs/
    search_cells.py `forward_pcdarts` (commit d3423c1): NB201 ops unchanged (no BN after
    pooling), channel shuffle, no edge normalization.
    """

    def __init__(
        self,
        c: int,
        affine: bool,
        track_running_stats: bool,
        partial_channels: int = 1,
        channel_shuffle: bool = True,
        ops: tuple[str, ...] = OPS,
    ) -> None:
        super().__init__()
        k = partial_channels
        if k < 1 or c % k:
            raise ValueError(f"partial_channels={k} must divide the cell's channels {c}")

        def edge() -> MixedOp:
            built = [_OP_BUILDERS[op](c // k, affine, track_running_stats) for op in ops]
            if k > 1:
                return PartialMixedOp(built, ops, channels=c, k=k, shuffle=channel_shuffle)
            return MixedOp(built, ops, channels=c)

        self.edges = nn.ModuleList(edge() for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for i in range(1, MAX_NODES):
            total = 0
            for j in range(i):
                total = total + self.edges[e](nodes[j], weights[e])
                e += 1
            nodes.append(total)
        return nodes[-1]


class DiscreteCell(nn.Module):
    """The cell a genotype selects: one op per edge (NB201 InferCell)."""

    def __init__(self, genotype: Nb201Genotype, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_OP_BUILDERS[op](c, True, True) for op in genotype.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for i in range(1, MAX_NODES):
            total = 0
            for j in range(i):
                total = total + self.edges[e](nodes[j])
                e += 1
            nodes.append(total)
        return nodes[-1]


def _stage_layout(c: int, n: int) -> list[tuple[int, bool]]:
    """(channels, is_reduction) per layer: [C]*N + [2C] + [2C]*N + [4C] + [4C]*N."""
    return (
        [(c, False)] * n
        + [(2 * c, True)]
        + [(2 * c, False)] * n
        + [(4 * c, True)]
        + [(4 * c, False)] * n
    )


class _Nb201Body(nn.Module):
    """Stem, cells and head shared by the supernet and the discrete network."""

    def __init__(
        self, cells: list[nn.Module], c: int, c_last: int, num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


def kept_ops(drop_ops: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """NB201's ops less `drop_ops`, in NB201's order: GAEA's `search.exclude_zero` space is
    `drop_ops=("none",)`, AutoDL's NAS_BENCH_201_NOZERO in liamcli/AutoDL-Projects
    lib/models/cell_operations.py. Every cell it holds is still an NB201 cell (same arch
    string, same table index)."""
    unknown = [op for op in drop_ops if op not in OPS]
    if unknown:
        raise ValueError(f"drop_ops: unknown NB201 op {unknown[0]!r} (known: {', '.join(OPS)})")
    ops = tuple(op for op in OPS if op not in drop_ops)
    if not ops:
        raise ValueError("drop_ops: drops every NB201 op; at least one must stay")
    return ops


class Nb201Supernet(Supernet):
    """TinyNetworkDarts: one α (6 edges x |ops| ops, init 1e-3·randn) shared by all 15 cells;
    `op_names` are the edge's candidate ops (NB201's five unless some are dropped)."""

    def __init__(
        self,
        num_classes: int,
        c: int = 16,
        n: int = 5,
        in_channels: int = 3,
        track_running_stats: bool = False,
        affine: bool = False,
        partial_channels: int = 1,
        edge_normalization: bool = False,
        channel_shuffle: bool = True,
        fused: bool = False,
        ops: tuple[str, ...] = OPS,
    ) -> None:
        super().__init__()
        if edge_normalization:
            # PC-DARTS' edge normalization has no NB201 reference implementation (the NB201
            # PC-DARTS port, few-shot-NAS forward_pcdarts, uses partial channels only).
            raise ValueError(
                "edge_normalization is not defined on nb201; set method_args.pc."
                "edge_normalization: false"
            )
        if fused and tuple(ops) != OPS:
            raise ValueError("fused needs all five NB201 ops; set fused: false with drop_ops")
        self.op_names = tuple(ops)
        cell_cls = SearchCell
        if fused:  # one conv/BN per source node, same parameters (nb201_fused.py, issue #6)
            from nasrepro.spaces.nb201_fused import FusedSearchCell as cell_cls
        cells: list[nn.Module] = []
        c_prev = c
        self.search_cell_index: list[int] = []
        for idx, (c_cur, reduction) in enumerate(_stage_layout(c, n)):
            if reduction:
                cells.append(ResNetBasicBlock(c_prev, c_cur))
            else:
                cells.append(
                    cell_cls(
                        c_cur, affine, track_running_stats, partial_channels, channel_shuffle,
                        self.op_names,
                    )
                )
                self.search_cell_index.append(idx)
            c_prev = c_cur
        self.body = _Nb201Body(cells, c, c_prev, num_classes, in_channels)
        self.arch_alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(self.op_names)))

    @property
    def num_search_cells(self) -> int:
        return len(self.search_cell_index)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.arch_alpha]

    def alpha_names(self) -> list[str]:
        return ["cell"]

    def cell_alpha_index(self) -> list[int]:
        return [0] * self.num_search_cells

    def forward(
        self, x: torch.Tensor, cell_weights: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        shared = torch.softmax(self.arch_alpha, dim=-1) if cell_weights is None else None
        x = self.body.stem(x)
        k = 0
        for cell in self.body.cells:
            if isinstance(cell, SearchCell):
                x = cell(x, shared if cell_weights is None else cell_weights[k])
                k += 1
            else:
                x = cell(x)
        return self.body.head(x)


class Nb201Network(nn.Module):
    """The discrete NB201 network of a genotype (BN affine, running stats on)."""

    def __init__(
        self,
        genotype: Nb201Genotype,
        num_classes: int,
        c: int = 16,
        n: int = 5,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        cells: list[nn.Module] = []
        c_prev = c
        for c_cur, reduction in _stage_layout(c, n):
            cells.append(
                ResNetBasicBlock(c_prev, c_cur) if reduction else DiscreteCell(genotype, c_cur)
            )
            c_prev = c_cur
        self.body = _Nb201Body(cells, c, c_prev, num_classes, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body.stem(x)
        for cell in self.body.cells:
            x = cell(x)
        return self.body.head(x)


_ARCH_RE = re.compile(r"^\|([a-z0-9_]+)~(\d)\|(?:\+\|(?:[a-z0-9_]+~\d\|)+)+$")


@dataclass(frozen=True)
class Nb201Genotype:
    """One op per edge, in EDGES order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ValueError(f"an NB201 genotype has {len(EDGES)} edges, got {len(self.ops)}")
        bad = [op for op in self.ops if op not in OPS]
        if bad:
            raise ValueError(f"unknown NB201 op(s) {bad} (known: {', '.join(OPS)})")

    def to_arch_str(self) -> str:
        """`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` as NB201 writes it."""
        nodes, e = [], 0
        for i in range(1, MAX_NODES):
            parts = []
            for j in range(i):
                parts.append(f"{self.ops[e]}~{j}")
                e += 1
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    @classmethod
    def from_arch_str(cls, text: str) -> Nb201Genotype:
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != MAX_NODES - 1 or not _ARCH_RE.match(text):
            raise ValueError(f"not an NB201 arch string: {text!r}")
        ops: list[str] = []
        for i, node in enumerate(nodes, start=1):
            items = [s for s in node.split("|") if s]
            if len(items) != i:
                raise ValueError(f"node {i} of {text!r} needs {i} inputs, got {len(items)}")
            for j, item in enumerate(items):
                op, src = item.split("~")
                if int(src) != j:
                    raise ValueError(f"node {i} input {j} of {text!r} names source {src}")
                ops.append(op)
        return cls(tuple(ops))

    def index(self) -> int:
        """NB201 architecture index (the benchmark's own order, read from the shipped table)."""
        from nasrepro.evaluate.nb201 import Nb201Table

        return Nb201Table.load().index_of(self.to_arch_str())


def derive_argmax(alpha: torch.Tensor, ops: tuple[str, ...] = OPS) -> Nb201Genotype:
    """DARTS on NB201: per edge, argmax over the edge's ops (all five, `none` included, unless
    some are dropped), as AutoDL's genotype() and GAEA's NASBENCH201Network.genotype()."""
    idx = alpha.detach().argmax(dim=-1).tolist()
    return Nb201Genotype(tuple(ops[k] for k in idx))


@register_space(
    "nb201",
    "NAS-Bench-201: 15 cells of 4 nodes/6 edges, 5 ops, one shared α",
    args={
        "c": Int(1),
        "n": Int(1),
        "in_channels": Int(1),
        "track_running_stats": Bool(),
        "affine": Bool(),
        "partial_channels": Int(1),
        "edge_normalization": Bool(),
        "channel_shuffle": Bool(),
        "fused": Bool(),
        "drop_ops": Subset(*OPS, at_most=len(OPS) - 1),
    },
)
class Nb201Space:
    name = "nb201"
    # AutoDL's split files: CIFAR-10 25k/25k of train; CIFAR-100 and ImageNet16-120 take α
    # from the test set's xvalid half, which a suite must name (datasets/search.py)
    search_protocol = "nb201"
    ops = OPS
    edges = EDGES

    def build_supernet(self, num_classes: int, **args: Any) -> Nb201Supernet:
        """`drop_ops` removes ops from every edge; as DartsSpace does with include_none, the
        space object then names the ops of the supernet it built last (`edge_op_names`)."""
        self.ops = kept_ops(args.pop("drop_ops", ()))
        return Nb201Supernet(num_classes, ops=self.ops, **args)

    def build_network(self, genotype: Nb201Genotype, num_classes: int, **args: Any) -> Nb201Network:
        return Nb201Network(genotype, num_classes, **args)

    def edge_op_names(self, alpha_name: str, edge: int) -> tuple[str, ...]:
        """Names of the ops mixed on `edge` of α tensor `alpha_name` (for logs and plots)."""
        return self.ops

    def parse_genotype(self, text: str) -> Nb201Genotype:
        return Nb201Genotype.from_arch_str(text)

    def format_genotype(self, genotype: Nb201Genotype) -> str:
        return genotype.to_arch_str()

    def derive_argmax(self, supernet: Nb201Supernet) -> Nb201Genotype:
        return derive_argmax(supernet.arch_alpha, supernet.op_names)
