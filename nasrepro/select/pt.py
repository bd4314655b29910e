"""DARTS-PT: perturbation-based architecture selection, and its PT-Mag ablation.

Wang et al., "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021
(suites/darts_pt.yaml; paper: Algorithm 1, Algorithm 2 of A.3 with the topology phase, §6.2
PT-Mag). Read off ruocwang/darts-pt: nasbench201/projection.py and
search_model_darts_proj.py (NB201), sota/cnn/projection.py and model_search_darts_proj.py
(DARTS space).

After the supernet is trained the weight optimizer restarts at lr / 10 (constant: darts-pt
builds a cosine scheduler on the DARTS space but never steps it) and tuning alternates with
decisions. At each decision epoch one undecided edge is drawn (uniformly, seeded); each of
its ops is masked in turn (mixing weight set to 0, no renormalisation) and the held-out
split is evaluated in train() mode (batch statistics); the op whose removal gives the lowest
accuracy is kept and the edge's mixing weights become one-hot for the rest of tuning. On a
DARTS-style cell, after all op decisions, each node with more than two inputs is decided:
the input edge whose removal gives the highest accuracy is dropped until two remain, and
the dropped edges' weights become zero. PT-Mag keeps the schedule but decides by softmax(α).

Tuning steps follow the search: the α/weight order of `search.alpha_step`, gradient
clipping, and the method hooks (trainable_weights, update_alpha, weight_step_cell_weights,
after_weight_backward; decided edges are re-projected after a hook perturbs the weights).
Hooks see `ctx.epoch` of the last search epoch; their epoch callbacks are not called. The α
step is first order whatever `search.order` (darts-pt's tuning architect is first order);
the search's Adam state carries on, as darts-pt keeps its architect.

Space-specific part (one function each, below): which edges feed which node
(`cell_nodes`: NB201 has no topology decision; a DARTS cell's node i has the i + 2 edges
that follow node i - 1's) and how a cell is read off mixing weights (`derive_cell`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from nasrepro.catalog import Bool, Choice, Float, Int, register_selector
from nasrepro.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, stage_path
from nasrepro.datasets.search import SearchData, _seeded_rngs
from nasrepro.progress import Bar, event, tick
from nasrepro.search.engine import (
    SearchContext,
    SearchDiverged,
    build_optimizers,
    rng_state,
    set_rng_state,
)
from nasrepro.select.selective_stop import derive_from_weights
from nasrepro.spaces.base import SearchSpace, Supernet
from nasrepro.spaces.darts import CONCAT, DartsGenotype, normalize_edges
from nasrepro.spaces.nb201 import Nb201Supernet

NONE_OP = "none"
KEEP_INPUTS = 2  # DARTS: every intermediate node keeps two input edges
# SeedSequence spawn keys of this module (the search loader uses 0 and 1).
_HELDOUT_STREAM = 2
_EDGE_STREAM = 3
# The held-out batches stay on the device when they fit in this many bytes, else they are
# re-read for every evaluation (they are identical each time: fixed per-item seeds).
_CACHE_BYTES = 2 * 1024**3

EdgeSelection = Literal["random", "ordered"]


# --------------------------------------------------------------------------------------
# Space-specific part
# --------------------------------------------------------------------------------------


def darts_nodes(num_edges: int) -> list[list[int]]:
    """Edge indices per intermediate node of a DARTS cell: node i has inputs from the two
    cell inputs and nodes 0..i-1, edges stored node by node (quark0/darts model_search.py)."""
    nodes, start, width = [], 0, KEEP_INPUTS
    while start < num_edges:
        nodes.append(list(range(start, start + width)))
        start += width
        width += 1
    if start != num_edges:
        raise ValueError(
            f"{num_edges} edges do not form a DARTS cell (2 + 3 + 4 + ... inputs per node)"
        )
    return nodes


def mixed_tensors(supernet: Supernet) -> list[int]:
    """Indices of the α tensors the cells mix as op weights (edges × ops); other
    architecture parameters (PC-DARTS' edge-normalization β) are not decided here."""
    return sorted(set(supernet.cell_alpha_index()))


def cell_nodes(supernet: Supernet) -> dict[int, list[list[int]] | None]:
    """Per mixed α tensor: the input edges of each node, or None where there is no topology
    decision (NB201: every edge is kept and carries its argmax op, `none` included)."""
    params = supernet.arch_parameters()
    if isinstance(supernet, Nb201Supernet):
        return {t: None for t in mixed_tensors(supernet)}
    return {t: darts_nodes(params[t].shape[0]) for t in mixed_tensors(supernet)}


def alpha_op_names(supernet: Supernet) -> dict[int, list[tuple[str, ...]]]:
    """Per mixed α tensor and edge (row), the names of the ops it mixes, read off the
    MixedOps (for hooks, which have no space object).

    Assumes `mixed_ops()` lists each search cell's edges in row order, cells in forward
    order (as every supernet here builds them); checks the count.
    """
    ops = supernet.mixed_ops()
    params = supernet.arch_parameters()
    index = supernet.cell_alpha_index()
    expected = sum(params[t].shape[0] for t in index)
    if len(ops) != expected:
        raise ValueError(
            f"{type(supernet).__name__} has {len(ops)} mixed ops, but its cells mix "
            f"{expected} α rows"
        )
    names: dict[int, list[tuple[str, ...]]] = {}
    offset = 0
    for t in index:
        rows = params[t].shape[0]
        if t not in names:
            names[t] = [tuple(ops[offset + e].op_names) for e in range(rows)]
        offset += rows
    return names


def edge_strength(row: Sequence[float] | torch.Tensor, names: Sequence[str]) -> float:
    """An edge's strength in the DARTS genotype: its largest non-`none` weight (quark0
    genotype(); RobustDARTS falls back to all ops when the edge has no `none`)."""
    values = [float(row[k]) for k, n in enumerate(names) if n != NONE_OP]
    return max(values) if values else max(float(v) for v in row)


def best_op(row: Sequence[float] | torch.Tensor, names: Sequence[str]) -> int:
    """The edge's op in the DARTS genotype: the first largest non-`none` weight."""
    candidates = [k for k, n in enumerate(names) if n != NONE_OP] or list(range(len(names)))
    return max(candidates, key=lambda k: float(row[k]))


def derive_cell(
    weights: torch.Tensor, names: Sequence[Sequence[str]], nodes: list[list[int]] | None
) -> list[tuple[int, str]]:
    """(edge, op) pairs of the cell the space's DARTS rule reads off `weights` (edges × ops).

    NB201 (nodes None): every edge, argmax over all ops, `none` included (AutoDL genotype()).
    DARTS: per node the two edges of largest `edge_strength` (stable sort: ties keep the
    lower edge, as Python's sorted in quark0), each with its `best_op`.
    """
    w = weights.detach().cpu()
    if nodes is None:
        return [(e, names[e][int(w[e].argmax())]) for e in range(w.shape[0])]
    cell = []
    for edges in nodes:
        top = sorted(edges, key=lambda e: -edge_strength(w[e], names[e]))[:KEEP_INPUTS]
        cell.extend((e, names[e][best_op(w[e], names[e])]) for e in top)
    return cell


# --------------------------------------------------------------------------------------
# The held-out (α) split, evaluated as darts-pt's infer(valid_queue, eval=False)
# --------------------------------------------------------------------------------------


class _HeldOut(Dataset):
    """The α split item by item, each augmented with a fixed seed of its own, so that every
    op mask is judged on identical images."""

    def __init__(self, data: Dataset, indices: Sequence[int], seed: int) -> None:
        self.data = data
        self.indices = [int(i) for i in indices]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_HELDOUT_STREAM,)))
        self.seeds = rng.integers(0, 2**63 - 1, size=len(self.indices), dtype=np.int64).tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        with _seeded_rngs(self.seeds[i]):
            return self.data[self.indices[i]]


