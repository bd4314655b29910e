"""The DARTS search space (S0), its supernet, genotype and discrete network.

References: quark0/darts cnn/model_search.py (Network, Cell, MixedOp, genotype/_parse),
cnn/model.py (the discrete Cell) and cnn/genotypes.py (Genotype), commit f276dd3;
automl/RobustDARTS src/search/model_search.py (per-edge op lists, commit 3dec3fe);
yuhuixu1993/PC-DARTS model_search.py (partial channels, edge normalization, commit b74702f).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasrepro.catalog import Bool, Choice, Int, register_space
from nasrepro.spaces.base import Supernet
from nasrepro.spaces.darts_ops import (
    PRIMITIVES,
    PRIMITIVES_NO_NONE,
    FactorizedReduce,
    ReLUConvBN,
    build_op,
    search_op,
)
from nasrepro.spaces.mixed import MixedOp, PartialMixedOp

STEPS = 4  # intermediate nodes per cell (quark0 Network steps=4)
MULTIPLIER = 4  # nodes concatenated into the cell output (quark0 multiplier=4)
# Edge e = (node, input): node 2..5 takes every earlier state (0, 1 = the two cell inputs),
# in quark0's order `for i in range(steps): for j in range(2 + i)`: 14 edges.
EDGES: tuple[tuple[int, int], ...] = tuple((i + 2, j) for i in range(STEPS) for j in range(2 + i))
NUM_EDGES = len(EDGES)
CONCAT: tuple[int, ...] = tuple(range(2 + STEPS - MULTIPLIER, STEPS + 2))

EdgeOps = tuple[tuple[str, ...], ...]


def node_slices(steps: int = STEPS) -> list[tuple[int, int]]:
    """[start, end) of each intermediate node's incoming edges: (0,2), (2,5), (5,9), (9,14)."""
    out, start = [], 0
    for i in range(steps):
        out.append((start, start + 2 + i))
        start += 2 + i
    return out


@dataclass(frozen=True)
class CellOps:
    """The ops mixed on each of the 14 edges of the normal and the reduction cell."""

    normal: EdgeOps
    reduce: EdgeOps

    def __post_init__(self) -> None:
        for kind, edges in (("normal", self.normal), ("reduce", self.reduce)):
            if len(edges) != NUM_EDGES:
                raise ValueError(f"{kind} cell needs {NUM_EDGES} edge op lists, got {len(edges)}")
            widths = {len(ops) for ops in edges}
            if len(widths) != 1:
                raise ValueError(f"{kind} cell edges mix different op counts {sorted(widths)}")
        if len(self.normal[0]) != len(self.reduce[0]):
            raise ValueError("normal and reduction cells need the same number of ops per edge")

    @classmethod
    def uniform(cls, ops: tuple[str, ...]) -> CellOps:
        return cls((tuple(ops),) * NUM_EDGES, (tuple(ops),) * NUM_EDGES)

    def of(self, reduction: bool) -> EdgeOps:
        return self.reduce if reduction else self.normal

    @property
    def num_ops(self) -> int:
        return len(self.normal[0])

    def all_ops(self) -> tuple[str, ...]:
        """The op list of a uniform space (α's column order); otherwise (S1) every op used
        anywhere, in the order of `darts_ops.PRIMITIVES`."""
        lists = set(self.normal) | set(self.reduce)
        if len(lists) == 1:
            return next(iter(lists))
        used = {op for ops in lists for op in ops}
        order = (*PRIMITIVES, "noise")
        return tuple(op for op in order if op in used)


# ----------------------------------------------------------------------------- supernet


def build_stem(
    stem: str, in_channels: int, c: int, stem_multiplier: int
) -> tuple[nn.Module, nn.Module | None, int, int, int, bool]:
    """(stem, stem1, C_prev_prev, C_prev, C_curr, reduction_prev) for the first cell.

    `cifar`: quark0's 3x3 conv to stem_multiplier·C. `imagenet`: PC-DARTS
    model_search_imagenet.py, three stride-2 3x3 convs (224 -> 28) as stem0
    (3 -> stem_multiplier·C/2 -> stem_multiplier·C) and stem1 (stem_multiplier·C ->
    stem_multiplier·C): 3 -> 24 -> 48 and 48 -> 48 for C = 16. The first cell then sees a
    reduced s0. (The ImageNet *evaluation* network's stem, nets/darts_eval.py, is C-wide.)
    """
    c_stem = stem_multiplier * c
    if stem == "imagenet":
        stem0 = nn.Sequential(
            nn.Conv2d(in_channels, c_stem // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_stem // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_stem // 2, c_stem, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_stem),
        )
        stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(c_stem, c_stem, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_stem),
        )
        return stem0, stem1, c_stem, c_stem, c, True
    if stem != "cifar":
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    conv = nn.Sequential(
        nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
    )
    return conv, None, c_stem, c_stem, c, False


