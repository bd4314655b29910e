"""P-DARTS' genotype from the last stage's α, with at most M skip connections.

chenxin061/pdarts train_search.py, after the last stage (`sp == len(num_to_keep) - 1`):
1. per edge, `none` and the weaker of the other ops are dropped (`get_min_k_no_zero`): the
   edge keeps its non-`none` op of largest softmax(α);
2. per node, the two input edges of largest max softmax(α) stay, `none`'s entry set to 0
   first (`normal_final` / `keep_2_branches`, `sorted(...)[-1], [-2]`: the later edge wins a
   tie); the genotype lists them in edge order (`parse_network`);
3. normal cell only (`check_sk_number` / `delete_min_sk_prob` / `keep_1_on`): while more
   than M kept edges are skips, the kept skip of smallest softmax(α) gets probability 0
   and steps 1-2 run again from the last stage's op sets. The paper keeps M = 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nasrepro.catalog import Int, register_selector
from nasrepro.search.stages import smallest_first
from nasrepro.spaces.base import SearchSpace, Supernet
from nasrepro.spaces.darts import STEPS, DartsGenotype, node_slices

SKIP = "skip_connect"


def _kept_op(row: Sequence[float], ops: Sequence[str]) -> int:
    """The index of the one op `get_min_k_no_zero(row, idxs, len(ops) - 1)` leaves on."""
    if "none" in ops:
        z = ops.index("none")
        rest = [j for j in range(len(ops)) if j != z]
        dropped = {rest[i] for i in smallest_first([row[j] for j in rest], len(rest) - 1)}
        dropped.add(z)
    else:
        dropped = set(smallest_first(row, len(ops) - 1))
    (kept,) = [j for j in range(len(ops)) if j not in dropped]
    return kept


def _kept_edges(probs: list[list[float]]) -> list[int]:
    """Per node the two edges of largest max-probability (`keep_2_branches`)."""
    strength = [max(row) for row in probs]
    keep = []
    for start, end in node_slices(STEPS):
        order = sorted(range(end - start), key=lambda e: strength[start + e])
        keep += sorted([start + order[-1], start + order[-2]])
    return keep


def _cell(probs: list[list[float]], edge_ops: Sequence[tuple[str, ...]]) -> list[tuple[int, str]]:
    """(edge, op) of the two kept edges per node, in edge order."""
    return [(e, edge_ops[e][_kept_op(probs[e], edge_ops[e])]) for e in _kept_edges(probs)]


def pdarts_cells(
    normal: torch.Tensor,
    reduce: torch.Tensor,
    normal_ops: Sequence[tuple[str, ...]],
    reduce_ops: Sequence[tuple[str, ...]],
    max_skips: int | None,
) -> tuple[DartsGenotype, int]:
    """The genotype and the number of skips the normal cell had before the limit."""
    cells = []
    skips_before = 0
    for probs_t, ops, limit in ((normal, normal_ops, max_skips), (reduce, reduce_ops, None)):
        probs = [list(r) for r in probs_t.tolist()]
        for row, edge in zip(probs, ops, strict=True):
            if "none" in edge:  # train_search.py: normal_prob[i][0] = 0 when none is on
                row[edge.index("none")] = 0.0
        cell = _cell(probs, ops)
        if limit is not None:
            skips_before = sum(op == SKIP for _, op in cell)
            while sum(op == SKIP for _, op in cell) > limit:
                skip_edges = [e for e, op in cell if op == SKIP]
                sk = [probs[e][ops[e].index(SKIP)] if e in skip_edges else 1.0
                      for e in range(len(probs))]  # fmt: skip
                e = smallest_first(sk, 1)[0]
                probs[e][ops[e].index(SKIP)] = 0.0
                cell = _cell(probs, ops)
        cells.append(cell)

    def gene(cell: list[tuple[int, str]]) -> tuple[tuple[str, int], ...]:
        starts = [a for a, _ in node_slices(STEPS)]
        out = []
        for e, op in cell:
            node = max(k for k, a in enumerate(starts) if a <= e)
            out.append((op, e - starts[node]))
        return tuple(out)

    concat = tuple(range(2, 2 + STEPS))
    genotype = DartsGenotype(gene(cells[0]), concat, gene(cells[1]), concat)
    return genotype, skips_before


@register_selector(
    "pdarts",
    "P-DARTS' genotype of the last stage: no none, two edges per node, at most max_skips "
    "skips in the normal cell",
    args={"max_skips": Int(0, nullable=True)},
)
def pdarts(
    space: SearchSpace, supernet: Supernet, *, ctx: Any = None, max_skips: int | None = 2,
    **_: Any,
) -> Any:
    ops = getattr(supernet, "cell_ops", None)
    if ops is None:
        raise ValueError("selector pdarts needs a DARTS-cell supernet")
    soft = supernet.alpha_softmax()
    genotype, before = pdarts_cells(soft["normal"], soft["reduce"], ops.normal, ops.reduce,
                                    max_skips)  # fmt: skip
    if ctx is not None:
        ctx.state["selection"] = {
            "selector": "pdarts",
            "max_skips": max_skips,
            "normal_skips_before_limit": before,
            "genotype": space.format_genotype(genotype),
        }
    return genotype