class HeldOutBatches:
    """Re-iterable (x, y) batches of the search data's α split, on `device`.

    `limit` keeps the first `limit` batches (None: the whole split, as darts-pt).
    """

    def __init__(
        self,
        data: SearchData,
        batch_size: int,
        seed: int,
        device: torch.device,
        limit: int | None = None,
    ) -> None:
        # SearchLoader keeps the α split inside its DataLoader (PairedItems) and sampler.
        paired = data.loader._loader.dataset
        indices = data.loader.sampler.arch_indices.tolist()
        self.loader = DataLoader(
            _HeldOut(paired.arch_data, indices, seed), batch_size=batch_size, shuffle=False
        )
        self.device = device
        self.limit = limit
        self.size = 0
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        batches, used = [], 0
        for x, y in self._stream():
            used += x.element_size() * x.numel()
            self.size += len(y)
            if used <= _CACHE_BYTES:
                batches.append((x, y))
        if used <= _CACHE_BYTES:
            self._cache = batches

    def _stream(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step, (x, y) in enumerate(self.loader):
            if self.limit is not None and step >= self.limit:
                return
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self._cache) if self._cache is not None else self._stream()

    @property
    def num_batches(self) -> int:
        n = len(self.loader)
        return n if self.limit is None else min(n, self.limit)