class SkipDropout(nn.Module):
    """A stride-1 skip connection followed by dropout at rate `p` in training mode: P-DARTS'
    search-time regularisation of skips (chenxin061/pdarts model_search.py MixedOp:
    `nn.Sequential(Identity(), nn.Dropout(p))`, built only when the stage's rate is > 0;
    the rate is set per epoch, `Network.update_p`)."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op
        self.p = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.op(x), self.p, self.training)


class SearchCell(nn.Module):
    """quark0 model_search.Cell: preprocess both inputs to C channels, 4 nodes each summing
    a mixed edge from every earlier state, output = concat of the 4 nodes (4C channels)."""

    def __init__(
        self,
        edge_ops: EdgeOps,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        partial_channels: int = 1,
        affine: bool = False,
        channel_shuffle: bool = True,
        skip_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, affine=affine)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=affine)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=affine)
        k = partial_channels
        self.edges = nn.ModuleList()
        for (_, j), names in zip(EDGES, edge_ops, strict=True):
            stride = 2 if reduction and j < 2 else 1
            ops = [search_op(name, c // k, stride, affine) for name in names]
            if skip_dropout and stride == 1:  # pdarts: on Identity only, not FactorizedReduce
                ops = [
                    SkipDropout(op) if n == "skip_connect" else op
                    for n, op in zip(names, ops, strict=True)
                ]
            if k > 1:
                self.edges.append(
                    PartialMixedOp(ops, names, stride, channels=c, k=k, shuffle=channel_shuffle)
                )
            else:
                self.edges.append(MixedOp(ops, names, stride, channels=c))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        edge_weights: torch.Tensor | None = None,
        drop_prob: float = 0.0,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(STEPS):
            terms = []
            for j, h in enumerate(states):
                out = self.edges[offset + j](h, weights[offset + j])
                if drop_prob > 0.0 and self.training:
                    out = search_drop_path(out, drop_prob)
                # PC-DARTS Cell.forward: weights2[offset + j] * op(h, weights[offset + j])
                terms.append(out if edge_weights is None else edge_weights[offset + j] * out)
            offset += len(states)
            states.append(sum(terms))
        return torch.cat(states[-MULTIPLIER:], dim=1)


def search_drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Drop each sample's edge output with probability p, scaled by 1/(1 − p), as
    RobustDARTS' search cells do (src/utils.py drop_path on every mixed-op output in
    training mode): the per-sample mask is drawn in float32 (`FloatTensor.bernoulli_`) from
    the device's generator, then x/keep·mask, the reference's order of operations."""
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=torch.float32, device=x.device)
    mask.bernoulli_(keep)
    return x / keep * mask.to(x.dtype)


