"""FairDARTS' genotype: a threshold on sigmoid(α) with at most two inputs per node.

xiaomi-automl/FairDARTS fairdarts/utils.py `parse`, `parse_method='threshold_sparse'` (the
README's search command; `--op_threshold` 0.85, train_search.py's default):
per node, the two incoming edges of largest max σ(α) (`sorted(..., key=-max)[:2]`: a tie goes
to the earlier edge), each with its op of largest σ(α) (strict `>`: the earlier op on a tie);
the pair (op, edge) is kept only when that σ(α) >= threshold. A node may so keep 2, 1 or 0
inputs.

The network the authors build from it (model.py `DCOCell`) sums the kept inputs of each node,
drops a node without inputs from the cell's output concatenation, and skips an input that
comes from such a dropped node. nasrepro's DARTS genotype has two inputs per node; this rule's
cells map onto it without changing the network's function:
- an input that was not kept is `('none', j)` on the other of the two ranked edges: the zero
  op adds nothing and has no parameters or FLOPs;
- a node without kept inputs is left out of the concatenation (`normal_concat` /
  `reduce_concat` list the nodes that have one);
- a kept input from a node without inputs becomes `none` too, as DCOCell skips it; a node all
  of whose kept inputs come from such nodes cannot be built by the authors' DCOCell either
  (`sum([])` is the int 0) and is an error here.
DCOCell applies drop-path to each node's sum, quark0's cell (the retraining recipes here) to
each non-identity op: the retrained networks differ in that regularizer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nasrepro.catalog import Float, register_selector
from nasrepro.spaces.base import SearchSpace, Supernet
from nasrepro.spaces.darts import STEPS, DartsGenotype, node_slices

THRESHOLD = 0.85  # fairdarts/train_search.py --op_threshold default


def threshold_cell(
    sig: Sequence[Sequence[float]], edge_ops: Sequence[Sequence[str]], threshold: float
) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
    """(gene, concat) of one cell from σ(α) (14 x ops) by `parse`'s threshold_sparse rule,
    mapped onto two inputs per node as the module docstring says."""
    if any("none" in ops for ops in edge_ops):
        raise ValueError(
            "selector fair_darts: the space must not mix 'none' (FairDARTS searches the 7 "
            "ops without it: space_args include_none: false)"
        )
    gene: list[tuple[str, int]] = []
    empty: set[int] = set()
    for i, (start, end) in enumerate(node_slices(STEPS)):
        node = i + 2
        rows = [list(sig[e]) for e in range(start, end)]
        ranked = sorted(range(end - start), key=lambda j: -max(rows[j]))[:2]
        kept: list[tuple[str, int] | None] = []
        for j in ranked:
            k_best = 0
            for k in range(len(rows[j])):
                if rows[j][k] > rows[j][k_best]:
                    k_best = k
            op = edge_ops[start + j][k_best]
            ok = rows[j][k_best] >= threshold and j not in empty
            kept.append((op, j) if ok else None)
        if all(k is None for k in kept):
            empty.add(node)
            # no kept input: DCOCell has no such node; it is left out of the concat
            if any(rows[j][k] >= threshold for j in ranked for k in range(len(rows[j]))):
                raise ValueError(
                    f"selector fair_darts: node {node}'s kept inputs all come from nodes "
                    "without inputs (the authors' DCOCell cannot build it either)"
                )
        gene += [k if k is not None else ("none", j) for k, j in zip(kept, ranked, strict=True)]
    concat = tuple(n for n in range(2, 2 + STEPS) if n not in empty)
    if not concat:
        raise ValueError("selector fair_darts: no node keeps an input above the threshold")
    return tuple(gene), concat


@register_selector(
    "fair_darts",
    "FairDARTS' threshold_sparse rule: per node the two edges of largest σ(α), each kept when "
    "its best op's σ(α) >= threshold",
    args={"threshold": Float(0)},
)
def fair_darts(
    space: SearchSpace, supernet: Supernet, *, ctx: Any = None, threshold: float = THRESHOLD,
    **_: Any,
) -> Any:
    ops = getattr(supernet, "cell_ops", None)
    if ops is None or getattr(supernet, "edge_normalization", False):
        raise ValueError("selector fair_darts needs a DARTS-cell supernet without edge β")
    cells = []
    for alpha, edge_ops in ((supernet.alphas_normal, ops.normal),
                            (supernet.alphas_reduce, ops.reduce)):  # fmt: skip
        sig = torch.sigmoid(alpha.detach().double()).tolist()
        cells.append(threshold_cell(sig, edge_ops, threshold))
    (normal, normal_concat), (reduce, reduce_concat) = cells
    genotype = DartsGenotype(normal, normal_concat, reduce, reduce_concat)
    if ctx is not None:
        ctx.state["selection"] = {
            "selector": "fair_darts",
            "threshold": threshold,
            "genotype": space.format_genotype(genotype),
        }
    return genotype
