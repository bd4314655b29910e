"""SGAS: greedy edge decisions during the DARTS search (Li et al., CVPR 2020), and SGAS+PT.

Reference: lightaime/sgas, cnn/train_search.py `edge_decision` and `main`, cnn/utils.py
`normalize` / `histogram_intersection`, cnn/model_search.py `check_edges`,
`parse_gene_force`, cnn/architect.py.

What the code does, and this hook with it:
- After every search epoch (training, then validation) each cell type (normal, then reduce)
  scores its edges from softmax(α): importance = the mass outside `none`; the edge's op
  distribution p = softmax(α)[non-none] / importance; certainty = 1 − H(p) / log |p|.
  Criterion 1: score = norm(importance) · norm(certainty); Criterion 2 (`use_history`)
  multiplies norm(stability), stability = the mean histogram intersection Σ min(p, p_h) of
  p with the last `history_size` epochs' p (empty before the first epoch: zeros). norm is
  min–max over all the edges of the cell, decided ones included (a constant vector becomes
  zeros). The history is appended every epoch, after its use.
- A decision epoch is `epoch >= warmup_dec_epoch` and `(epoch − warmup_dec_epoch) %
  decision_freq == 0` while an edge is undecided: the undecided edge of largest score (first
  maximum) is fixed to its largest non-`none` op; a node with two decided edges has its other
  edges pruned (`none`). Decided and pruned edges leave α training (`requires_grad =
  False`, Adam skips them): their α rows stay at their value, as this hook restores them
  after every α step; the forward runs the decided op alone and skips pruned edges, which
  here are one-hot and zero mixing weights (the same sum).
- The genotype is the decided ops; while edges are undecided (a short budget),
  `parse_gene_force`: per node the undecided edges of largest importance fill the two inputs,
  each with its argmax non-`none` α.
- The schedule fixes the length: warmup_dec_epoch + decision_freq·(edges − 1) + 5 + 1 epochs
  (50 at the defaults, 8 edges per cell), `search.epochs` in the suites.

SGAS+PT (Wang et al., ICLR 2021, §5.1: "we keep its unique search space shrinking process
unmodified and only replace its magnitude-based operation selection with ours"; darts-pt has
no SGAS code): `op_selection: perturbation` picks the decided edge's op as DARTS-PT's
Algorithm 1 does (nasrepro.select.pt): each non-`none` op is masked in turn on the projected
supernet and the α split is evaluated in train() mode; the op whose removal costs most
accuracy is kept. Keeping `none` out of the candidates follows SGAS, whose decided edges carry
a real op (a reading: the paper does not say).

Not reproduced: SGAS grows the batch size by `batch_increase` (8) after every decision epoch
to use the memory pruning frees (64 → 128 at the last decision); the search here keeps
`search.batch_size`. Its α batch is `next(iter(valid_queue))` (a random batch, with
replacement); here the α batches are the engine's paired ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nasrepro.catalog import Bool, Choice, Int, register_method, register_selector
from nasrepro.methods.base import MethodHook
from nasrepro.progress import Bar
from nasrepro.select.pt import (
    NONE_OP,
    Projection,
    _mask_op,
    alpha_op_names,
    darts_nodes,
    heldout_accuracy,
    mixed_tensors,
)

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext
    from nasrepro.spaces.base import SearchSpace, Supernet

KEEP_INPUTS = 2  # model_search.py check_edges / parse_gene_force: max_num_edges = 2
POST_TRAIN = 5  # train_search.py main(): epochs after the last decision, plus one


def sgas_epochs(edges: int, warmup_dec_epoch: int = 9, decision_freq: int = 5) -> int:
    """train_search.py: warmup_dec_epoch + decision_freq·(num_edges − 1) + post_train + 1
    with num_edges = 2·steps = 8 (the edges of a final cell), 50 at the defaults."""
    return warmup_dec_epoch + decision_freq * (edges - 1) + POST_TRAIN + 1


def is_decision_epoch(epoch: int, warmup_dec_epoch: int, decision_freq: int) -> bool:
    return epoch >= warmup_dec_epoch and (epoch - warmup_dec_epoch) % decision_freq == 0


def normalize(v: torch.Tensor) -> torch.Tensor:
    """utils.normalize: min–max to [0, 1]; zeros when all entries are equal."""
    lo = v.min()
    span = v.max() - lo
    return (v - lo) / span if span > 0 else torch.zeros_like(v)


def op_distribution(weights: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """(importance per edge, p = non-`none` weights / importance, columns of p in the row)."""
    cols = [k for k, n in enumerate(names) if n != NONE_OP]
    if len(cols) < 2:
        raise ValueError("SGAS needs at least two ops other than `none` on every edge")
    mass = weights[:, cols]
    importance = mass.sum(dim=-1)
    return importance, mass / importance[:, None], cols


def certainty(p: torch.Tensor) -> torch.Tensor:
    """1 − normalized entropy: Categorical(probs=p).entropy() / log |p| (0·log 0 = 0)."""
    logs = torch.where(p > 0, p.log(), torch.zeros_like(p))
    return 1 - (-(p * logs).sum(dim=-1)) / math.log(p.shape[-1])


def stability(history: Sequence[torch.Tensor], p: torch.Tensor) -> torch.Tensor:
    """Criterion 2's mean histogram intersection Σ_k min(p_h, p) over the stored epochs."""
    out = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
    for h in history:
        out += torch.minimum(h, p).sum(dim=-1)
    return out / len(history) if history else out