def _cell_layout(layers: int) -> list[bool]:
    """Reduction at layers//3 and 2·layers//3 (quark0 Network.__init__)."""
    return [i in (layers // 3, 2 * layers // 3) for i in range(layers)]


def normalize_edges(betas: torch.Tensor, steps: int = STEPS) -> torch.Tensor:
    """PC-DARTS edge normalization: softmax of β over each node's incoming edges
    (Network.forward: weights2 = softmax(β[0:2]), then softmax(β[start:end]) per node)."""
    return torch.cat([F.softmax(betas[a:b], dim=-1) for a, b in node_slices(steps)])


class DartsSupernet(Supernet):
    """quark0 model_search.Network: stem conv3x3 (in -> stem_multiplier·C) + BN, `layers`
    search cells, GAP + Linear. α per cell type: `alphas_normal`, `alphas_reduce`
    (14 x |ops|, init 1e-3·randn); with `edge_normalization` also PC-DARTS' β per edge
    (`betas_normal`, `betas_reduce`, 14, init 1e-3·randn), after α in arch_parameters().
    """

    def __init__(
        self,
        num_classes: int,
        c: int = 16,
        layers: int = 8,
        include_none: bool = True,
        partial_channels: int = 1,
        edge_normalization: bool = False,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        cell_ops: CellOps | None = None,
        affine: bool = False,
        channel_shuffle: bool = True,
        stem: str = "cifar",
        skip_dropout: bool = False,
    ) -> None:
        super().__init__()
        if cell_ops is None:
            cell_ops = CellOps.uniform(PRIMITIVES if include_none else PRIMITIVES_NO_NONE)
        elif not include_none:
            raise ValueError("include_none=False applies to the DARTS space, not to a fixed op set")
        if partial_channels < 1 or c % partial_channels:
            raise ValueError(f"partial_channels={partial_channels} must divide c={c}")
        self.cell_ops = cell_ops
        self.partial_channels = partial_channels
        self.edge_normalization = edge_normalization
        self.stem_kind = stem
        self.stem, self.stem1, c_prev_prev, c_prev, c_curr, reduction_prev = build_stem(
            stem, in_channels, c, stem_multiplier
        )
        self.cells = nn.ModuleList()
        for reduction in _cell_layout(layers):
            if reduction:
                c_curr *= 2
            self.cells.append(
                SearchCell(
                    cell_ops.of(reduction),
                    c_prev_prev,
                    c_prev,
                    c_curr,
                    reduction,
                    reduction_prev,
                    partial_channels,
                    affine,
                    channel_shuffle,
                    skip_dropout,
                )
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, MULTIPLIER * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        # Search-time drop path on every edge in training mode (R-DARTS(DP)); set per epoch
        # by the method that uses it, 0 otherwise.
        self.drop_path_prob = 0.0
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, cell_ops.num_ops))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, cell_ops.num_ops))
        if edge_normalization:
            # PC-DARTS Network._initialize_alphas: betas 1e-3·randn(k)
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))

    def set_skip_dropout(self, p: float) -> None:
        """The dropout rate of every skip built with `skip_dropout` (P-DARTS `update_p`)."""
        for m in self.modules():
            if isinstance(m, SkipDropout):
                m.p = p

    def arch_parameters(self) -> list[nn.Parameter]:
        params = [self.alphas_normal, self.alphas_reduce]
        if self.edge_normalization:
            params += [self.betas_normal, self.betas_reduce]
        return params

    def alpha_names(self) -> list[str]:
        names = ["normal", "reduce"]
        if self.edge_normalization:
            names += ["betas_normal", "betas_reduce"]
        return names

    def cell_alpha_index(self) -> list[int]:
        return [int(cell.reduction) for cell in self.cells]

    def cell_weights(self) -> list[torch.Tensor]:
        probs = [F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1)]
        return [probs[i] for i in self.cell_alpha_index()]

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Normalized β (normal, reduce) when edge normalization is on, else None."""
        if not self.edge_normalization:
            return None
        return normalize_edges(self.betas_normal), normalize_edges(self.betas_reduce)

    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        """softmax(α) per edge; β as the per-node normalized edge weights, shape (14, 1)."""
        out = {
            "normal": F.softmax(self.alphas_normal.detach(), dim=-1),
            "reduce": F.softmax(self.alphas_reduce.detach(), dim=-1),
        }
        if self.edge_normalization:
            out["betas_normal"] = normalize_edges(self.betas_normal.detach()).unsqueeze(-1)
            out["betas_reduce"] = normalize_edges(self.betas_reduce.detach()).unsqueeze(-1)
        return out

    def forward(
        self, x: torch.Tensor, cell_weights: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        if cell_weights is None:
            cell_weights = self.cell_weights()
        edge_weights = self.edge_weights()
        s0 = s1 = self.stem(x)
        if self.stem1 is not None:
            s1 = self.stem1(s0)
        for cell, weights in zip(self.cells, cell_weights, strict=True):
            ew = None if edge_weights is None else edge_weights[int(cell.reduction)]
            s0, s1 = s1, cell(s0, s1, weights, ew, self.drop_path_prob)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1))


# ----------------------------------------------------------------------------- genotype


def _format_concat(concat: tuple[int, ...]) -> str:
    if len(concat) > 1 and concat == tuple(range(concat[0], concat[-1] + 1)):
        return f"range({concat[0]}, {concat[-1] + 1})"
    return repr(list(concat))


def _literal(node: ast.expr, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError as err:
        raise ValueError(f"{what}: not a literal ({ast.unparse(node)})") from err


def _parse_gene(node: ast.expr, what: str) -> tuple[tuple[str, int], ...]:
    value = _literal(node, what)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of (op, input) pairs")
    gene = []
    for pair in value:
        ok = isinstance(pair, list | tuple) and len(pair) == 2
        if not (ok and isinstance(pair[0], str) and type(pair[1]) is int):
            raise ValueError(f"{what}: {pair!r} is not an (op, input) pair")
        gene.append((pair[0], pair[1]))
    return tuple(gene)


# States of a cell (2 inputs + its nodes) a genotype string may name: DARTS cells have 6.
MAX_CELL_STATES = 64


def _parse_concat(node: ast.expr, what: str) -> tuple[int, ...]:
    if isinstance(node, ast.Call):
        # `range(a, b)` as genotypes print after a search; arguments must be int literals.
        if not (isinstance(node.func, ast.Name) and node.func.id == "range") or node.keywords:
            raise ValueError(f"{what}: only range(...) or a list is accepted")
        args = [_literal(a, what) for a in node.args]
        if not (1 <= len(args) <= 2 and all(type(a) is int for a in args)):
            raise ValueError(f"{what}: range needs one or two int literals")
        states = len(range(*args))  # counted, not built: range(0, 10**8) is 6.9 GB as a tuple
        if states > MAX_CELL_STATES:
            raise ValueError(
                f"{what}: {ast.unparse(node)} names {states:,} states; a cell has at most "
                f"{MAX_CELL_STATES}"
            )
        return tuple(range(*args))
    value = _literal(node, what)
    if not isinstance(value, list | tuple) or not all(type(v) is int for v in value):
        raise ValueError(f"{what} must be a list of node indices or range(a, b)")
    return tuple(value)


@dataclass(frozen=True)
class DartsGenotype:
    """quark0's Genotype(normal, normal_concat, reduce, reduce_concat): per cell type, two
    (op, input state) pairs per node, and the states concatenated into the output."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]

    FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

    def __post_init__(self) -> None:
        for kind in ("normal", "reduce"):
            gene = tuple((str(op), int(j)) for op, j in getattr(self, kind))
            concat = tuple(int(i) for i in getattr(self, f"{kind}_concat"))
            object.__setattr__(self, kind, gene)
            object.__setattr__(self, f"{kind}_concat", concat)
            if not gene or len(gene) % 2:
                raise ValueError(f"{kind}: two (op, input) pairs per node, got {len(gene)}")
            for k, (_, j) in enumerate(gene):
                if not 0 <= j < 2 + k // 2:
                    raise ValueError(f"{kind}: node {2 + k // 2} cannot take input state {j}")
            steps = len(gene) // 2
            if not concat or not all(0 <= i < 2 + steps for i in concat):
                raise ValueError(f"{kind}_concat {list(concat)} names states beyond {1 + steps}")

    def to_str(self) -> str:
        """quark0's repr: `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2,
        6), reduce=[...], reduce_concat=range(2, 6))`; a non-contiguous concat as a list."""
        return (
            f"Genotype(normal={list(self.normal)!r}, "
            f"normal_concat={_format_concat(self.normal_concat)}, "
            f"reduce={list(self.reduce)!r}, "
            f"reduce_concat={_format_concat(self.reduce_concat)})"
        )

    @classmethod
    def from_str(cls, text: str) -> DartsGenotype:
        """Parse a quark0/RobustDARTS/PC-DARTS genotype string without evaluating it: the
        string is parsed to a syntax tree and only literals (and `range(a, b)`) are read."""
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as err:
            raise ValueError(f"not a DARTS genotype: {text!r}") from err
        call = tree.body
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "Genotype"
        ):
            raise ValueError(f"not a DARTS genotype (expected Genotype(...)): {text!r}")
        if len(call.args) + len(call.keywords) != len(cls.FIELDS):
            raise ValueError(f"a DARTS genotype has the four fields {', '.join(cls.FIELDS)}")
        nodes = dict(zip(cls.FIELDS, call.args, strict=False))
        for kw in call.keywords:
            if kw.arg not in cls.FIELDS or kw.arg in nodes:
                raise ValueError(f"unexpected or repeated genotype field {kw.arg!r}")
            nodes[kw.arg] = kw.value
        return cls(
            normal=_parse_gene(nodes["normal"], "normal"),
            normal_concat=_parse_concat(nodes["normal_concat"], "normal_concat"),
            reduce=_parse_gene(nodes["reduce"], "reduce"),
            reduce_concat=_parse_concat(nodes["reduce_concat"], "reduce_concat"),
        )


