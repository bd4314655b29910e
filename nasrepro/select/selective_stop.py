"""SS-DARTS: operation-magnitude-based selective stop (paper 004, §2.4, Algorithm 2).

No public code exists (docs/fidelity.md): implemented from the paper alone.

- Eq. 11, operation magnitude: m(t, o) = (1/N) Σ_n [a_n^o]^t, the softmax weight of op o
  averaged over the N mixed edges of the cell at epoch t.
- Eq. 12: the stop point of op o_i is argmax_t m(t, o_i), its magnitude peak.
- Eq. 13: the stop point of o_i is argmax_t Σ_{j≠i} (m(t, o_i) − m(t, o_j)).
- Algorithm 2: train for all T epochs keeping α and m(t, o) per epoch; for each criterion,
  roll back to the α of its epoch and derive the architecture from those α.

softmax(α) per epoch is all Eq. 11 needs, and every EpochLog already holds it, so no method
hook is involved. Since the softmax weights of an edge sum to 1, Σ_o m(t, o) = 1 and Eq. 13
equals M·m(t, o_i) − 1: on softmax magnitudes both equations pick the same epoch. Both are
computed as written and recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from nasrepro.catalog import Choice, Str, register_selector
from nasrepro.spaces.base import SearchSpace, Supernet

Criterion = Literal["eq12", "eq13"]
CRITERIA: tuple[Criterion, ...] = ("eq12", "eq13")
# Paper 004 §3: "The magnitude peak of 3×3 convolution is taken as the stop point" (NB201).
NB201_DEFAULT_OP = "nor_conv_3x3"


def derive_from_weights(
    space: SearchSpace, supernet: Supernet, weights: Sequence[torch.Tensor | None]
) -> Any:
    """The space's argmax genotype of given mixing weights, not of the supernet's live α:
    one tensor per architecture parameter (rows summing to 1, or 0 for a pruned edge), None
    to keep that parameter as it is.

    Each parameter is set to log(weights) (softmax(log w) = w, and a per-node softmax such
    as PC-DARTS' β normalization is recovered too; an all-zero row becomes uniform, weaker
    than any one-hot row), `space.derive_argmax` reads them, and the live values come back.
    """
    params = supernet.arch_parameters()
    if len(weights) != len(params):
        raise ValueError(f"expected {len(params)} weight tensors, got {len(weights)}")
    saved = [a.detach().clone() for a in params]
    with torch.no_grad():
        for a, w in zip(params, weights, strict=True):
            if w is None:
                continue
            w = torch.as_tensor(w, dtype=a.dtype).to(a.device)
            if w.numel() != a.numel():
                raise ValueError(f"weights of shape {tuple(w.shape)} for α of {tuple(a.shape)}")
            a.copy_(w.reshape(a.shape).clamp_min(torch.finfo(a.dtype).tiny).log())
    try:
        return space.derive_argmax(supernet)
    finally:
        with torch.no_grad():
            for a, s in zip(params, saved, strict=True):
                a.copy_(s)


def operation_magnitude(
    alphas: Sequence[Sequence[Sequence[float]]], op_names: Sequence[Sequence[str]]
) -> tuple[list[str], np.ndarray]:
    """Eq. 11 for every epoch: (O, m) with m[t, i] = m(t, O[i]).

    `alphas[t]` is the cell's softmax(α) at epoch t (edges × ops), `op_names[n]` the ops of
    edge n. Where edges carry different op sets (RobustDARTS S1), m(t, o) averages over the
    edges that carry o; with one shared set this is Eq. 11's 1/N Σ_n.
    """
    ops: list[str] = []
    for names in op_names:
        ops.extend(o for o in names if o not in ops)
    m = np.zeros((len(alphas), len(ops)))
    for t, rows in enumerate(alphas):
        if len(rows) != len(op_names):
            raise ValueError(f"epoch {t}: {len(rows)} edges, expected {len(op_names)}")
        for i, o in enumerate(ops):
            values = [
                row[list(names).index(o)]
                for row, names in zip(rows, op_names, strict=True)
                if o in names
            ]
            m[t, i] = float(np.mean(values))
    return ops, m


def stop_epoch(m: np.ndarray, i: int, criterion: Criterion) -> int:
    """The epoch (row of m) chosen for op index i: Eq. 12 argmax_t m(t, o_i), or Eq. 13
    argmax_t Σ_{j≠i} (m(t, o_i) − m(t, o_j)). Ties: the earliest epoch."""
    if criterion == "eq12":
        score = m[:, i]
    elif criterion == "eq13":
        others = np.delete(m, i, axis=1)
        score = (m[:, i : i + 1] - others).sum(axis=1)
    else:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    return int(np.argmax(score))


def _cell_name(supernet: Supernet, cell: str | None) -> str:
    names = supernet.alpha_names()
    if cell is None:
        return "normal" if "normal" in names else names[0]
    if cell not in names:
        raise ValueError(f"cell {cell!r} is not an α tensor of this supernet ({names})")
    return cell


@register_selector(
    "selective_stop",
    "SS-DARTS: roll back to the operation-magnitude peak",
    args={
        "o": Str(nullable=True),
        "criterion": Choice("eq12", "eq13"),
        "cell": Str(nullable=True),
    },
)
def selective_stop(
    space: SearchSpace,
    supernet: Supernet,
    *,
    ctx: Any,
    data: Any,
    history: Sequence[Any],
    o: str | None = None,
    criterion: Criterion = "eq13",
    cell: str | None = None,
) -> Any:
    """SS-DARTS (paper 004, Algorithm 2) over the search history.

    - o: the operation o_i whose stop point is used; None = `nor_conv_3x3` on NB201 (the
      paper's choice there); required on other spaces (Table 4 reports one architecture each
      for sep_conv_5x5, sep_conv_3x3, dil_conv_3x3, dil_conv_5x5).
    - criterion: `eq13` (the paper's evaluation, §3) or `eq12`.
    - cell: the α tensor whose magnitudes are used; None = `normal` if present, else the
      only one (NB201 `cell`).

    Every op's stop point under both criteria is derived and recorded in
    `ctx.state["selection"]["points"]` (Algorithm 2's several architectures from one run);
    the genotype returned is the one of (o, criterion).
    """
    if not history:
        raise ValueError("selective_stop needs the per-epoch history of the search")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    name = _cell_name(supernet, cell)
    if o is None:
        if space.name != "nb201":
            raise ValueError(f"selective_stop on {space.name!r} needs `o`, the operation o_i")
        o = NB201_DEFAULT_OP
    rows = len(history[0].alpha[name])
    op_names = [tuple(space.edge_op_names(name, e)) for e in range(rows)]
    ops, m = operation_magnitude([h.alpha[name] for h in history], op_names)
    if o not in ops:
        raise ValueError(f"operation {o!r} is not in the cell's candidate set {ops}")

    def rollback(index: int) -> Any:
        log = history[index]
        weights = [torch.tensor(log.alpha[n]) for n in supernet.alpha_names()]
        return derive_from_weights(space, supernet, weights)

    points: dict[str, dict[str, dict[str, Any]]] = {}
    for crit in CRITERIA:
        points[crit] = {}
        for i, op in enumerate(ops):
            index = stop_epoch(m, i, crit)
            points[crit][op] = {
                "epoch": int(history[index].epoch),
                "genotype": space.format_genotype(rollback(index)),
            }
    chosen = stop_epoch(m, ops.index(o), criterion)
    genotype = rollback(chosen)
    if ctx is not None:
        ctx.state["selection"] = {
            "selector": "selective_stop",
            "cell": name,
            "o": o,
            "criterion": criterion,
            "epoch": int(history[chosen].epoch),
            "genotype": space.format_genotype(genotype),
            "operations": ops,
            "magnitude": {op: m[:, i].tolist() for i, op in enumerate(ops)},
            "epochs": [int(h.epoch) for h in history],
            "points": points,
        }
    return genotype