@torch.no_grad()
def heldout_accuracy(
    ctx: SearchContext,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    cell_weights: list[torch.Tensor],
) -> tuple[float, float]:
    """(accuracy %, mean loss) of the supernet with `cell_weights` in train() mode: batch
    statistics, as darts-pt's infer(..., eval=False) ("disable running stats for projection")."""
    net = ctx.supernet
    net.train()
    correct, loss, total = 0, 0.0, 0
    for x, y in batches:
        logits = net(x, cell_weights=cell_weights)
        loss += ctx.criterion(logits, y).item() * len(y)
        correct += int((logits.argmax(dim=1) == y).sum().item())
        total += len(y)
        tick()  # the open decision's progress bar
    if total == 0:
        raise ValueError("the held-out (α) split is empty")
    return 100.0 * correct / total, loss / total


# --------------------------------------------------------------------------------------
# Decisions and projected mixing weights
# --------------------------------------------------------------------------------------


@dataclass
class Projection:
    """Decisions so far, per α tensor: the op kept on each decided edge, the pruned edges.

    darts-pt get_projected_weights(): decided edges are one-hot on their op, pruned edges
    are zero, the other edges keep softmax(α). Rows are replaced by constants, so decided
    edges pass no gradient to α.
    """

    num_tensors: int
    ops: list[dict[int, int]] = field(default_factory=list)
    pruned: list[set[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ops = self.ops or [{} for _ in range(self.num_tensors)]
        self.pruned = self.pruned or [set() for _ in range(self.num_tensors)]

    def apply(self, t: int, w: torch.Tensor) -> torch.Tensor:
        if not self.ops[t] and not self.pruned[t]:
            return w
        mask = torch.zeros(w.shape[0], dtype=torch.bool, device=w.device)
        fixed = torch.zeros_like(w)
        for e, k in self.ops[t].items():
            mask[e] = True
            fixed[e, k] = 1.0
        for e in self.pruned[t]:  # pruning overrides an op decision (project_edge)
            mask[e] = True
            fixed[e] = 0.0
        return torch.where(mask[:, None], fixed, w)

    def cell_weights(
        self,
        net: Supernet,
        weights: list[torch.Tensor] | None = None,
        perturb: tuple[int, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> list[torch.Tensor]:
        """Projected per-cell weights (from `weights`, default `net.cell_weights()`);
        `perturb = (t, fn)` applies `fn` to every cell that mixes with α tensor t."""
        weights = net.cell_weights() if weights is None else weights
        index = net.cell_alpha_index()
        done: dict[int, torch.Tensor] = {}
        out = []
        for w, t in zip(weights, index, strict=True):
            if id(w) not in done:
                p = self.apply(t, w)
                if perturb is not None and perturb[0] == t:
                    p = perturb[1](p)
                done[id(w)] = p
            out.append(done[id(w)])
        return out

    def undecided_edges(self, t: int, rows: int) -> list[int]:
        return [e for e in range(rows) if e not in self.ops[t]]


def _mask_op(e: int, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(w: torch.Tensor) -> torch.Tensor:
        w = w.clone()
        w[e, k] = 0.0  # darts-pt: weights[eid] * proj_mask, no renormalisation
        return w

    return fn


def _drop_edge(e: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(w: torch.Tensor) -> torch.Tensor:
        w = w.clone()
        w[e] = 0.0
        return w

    return fn


# --------------------------------------------------------------------------------------
# Tuning between decisions
# --------------------------------------------------------------------------------------


def _finite(loss: torch.Tensor, what: str, epoch: int, step: int) -> None:
    if not torch.isfinite(loss).item():
        raise SearchDiverged(
            f"{what} loss became {loss.item()} at tuning epoch {epoch} step {step}"
        )


def _weight_step(
    ctx: SearchContext,
    proj: Projection,
    opt: torch.optim.SGD,
    x: torch.Tensor,
    y: torch.Tensor,
    epoch: int,
) -> tuple[float, float]:
    """engine.weight_step on projected weights; method hooks compose as in the search, and
    decided edges are re-projected after them so they stay one-hot."""
    net = ctx.supernet
    opt.zero_grad(set_to_none=True)
    weights = proj.cell_weights(net)
    for hook in ctx.hooks:
        weights = hook.weight_step_cell_weights(ctx, weights)
    weights = proj.cell_weights(net, weights)
    logits = net(x, cell_weights=weights)
    loss = ctx.criterion(logits, y)
    _finite(loss, "training", epoch, ctx.step)
    loss.backward()
    for hook in ctx.hooks:
        hook.after_weight_backward(ctx, x, y)
    if ctx.settings.grad_clip is not None:
        params = [p for g in opt.param_groups for p in g["params"]]
        nn.utils.clip_grad_norm_(params, ctx.settings.grad_clip)
    opt.step()
    for a in net.arch_parameters():
        a.grad = None
    return loss.item(), (logits.detach().argmax(1) == y).float().mean().item() * 100.0


def _arch_step(
    ctx: SearchContext, proj: Projection, x: torch.Tensor, y: torch.Tensor, epoch: int
) -> tuple[float, float]:
    """First-order α step on projected weights with the search's Adam (darts-pt keeps its
    architect, whose tuning step is first order only: architect_ig.py)."""
    net, opt = ctx.supernet, ctx.a_optimizer
    assert opt is not None
    opt.zero_grad(set_to_none=True)
    logits = net(x, cell_weights=proj.cell_weights(net))
    loss = ctx.criterion(logits, y)
    _finite(loss, "validation", epoch, ctx.step)
    grads = torch.autograd.grad(loss, net.arch_parameters(), allow_unused=True)
    for a, g in zip(net.arch_parameters(), grads, strict=True):
        a.grad = torch.zeros_like(a) if g is None else g
    opt.step()
    return loss.item(), (logits.detach().argmax(1) == y).float().mean().item() * 100.0


def _tune_epoch(
    ctx: SearchContext,
    data: SearchData,
    proj: Projection,
    opt: torch.optim.SGD,
    epoch: int,
    fix_alpha: bool,
) -> dict[str, float]:
    s = ctx.settings
    ctx.supernet.train()
    alpha_first = s.resolved_alpha_step() == "before_weights"
    sums = np.zeros(4)
    n = n_alpha = 0
    for step, batch in enumerate(data.loader):
        if s.steps_per_epoch is not None and step >= s.steps_per_epoch:
            break
        ctx.step = step
        x_w, y_w, x_a, y_a = (t.to(ctx.device, non_blocking=True) for t in batch)
        update = not fix_alpha and all(h.update_alpha(ctx) for h in ctx.hooks)
        va = (0.0, 0.0)
        if update and alpha_first:
            va = _arch_step(ctx, proj, x_a, y_a, epoch)
        tr = _weight_step(ctx, proj, opt, x_w, y_w, epoch)
        if update and not alpha_first:
            va = _arch_step(ctx, proj, x_a, y_a, epoch)
        sums += np.array([*tr, *va])
        n += 1
        n_alpha += int(update)
        tick()  # the tuning progress bar
    if n == 0:
        raise SearchDiverged(f"tuning epoch {epoch} had no batches")
    valid = sums[2:] / n_alpha if n_alpha else np.full(2, float("nan"))
    return {
        "epoch": epoch,
        "lr": opt.param_groups[0]["lr"],
        "train_loss": float(sums[0] / n),
        "train_acc": float(sums[1] / n),
        "valid_loss": float(valid[0]),
        "valid_acc": float(valid[1]),
    }


# --------------------------------------------------------------------------------------
# The selection loop
# --------------------------------------------------------------------------------------


def decision_epochs(rounds: int, tune_epochs: int, proj_interval: int) -> list[int]:
    """Tuning epoch at whose start each decision round happens.

    darts-pt projects when `epoch % proj_intv == 0 or epoch == tune_epochs - 1`; with its
    tune_epochs this is round k at k·proj_interval and the last round at the last epoch.
    Rounds that would fall past the last epoch happen there, one after another.
    """
    if rounds < 1:
        return []
    early = [min(k * proj_interval, tune_epochs - 1) for k in range(rounds - 1)]
    return [*early, tune_epochs - 1]


def default_tune_epochs(rounds: int, proj_interval: int, has_topology: bool) -> int:
    """darts-pt's tuning length: NB201 proj_intv·(edges - 1) (nasbench201/projection.py:
    25 at proj_intv 5); DARTS proj_intv·(edges + nodes - 1) + 1 (sota/cnn/projection.py:
    14 op + 3 node rounds → 81 at proj_intv 5)."""
    return proj_interval * (rounds - 1) + (1 if has_topology else 0)


class _Selector:
    """Shared state of one PT / PT-Mag run."""

    def __init__(
        self,
        space: SearchSpace,
        ctx: SearchContext,
        data: SearchData,
        by: Literal["perturbation", "magnitude"],
        edge_selection: EdgeSelection,
        eval_batches: int | None,
        seed: int,
    ) -> None:
        self.ctx = ctx
        self.net = ctx.supernet
        self.by = by
        self.edge_selection = edge_selection
        self.alpha_names = self.net.alpha_names()
        params = self.net.arch_parameters()
        self.tensors = mixed_tensors(self.net)
        self.rows = {t: params[t].shape[0] for t in self.tensors}
        self.op_names = {
            t: [tuple(space.edge_op_names(self.alpha_names[t], e)) for e in range(rows)]
            for t, rows in self.rows.items()
        }
        self.nodes = cell_nodes(self.net)
        self.proj = Projection(len(params))
        self.node_queue = {
            t: [n for n, edges in enumerate(nodes) if len(edges) > KEEP_INPUTS] if nodes else []
            for t, nodes in self.nodes.items()
        }
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_EDGE_STREAM,)))
        self.decisions: list[dict[str, Any]] = []
        self.batches: HeldOutBatches | None = None
        if by == "perturbation":
            self.batches = HeldOutBatches(
                data, ctx.settings.batch_size, seed, ctx.device, eval_batches
            )

    @property
    def op_rounds(self) -> int:
        return max(self.rows.values())

    @property
    def node_rounds(self) -> int:
        return max(len(q) for q in self.node_queue.values())

    def _pick(self, candidates: list[int]) -> int:
        if self.edge_selection == "ordered":
            return candidates[0]
        return int(self.rng.choice(candidates))  # darts-pt: np.random.choice(remain_eids)

    def _softmax(self, t: int) -> torch.Tensor:
        return torch.softmax(self.net.arch_parameters()[t].detach(), dim=-1)

    def _accuracy(self, t: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
        assert self.batches is not None
        with torch.no_grad():
            weights = self.proj.cell_weights(self.net, perturb=(t, fn))
        return heldout_accuracy(self.ctx, self.batches, weights)[0]

    def decide_op(self, t: int, epoch: int) -> None:
        e = self._pick(self.proj.undecided_edges(t, self.rows[t]))
        names = self.op_names[t][e]
        record: dict[str, Any] = {
            "epoch": epoch,
            "kind": "op",
            "alpha": self.alpha_names[t],
            "edge": e,
        }
        if self.by == "perturbation":
            # Algorithm 1: o* = argmin_o ACC\o (first minimum, darts-pt's strict `<`).
            with self._bar(f"{self.alpha_names[t]} edge {e}", len(names)):
                accs = [self._accuracy(t, _mask_op(e, k)) for k in range(len(names))]
            k_best = int(np.argmin(accs))
            record["accuracy_without"] = dict(zip(names, accs, strict=True))
        else:
            # PT-Mag (§6.2): the largest softmax(α) on the edge, by the space's DARTS rule.
            row = self._softmax(t)[e]
            k_best = int(row.argmax()) if self.nodes[t] is None else best_op(row, names)
            record["softmax_alpha"] = dict(zip(names, row.tolist(), strict=True))
        self.proj.ops[t][e] = k_best
        record["op"] = names[k_best]
        self.decisions.append(record)
        self._announce(record, f"{self.alpha_names[t]} edge {e} -> {names[k_best]}")

    def decide_node(self, t: int, epoch: int) -> None:
        nodes = self.nodes[t]
        assert nodes is not None
        queue = self.node_queue[t]
        node = self._pick(queue)
        queue.remove(node)
        remaining = list(nodes[node])
        record: dict[str, Any] = {
            "epoch": epoch,
            "kind": "node",
            "alpha": self.alpha_names[t],
            "node": node,
        }
        if self.by == "perturbation":
            # Algorithm 2 / project_edge: drop the edge whose removal gives the highest
            # accuracy (last maximum: darts-pt's `not compare`), until two remain. As in
            # darts-pt, each removal is evaluated on the projected supernet, without the
            # edges already dropped at this node.
            rounds = []
            evaluations = sum(range(KEEP_INPUTS + 1, len(remaining) + 1))
            with self._bar(f"{self.alpha_names[t]} node {node}", evaluations):
                while len(remaining) > KEEP_INPUTS:
                    accs = {e: self._accuracy(t, _drop_edge(e)) for e in remaining}
                    drop = max(reversed(remaining), key=lambda e: accs[e])
                    rounds.append({"accuracy_without": accs, "dropped": drop})
                    remaining.remove(drop)
            record["rounds"] = rounds
        else:
            w = self._softmax(t)
            names = self.op_names[t]
            strength = {e: edge_strength(w[e], names[e]) for e in remaining}
            remaining = sorted(remaining, key=lambda e: -strength[e])[:KEEP_INPUTS]
            record["strength"] = strength
        self.proj.pruned[t] |= set(nodes[node]) - set(remaining)
        record["kept"] = sorted(remaining)
        self.decisions.append(record)
        self._announce(record, f"{self.alpha_names[t]} node {node} keeps edges {record['kept']}")

    def _bar(self, what: str, evaluations: int) -> Bar:
        """Progress of one perturbation decision: `evaluations` held-out passes."""
        per_pass = self.batches.num_batches if self.batches is not None else None
        return Bar(
            f"PT decision {len(self.decisions) + 1} ({what})",
            None if per_pass is None else evaluations * per_pass,
            "batch",
        )

    def _announce(self, record: dict[str, Any], what: str) -> None:
        """Log the decision and hand it to the trial (MLflow) as it is taken."""
        event(
            "pt_decision",
            {"index": len(self.decisions), "decisions": self.decisions},
            f"PT decision {len(self.decisions)} (tuning epoch {record['epoch']}): {what}",
        )

    def decide(self, k: int, epoch: int) -> None:
        for t, rows in self.rows.items():
            if k < self.op_rounds:
                if self.proj.undecided_edges(t, rows):
                    self.decide_op(t, epoch)
            elif self.node_queue[t]:
                self.decide_node(t, epoch)

    def state_dict(self) -> dict[str, Any]:
        """Decisions so far and the edge-draw stream, for resuming a killed selection."""
        return {
            "ops": [dict(d) for d in self.proj.ops],
            "pruned": [sorted(p) for p in self.proj.pruned],
            "node_queue": {t: list(q) for t, q in self.node_queue.items()},
            "rng": self.rng.bit_generator.state,
            "decisions": self.decisions,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.proj.ops = [dict(d) for d in state["ops"]]
        self.proj.pruned = [set(p) for p in state["pruned"]]
        self.node_queue = {int(t): list(q) for t, q in state["node_queue"].items()}
        self.rng.bit_generator.state = state["rng"]
        self.decisions = list(state["decisions"])

    def final_weights(self) -> list[torch.Tensor | None]:
        """Projected weights of the mixed α tensors; None (keep as is) for the others."""
        return [
            self.proj.apply(t, self._softmax(t)) if t in self.rows else None
            for t in range(len(self.alpha_names))
        ]

    def genotype(self, space: SearchSpace) -> Any:
        """The genotype darts-pt's genotype() reads off its projected weights.

        NB201 (no topology): the space's argmax of the projected weights. DARTS cells: per
        node the two strongest edges by the DARTS rule, on the projected weights themselves
        (decided edges one-hot, pruned edges zero, the rest softmax(α)) and only among the
        edges the node decisions kept. darts-pt ranks pruned edges too: a pruned edge (all
        zero) ties with a kept edge whose chosen op is `none` (zero outside `none`), and the
        stable sort can then pick the pruned, lower-numbered edge (S3). A kept `none` edge
        gets darts-pt's op for it, the first non-`none` op (`kept_none_edges` records it).
        """
        final = self.final_weights()
        if all(self.nodes[t] is None for t in self.tensors):
            return derive_from_weights(space, self.net, final)
        genes: dict[str, tuple[tuple[str, int], ...]] = {}
        params = self.net.arch_parameters()
        for t in self.tensors:
            nodes = self.nodes[t]
            assert nodes is not None
            name = self.alpha_names[t]
            w = final[t]
            assert w is not None
            beta = f"betas_{name}"
            if beta in self.alpha_names:  # PC-DARTS edge normalization ranks by w·β
                b = params[self.alpha_names.index(beta)].detach()
                w = w * normalize_edges(b.to(w.dtype)).to(w.device)[:, None]
            kept = [[e for e in edges if e not in self.proj.pruned[t]] for edges in nodes]
            gene = []
            for e, op in derive_cell(w, self.op_names[t], kept):
                start = next(edges[0] for edges in nodes if e in edges)
                gene.append((op, e - start))
            genes[name] = tuple(gene)
        return DartsGenotype(genes["normal"], CONCAT, genes["reduce"], CONCAT)

    def kept_none_edges(self) -> list[dict[str, Any]]:
        """Edges kept in the genotype although PT chose `none` for them."""
        out = []
        for t in self.tensors:
            if self.nodes[t] is None:  # NB201: `none` is an op of the cell like any other
                continue
            for e, k in sorted(self.proj.ops[t].items()):
                if self.op_names[t][e][k] == NONE_OP and e not in self.proj.pruned[t]:
                    out.append({"alpha": self.alpha_names[t], "edge": e})
        return out


class _Progress:
    """Tuning progress in a stage checkpoint beside the trial's (when it has one), written
    after every tuning epoch: supernet, both optimizers, decisions, edge draws, RNGs, the
    loader's epoch and the hooks' state, so a killed selection resumes where it stopped."""

    STAGE = "select"

    def __init__(
        self, ctx: SearchContext, sel: _Selector, opt: torch.optim.SGD, data: SearchData
    ) -> None:
        self.ctx, self.sel, self.opt, self.loader = ctx, sel, opt, data.loader
        self.path = None if ctx.checkpoint is None else stage_path(ctx.checkpoint, self.STAGE)
        self.key = "" if ctx.checkpoint is None else ctx.checkpoint.stem

    def save(self, tune_log: list[dict[str, float]]) -> None:
        if self.path is None:
            return
        ctx = self.ctx
        assert ctx.a_optimizer is not None
        save_checkpoint(
            self.path,
            {
                "config_hash": self.key,
                "tune_log": tune_log,
                "supernet": ctx.supernet.state_dict(),
                "w_optimizer": self.opt.state_dict(),
                "a_optimizer": ctx.a_optimizer.state_dict(),
                "selector": self.sel.state_dict(),
                "rng": rng_state(),
                "loader_epoch": getattr(self.loader, "epoch", None),
                "hooks": {h.name: h.state_dict() for h in ctx.hooks},
            },
        )

    def resume(self) -> list[dict[str, float]]:
        """The tuning log so far, after restoring everything it depends on; [] to start."""
        if self.path is None or not self.path.exists():
            return []
        try:
            state = load_checkpoint(self.path, self.key)
        except CheckpointError:
            self.path.unlink(missing_ok=True)
            return []  # tuning restarts from the finished search's state
        ctx = self.ctx
        assert ctx.a_optimizer is not None
        ctx.supernet.load_state_dict(state["supernet"])
        self.opt.load_state_dict(state["w_optimizer"])
        ctx.a_optimizer.load_state_dict(state["a_optimizer"])
        self.sel.load_state_dict(state["selector"])
        set_rng_state(state["rng"])
        if state["loader_epoch"] is not None and hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(state["loader_epoch"])
        for hook in ctx.hooks:
            hook.load_state_dict(state["hooks"].get(hook.name, {}))
        return list(state["tune_log"])


def _run(
    space: SearchSpace,
    supernet: Supernet,
    ctx: SearchContext,
    data: SearchData,
    by: Literal["perturbation", "magnitude"],
    tune_epochs: int | None,
    proj_interval: int,
    lr_divisor: float,
    eval_batches: int | None,
    edge_selection: EdgeSelection,
    fix_alpha: bool,
    seed: int | None,
) -> Any:
    if proj_interval < 1:
        raise ValueError(f"proj_interval must be >= 1, got {proj_interval}")
    if tune_epochs is not None and tune_epochs < 1:
        raise ValueError(f"tune_epochs must be >= 1, got {tune_epochs}")
    if lr_divisor <= 0:
        raise ValueError(f"lr_divisor must be > 0, got {lr_divisor}")
    if eval_batches is not None and eval_batches < 1:
        raise ValueError(f"eval_batches must be >= 1 or None, got {eval_batches}")
    if edge_selection not in ("random", "ordered"):
        raise ValueError(f"edge_selection must be 'random' or 'ordered', got {edge_selection!r}")
    if supernet is not ctx.supernet:
        raise ValueError("the supernet to select from must be the search context's supernet")
    if seed is None:
        if "seed" not in data.split:
            raise ValueError("no seed given and the search data does not record one")
        seed = int(data.split["seed"])

    sel = _Selector(space, ctx, data, by, edge_selection, eval_batches, seed)
    rounds = sel.op_rounds + sel.node_rounds
    has_topology = any(n is not None for n in sel.nodes.values())
    epochs = tune_epochs or default_tune_epochs(rounds, proj_interval, has_topology)
    schedule = decision_epochs(rounds, epochs, proj_interval)

    if ctx.a_optimizer is None:  # selecting without a search in this process
        build_optimizers(ctx)
    s = ctx.settings
    weights = [p for p in supernet.weight_parameters() if p.requires_grad]
    for hook in ctx.hooks:
        weights = hook.trainable_weights(ctx, weights)
    # darts-pt model.reset_optimizer(learning_rate / 10, momentum, weight_decay); constant lr.
    opt = torch.optim.SGD(
        weights,
        lr=s.lr / lr_divisor,
        momentum=s.momentum,
        nesterov=s.nesterov,
        weight_decay=s.weight_decay,
    )
    supernet.to(ctx.device)
    progress = _Progress(ctx, sel, opt, data)
    tune_log = progress.resume()
    steps = data.steps_per_epoch if s.steps_per_epoch is None else s.steps_per_epoch
    name = "PT" if by == "perturbation" else "PT-Mag"
    with Bar(f"{name} tuning", (epochs - len(tune_log)) * min(steps, data.steps_per_epoch)):
        for epoch in range(len(tune_log), epochs):
            for k, at in enumerate(schedule):
                if at == epoch:
                    sel.decide(k, epoch)
            tune_log.append(_tune_epoch(ctx, data, sel.proj, opt, epoch, fix_alpha))
            event("pt_tuning_epoch", tune_log[-1])
            progress.save(tune_log)

    genotype = sel.genotype(space)
    ctx.state["selection"] = {
        "selector": "pt" if by == "perturbation" else "pt_mag",
        "criterion": by,
        "tune_epochs": epochs,
        "proj_interval": proj_interval,
        "lr": s.lr / lr_divisor,
        "edge_selection": edge_selection,
        "fix_alpha": fix_alpha,
        "seed": seed,
        "eval_batches": eval_batches,
        "heldout_items": sel.batches.size if sel.batches is not None else None,
        "decision_epochs": schedule,
        "decisions": sel.decisions,
        "tuning": tune_log,
        "kept_none_edges": sel.kept_none_edges(),
        "genotype": space.format_genotype(genotype),
    }
    return genotype


@register_selector(
    "pt",
    "DARTS-PT: perturbation-based selection with tuning (Wang et al., 2021)",
    args={
        "tune_epochs": Int(1, nullable=True),
        "proj_interval": Int(1),
        "lr_divisor": Float(0, lo_open=True),
        "eval_batches": Int(1, nullable=True),
        "edge_selection": Choice("random", "ordered"),
        "fix_alpha": Bool(),
        "seed": Int(0, nullable=True),
    },
)
def pt(
    space: SearchSpace,
    supernet: Supernet,
    *,
    ctx: SearchContext,
    data: SearchData,
    history: Sequence[Any],
    tune_epochs: int | None = None,
    proj_interval: int = 5,
    lr_divisor: float = 10.0,
    eval_batches: int | None = None,
    edge_selection: EdgeSelection = "random",
    fix_alpha: bool = False,
    seed: int | None = None,
) -> Any:
    """DARTS-PT (paper 002, Algorithms 1 and 2).

    - tune_epochs: tuning epochs in all; None = darts-pt's (NB201 25, DARTS 81 at interval 5).
    - proj_interval: tuning epochs between decisions (darts-pt exp_scripts --proj_intv 5).
    - lr_divisor: the weight lr restarts at search lr / lr_divisor (darts-pt: 10).
    - eval_batches: held-out batches per evaluation; None = the whole α split.
    - edge_selection: `random` (seeded uniform draw, the paper) or `ordered` (lowest first).
    - fix_alpha: no α steps during tuning (the "blank" variant); default α keeps training.
    - seed: of the edge draws and held-out augmentation; None = the search data's seed.
    """
    return _run(
        space,
        supernet,
        ctx,
        data,
        "perturbation",
        tune_epochs,
        proj_interval,
        lr_divisor,
        eval_batches,
        edge_selection,
        fix_alpha,
        seed,
    )


@register_selector(
    "pt_mag",
    "DARTS-PT schedule, decisions by α magnitude (PT-Mag ablation)",
    args={
        "tune_epochs": Int(1, nullable=True),
        "proj_interval": Int(1),
        "lr_divisor": Float(0, lo_open=True),
        "eval_batches": Int(1, nullable=True),
        "edge_selection": Choice("random", "ordered"),
        "fix_alpha": Bool(),
        "seed": Int(0, nullable=True),
    },
)
def pt_mag(
    space: SearchSpace,
    supernet: Supernet,
    *,
    ctx: SearchContext,
    data: SearchData,
    history: Sequence[Any],
    tune_epochs: int | None = None,
    proj_interval: int = 5,
    lr_divisor: float = 10.0,
    eval_batches: int | None = None,
    edge_selection: EdgeSelection = "random",
    fix_alpha: bool = False,
    seed: int | None = None,
) -> Any:
    """PT-Mag (paper 002 §6.2): `pt`'s schedule and tuning, each decision by the largest
    softmax(α) (op) or the two strongest edges (node). Same arguments as `pt`;
    `eval_batches` is unused (nothing is evaluated)."""
    return _run(
        space,
        supernet,
        ctx,
        data,
        "magnitude",
        tune_epochs,
        proj_interval,
        lr_divisor,
        eval_batches,
        edge_selection,
        fix_alpha,
        seed,
    )