def _parse_cell(weights: torch.Tensor, edge_ops: EdgeOps) -> tuple[tuple[str, int], ...]:
    """quark0 Network.genotype._parse, per-edge op lists as RobustDARTS: per node the two
    incoming edges with the largest non-`none` weight, each with its best non-`none` op.
    `none` is excluded where an edge has it (S0, S3); elsewhere all ops count (S1, S2, S4).
    Ties go to the earlier edge / op, as Python's stable sort and strict `>` do there."""
    w = weights.tolist()
    gene: list[tuple[str, int]] = []
    for start, end in node_slices():
        rows = list(range(start, end))

        def candidates(e: int) -> list[int]:
            return [k for k, op in enumerate(edge_ops[e]) if op != "none"]

        best = sorted(
            range(len(rows)), key=lambda j: -max(w[rows[j]][k] for k in candidates(rows[j]))
        )[:2]
        for j in best:
            e = rows[j]
            k_best = None
            for k in candidates(e):
                if k_best is None or w[e][k] > w[e][k_best]:
                    k_best = k
            assert k_best is not None
            gene.append((edge_ops[e][k_best], j))
    return tuple(gene)


def derive_genotype(
    alphas_normal: torch.Tensor,
    alphas_reduce: torch.Tensor,
    cell_ops: CellOps,
    betas_normal: torch.Tensor | None = None,
    betas_reduce: torch.Tensor | None = None,
) -> DartsGenotype:
    """The argmax genotype from α (softmax taken here); with β, each edge's softmax(α) row
    is multiplied by its normalized β before ranking edges (PC-DARTS genotype._parse)."""
    genes = []
    for alpha, beta, reduction in (
        (alphas_normal, betas_normal, False),
        (alphas_reduce, betas_reduce, True),
    ):
        w = F.softmax(alpha.detach().float(), dim=-1)
        if beta is not None:
            w = w * normalize_edges(beta.detach().float()).unsqueeze(-1)
        genes.append(_parse_cell(w, cell_ops.of(reduction)))
    return DartsGenotype(genes[0], CONCAT, genes[1], CONCAT)