def edge_scores(
    weights: torch.Tensor,
    names: Sequence[str],
    history: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(score per edge, p, p's columns): Criterion 1, or Criterion 2 with a history."""
    importance, p, cols = op_distribution(weights, names)
    score = normalize(importance) * normalize(certainty(p))
    if history is not None:
        score = score * normalize(stability(history, p))
    return score, p, cols


def prune_full_nodes(nodes: list[list[int]], decided: dict[int, int], pruned: set[int]) -> None:
    """check_edges: a node with two edges out of the candidates loses its other edges."""
    for edges in nodes:
        if sum(e in decided or e in pruned for e in edges) >= KEEP_INPUTS:
            pruned.update(e for e in edges if e not in decided)


def forced_cell(
    weights: torch.Tensor,
    alpha: torch.Tensor,
    names: Sequence[Sequence[str]],
    nodes: list[list[int]],
    decided: dict[int, int],
    pruned: set[int],
) -> list[tuple[str, int]]:
    """parse_gene_force: decided edges with their op; a node short of two inputs takes its
    undecided edges of largest importance, each with its argmax non-`none` α."""
    gene = []
    for edges in nodes:
        open_edges = [e for e in edges if e not in decided and e not in pruned]
        need = KEEP_INPUTS - (len(edges) - len(open_edges))
        importance = {
            e: float(sum(weights[e, k] for k, n in enumerate(names[e]) if n != NONE_OP))
            for e in open_edges
        }
        extra = set(sorted(open_edges, key=lambda e: -importance[e])[: max(need, 0)])
        for e in edges:
            if e in decided:
                gene.append((names[e][decided[e]], e - edges[0]))
            elif e in extra:
                cols = [k for k, n in enumerate(names[e]) if n != NONE_OP]
                k = max(cols, key=lambda k: float(alpha[e, k]))  # first maximum
                gene.append((names[e][k], e - edges[0]))
    return gene


@register_method(
    "sgas",
    "SGAS: greedy edge decisions during the search (Criterion 1 or 2), optional PT op choice",
    args={
        "warmup_dec_epoch": Int(0),
        "decision_freq": Int(1),
        "use_history": Bool(),
        "history_size": Int(1),
        "op_selection": Choice("magnitude", "perturbation"),
        "eval_batches": Int(1, nullable=True),
    },
)
class Sgas(MethodHook):
    """Args (train_search.py defaults): warmup_dec_epoch 9, decision_freq 5, use_history
    (False: Criterion 1; True: Criterion 2), history_size 4; op_selection `magnitude` (SGAS)
    or `perturbation` (SGAS+PT); eval_batches: α-split batches per PT evaluation (None: all)."""

    name = "sgas"

    def __init__(
        self,
        warmup_dec_epoch: int = 9,
        decision_freq: int = 5,
        use_history: bool = False,
        history_size: int = 4,
        op_selection: str = "magnitude",
        eval_batches: int | None = None,
    ) -> None:
        super().__init__()
        if warmup_dec_epoch < 0 or decision_freq < 1 or history_size < 1:
            raise ValueError(
                "method 'sgas': warmup_dec_epoch >= 0, decision_freq >= 1 and history_size >= 1"
            )
        if op_selection not in ("magnitude", "perturbation"):
            raise ValueError(
                f"method 'sgas': op_selection must be 'magnitude' or 'perturbation', "
                f"got {op_selection!r}"
            )
        self.warmup_dec_epoch = warmup_dec_epoch
        self.decision_freq = decision_freq
        self.use_history = use_history
        self.history_size = history_size
        self.op_selection = op_selection
        self.eval_batches = eval_batches
        self.proj: Projection | None = None
        self.frozen: dict[int, torch.Tensor] = {}
        self.history: dict[int, list[torch.Tensor]] = {}
        self.decisions: list[dict[str, Any]] = []

    # --- set-up -------------------------------------------------------------------------

    def on_build(self, ctx: SearchContext) -> None:
        net = ctx.supernet
        if getattr(net, "edge_normalization", False):
            raise ValueError("method 'sgas' does not combine with edge normalization (β)")
        self.tensors = mixed_tensors(net)
        self.names = alpha_op_names(net)
        self.alpha_names = net.alpha_names()
        self.nodes = {t: darts_nodes(net.arch_parameters()[t].shape[0]) for t in self.tensors}
        for t in self.tensors:
            if not any(NONE_OP in ops for ops in self.names[t]):
                raise ValueError(
                    "method 'sgas' scores edges by their mass outside `none`: the space needs "
                    "the `none` op (space_args include_none: true)"
                )
        if self.proj is None:  # not restored by load_state_dict
            self.proj = Projection(len(net.arch_parameters()))
        self.frozen = {t: net.arch_parameters()[t].detach().clone() for t in self.tensors}
        for t in self.tensors:
            self.history.setdefault(t, [])

    # --- the forward of the decided supernet ----------------------------------------------

    def _project(self, ctx: SearchContext, weights: list[torch.Tensor]) -> list[torch.Tensor]:
        assert self.proj is not None
        return self.proj.cell_weights(ctx.supernet, weights)

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._project(ctx, weights)

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._project(ctx, weights)

    def _fixed_rows(self, t: int) -> list[int]:
        assert self.proj is not None
        return sorted(set(self.proj.ops[t]) | self.proj.pruned[t])

    def after_arch_step(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        # Adam's weight decay and momentum would move the rows SGAS takes out of training.
        alphas = ctx.supernet.arch_parameters()
        with torch.no_grad():
            for t in self.tensors:
                rows = self._fixed_rows(t)
                if rows:
                    alphas[t][rows] = self.frozen[t][rows].to(alphas[t].device)

    # --- decisions ----------------------------------------------------------------------

    def _decide_op(self, ctx: SearchContext, t: int, e: int, p: torch.Tensor, cols: list[int]):
        if self.op_selection == "magnitude":
            return cols[int(torch.argmax(p[e]))], {}
        assert self.proj is not None
        if ctx.valid_batches is None:
            raise ValueError("method 'sgas' with op_selection perturbation needs the α split")
        batches = []
        for i, batch in enumerate(ctx.valid_batches(ctx.epoch)):
            if self.eval_batches is not None and i >= self.eval_batches:
                break
            batches.append(tuple(v.to(ctx.device) for v in batch))
        names = self.names[t][e]
        accs = []
        # its own bar: heldout_accuracy ticks the innermost one, else the search's
        what = f"SGAS+PT decision ({self.alpha_names[t]} edge {e})"
        with Bar(what, len(cols) * len(batches), "batch"):
            for k in cols:
                with torch.no_grad():
                    w = self.proj.cell_weights(ctx.supernet, perturb=(t, _mask_op(e, k)))
                accs.append(heldout_accuracy(ctx, batches, w)[0])
        # DARTS-PT Algorithm 1: the op whose removal costs most accuracy (first minimum).
        return cols[int(np.argmin(accs))], {
            "accuracy_without": {names[k]: a for k, a in zip(cols, accs, strict=True)}
        }

    def _edge_decision(self, ctx: SearchContext, t: int) -> None:
        assert self.proj is not None
        alpha = ctx.supernet.arch_parameters()[t].detach()
        weights = torch.softmax(alpha, dim=-1)
        rows = alpha.shape[0]
        names = self.names[t]
        if len({tuple(n) for n in names}) != 1:
            raise ValueError("method 'sgas' needs the same ops on every edge")
        history = self.history[t] if self.use_history else None
        score, p, cols = edge_scores(weights, names[0], history)
        if self.use_history:
            self.history[t] = [*self.history[t], p.clone()][-self.history_size :]
        fixed = set(self._fixed_rows(t))
        candidates = [e for e in range(rows) if e not in fixed]
        if not candidates or not is_decision_epoch(
            ctx.epoch, self.warmup_dec_epoch, self.decision_freq
        ):
            return
        e = max(candidates, key=lambda i: (float(score[i]), -i))  # first maximum
        k, extra = self._decide_op(ctx, t, e, p, cols)
        self.proj.ops[t][e] = k
        before = set(self.proj.pruned[t])
        prune_full_nodes(self.nodes[t], self.proj.ops[t], self.proj.pruned[t])
        self.frozen[t] = alpha.clone()  # every row not yet fixed is refreshed; fixed rows kept
        self.decisions.append(
            {
                "epoch": ctx.epoch,
                "alpha": self.alpha_names[t],
                "edge": e,
                "op": names[e][k],
                "score": float(score[e]),
                "pruned": sorted(self.proj.pruned[t] - before),
                **extra,
            }
        )

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        for t in self.tensors:  # normal, then reduce (train_search.py main)
            self._edge_decision(ctx, t)
        return {"sgas.undecided_edges": float(sum(len(self._open(t)) for t in self.tensors))}

    # --- the genotype -------------------------------------------------------------------

    def genotype(self, space: SearchSpace, net: Supernet) -> Any:
        from nasrepro.spaces.darts import CONCAT, DartsGenotype

        assert self.proj is not None
        genes = {}
        for t in self.tensors:
            alpha = net.arch_parameters()[t].detach().cpu()
            genes[self.alpha_names[t]] = forced_cell(
                torch.softmax(alpha, dim=-1),
                alpha,
                self.names[t],
                self.nodes[t],
                self.proj.ops[t],
                self.proj.pruned[t],
            )
        return DartsGenotype(genes["normal"], CONCAT, genes["reduce"], CONCAT)

    def complete(self) -> bool:
        return all(not self._open(t) for t in self.tensors)

    def _open(self, t: int) -> list[int]:
        fixed = set(self._fixed_rows(t))
        return [e for e in range(self.frozen[t].shape[0]) if e not in fixed]

    # --- resume -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.proj is None:
            return {}
        return {
            "ops": [dict(d) for d in self.proj.ops],
            "pruned": [sorted(p) for p in self.proj.pruned],
            "frozen": {int(t): v.detach().cpu().clone() for t, v in self.frozen.items()},
            "history": {int(t): [h.cpu().clone() for h in v] for t, v in self.history.items()},
            "decisions": list(self.decisions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.proj = Projection(len(state["ops"]))
        self.proj.ops = [{int(e): int(k) for e, k in d.items()} for d in state["ops"]]
        self.proj.pruned = [{int(e) for e in p} for p in state["pruned"]]
        self.frozen = {int(t): v.clone() for t, v in state["frozen"].items()}
        self.history = {int(t): [h.clone() for h in v] for t, v in state["history"].items()}
        self.decisions = list(state["decisions"])


@register_selector(
    "sgas", "SGAS' decided edges (parse_gene_force where edges are undecided)", args={}
)
def sgas_selector(space: SearchSpace, supernet: Supernet, *, ctx: SearchContext, **_: Any) -> Any:
    hooks = [h for h in ctx.hooks if isinstance(h, Sgas)]
    if not hooks:
        raise ValueError("selector 'sgas' reads the decisions of method 'sgas': add it to methods")
    hook = hooks[0]
    genotype = hook.genotype(space, supernet)
    ctx.state["selection"] = {
        "selector": "sgas",
        "op_selection": hook.op_selection,
        "criterion": 2 if hook.use_history else 1,
        "complete": hook.complete(),
        "decisions": list(hook.decisions),
        "genotype": space.format_genotype(genotype),
    }
    return genotype