def derive_argmax(supernet: DartsSupernet) -> DartsGenotype:
    betas = (
        (supernet.betas_normal, supernet.betas_reduce)
        if supernet.edge_normalization
        else (None, None)
    )
    return derive_genotype(
        supernet.alphas_normal, supernet.alphas_reduce, supernet.cell_ops, *betas
    )


# ----------------------------------------------------------------------------- network


class DiscreteCell(nn.Module):
    """quark0 model.Cell without drop-path: one op per chosen edge, affine BN."""

    def __init__(
        self,
        genotype: DartsGenotype,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        gene = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.indices = [j for _, j in gene]
        self.ops = nn.ModuleList(
            build_op(name, c, 2 if reduction and j < 2 else 1, True) for name, j in gene
        )

    @property
    def multiplier(self) -> int:
        return len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            a, b = 2 * i, 2 * i + 1
            states.append(
                self.ops[a](states[self.indices[a]]) + self.ops[b](states[self.indices[b]])
            )
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    """The discrete network of a genotype at search size (stem, cells and head of the
    supernet; BN affine). The CIFAR/ImageNet evaluation networks add auxiliary heads and
    drop-path on top of this."""

    def __init__(
        self,
        genotype: DartsGenotype,
        num_classes: int,
        c: int = 16,
        layers: int = 8,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        stem: str = "cifar",
    ) -> None:
        super().__init__()
        self.stem_kind = stem
        self.stem, self.stem1, c_prev_prev, c_prev, c_curr, reduction_prev = build_stem(
            stem, in_channels, c, stem_multiplier
        )
        self.cells = nn.ModuleList()
        for reduction in _cell_layout(layers):
            if reduction:
                c_curr *= 2
            cell = DiscreteCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        if self.stem1 is not None:
            s1 = self.stem1(s0)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


# ----------------------------------------------------------------------------- spaces


# The space arguments of DartsSupernet that a suite may set (cell_ops belong to the space).
SUPERNET_ARGS = {
    "c": Int(1),
    "layers": Int(1),
    "partial_channels": Int(1),
    "edge_normalization": Bool(),
    "in_channels": Int(1),
    "stem_multiplier": Int(1),
    "affine": Bool(),
    "channel_shuffle": Bool(),
    "stem": Choice("cifar", "imagenet"),
}


class DartsSpaceBase:
    """A DARTS-cell space with a fixed set of ops per edge (see `CellOps`)."""

    name = "darts"
    # quark0/darts, RobustDARTS, DARTS-, darts-pt: weights and α on the two halves of the
    # training set (datasets/search.py)
    search_protocol = "darts"
    cell_ops: CellOps = CellOps.uniform(PRIMITIVES)
    ops: tuple[str, ...] = PRIMITIVES
    edges = EDGES

    def _supernet(self, num_classes: int, **args: Any) -> DartsSupernet:
        # a progressive search's later stages pass their pruned `cell_ops` (search/stages.py)
        cell_ops = args.pop("cell_ops", None) or self.cell_ops
        return DartsSupernet(num_classes, cell_ops=cell_ops, **args)

    def build_supernet(self, num_classes: int, **args: Any) -> DartsSupernet:
        return self._supernet(num_classes, **args)

    def build_network(self, genotype: DartsGenotype, num_classes: int, **args: Any) -> DartsNetwork:
        self._check(genotype)
        return DartsNetwork(genotype, num_classes, **args)

    def edge_op_names(self, alpha_name: str, edge: int) -> tuple[str, ...]:
        """Names of the ops mixed on `edge` of α tensor `alpha_name` (`normal`, `reduce`);
        the β tensors of edge normalization have one entry per edge, named `beta`."""
        if alpha_name.startswith("betas_"):
            return ("beta",)
        if alpha_name not in ("normal", "reduce"):
            raise KeyError(f"unknown α tensor {alpha_name!r} of space {self.name!r}")
        return self.cell_ops.of(alpha_name == "reduce")[edge]

    def _check(self, genotype: DartsGenotype) -> None:
        for kind in ("normal", "reduce"):
            gene = getattr(genotype, kind)
            if len(gene) != 2 * STEPS:
                raise ValueError(f"{kind}: {self.name} cells have {STEPS} nodes, got {gene!r}")
            starts = [a for a, _ in node_slices()]
            edge_ops = self.cell_ops.of(kind == "reduce")
            for k, (op, j) in enumerate(gene):
                allowed = edge_ops[starts[k // 2] + j]
                if op not in allowed:
                    raise ValueError(
                        f"{kind}: op {op!r} on input {j} of node {2 + k // 2} is not in "
                        f"space {self.name!r} (that edge mixes {', '.join(allowed)})"
                    )

    def parse_genotype(self, text: str) -> DartsGenotype:
        genotype = DartsGenotype.from_str(text)
        self._check(genotype)
        return genotype

    def format_genotype(self, genotype: DartsGenotype) -> str:
        return genotype.to_str()

    def derive_argmax(self, supernet: DartsSupernet) -> DartsGenotype:
        return derive_argmax(supernet)


@register_space(
    "darts",
    "DARTS S0: 8 cells, 4 nodes/14 edges, 8 ops (7 with include_none=False)",
    args={**SUPERNET_ARGS, "include_none": Bool()},
)
class DartsSpace(DartsSpaceBase):
    """The DARTS space. `include_none=False` builds the 7-op space of darts-pt, SDARTS and
    Λ-DARTS; the space object then names the ops of the supernet it built last, so that
    `edge_op_names` matches the α it logs."""

    name = "darts"

    def build_supernet(self, num_classes: int, **args: Any) -> DartsSupernet:
        include_none = args.pop("include_none", True)
        if args.get("cell_ops") is None:  # a pruned stage keeps the names of the full space
            self.cell_ops = CellOps.uniform(PRIMITIVES if include_none else PRIMITIVES_NO_NONE)
            self.ops = self.cell_ops.all_ops()
        return self._supernet(num_classes, **args)
