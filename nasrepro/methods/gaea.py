"""GAEA (Li et al., ICLR 2021): exponentiated-gradient (mirror descent) updates of α on
the simplex.

Reference: liamcli/gaea_release (commit 1604615), cnn/architect/architect_edarts.py
`ArchitectEDARTS` (`initialize_alphas`, `step`, `_backward_step`, `normalize`),
cnn/search_spaces/nasbench_201/model_search.py (the cells mix with α itself, no softmax),
cnn/train_search.py (α step before the weight step; bilevel keeps the genotype of the
epoch with the best validation accuracy, ERM the last one) and configs/cnn/
(search_method/edarts/method_edarts_space_nasbench201.yaml: arch lr 0.1, no entropic term).

GAEA's architecture variable is a point p on each edge's simplex, initialised uniform, and
the network mixes with p directly. One α step:

    g = ∂/∂p [L(w, p) + λ_H·Σ p·log(p·|O|)]       (λ_H: `arch_weight_decay`, 0 in the configs)
    p ← p·exp(−η·g);  p ← max(p, 1e-5);  p ← p / Σ p     (per edge)

Here the supernet keeps its α as logits and p = softmax(α): GAEA's p is stored as α = log p
(softmax(log p) = p), so logging, selectors (SS-GAEA reads the magnitudes p), stop criteria
and the genotype (argmax p) need nothing GAEA-specific. The step reads ∂L/∂p from leaf
copies of p that the forward mixes with, and writes α = log(p_new).

η is the α optimizer's learning rate (`search.arch_lr`), read at each step, so `ex`
(EX-GAEA) composes; Adam is not used. `lr_schedule_epochs` reproduces the reference's
cosine horizon `run.scheduler_epochs` (50), which does not follow the run's epochs: a
25-epoch run (GAEA's NB201 setting) stops half-way down the cosine.

ERM ("single-level", `search.single_level=true`): α steps on training data. That is the
data protocol `nb201-single-level` (datasets/cifar.py), not this hook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.drnas import mixed_alphas
from nasrepro.search.schedule import set_cosine_t_max
from nasrepro.spaces.darts import node_slices, normalize_edges

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

MIN_WEIGHT = 1e-5  # architect_edarts.normalize(min_v=1e-5)


def normalize(p: torch.Tensor, min_v: float = MIN_WEIGHT) -> torch.Tensor:
    """Clamp each row at min_v and divide by its sum (architect_edarts.normalize)."""
    p = torch.clamp(p, min=min_v)
    return p / p.sum(dim=-1, keepdim=True)


def exponentiated_step(p: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    """One mirror-descent step on the simplex: normalize(p·exp(−lr·grad))."""
    return normalize(p * torch.exp(-lr * grad))


def entropic_term(p: torch.Tensor) -> torch.Tensor:
    """Σ p·log(p/(1/|O|)) (`_backward_step`'s entropic regulariser)."""
    return torch.sum(p * torch.log(p / (1 / p.shape[-1])))


def clip_by_total_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """torch.nn.utils.clip_grad_norm_ on gradient tensors: scale all by
    min(1, max_norm/(‖g‖₂ + 1e-6)), the norm taken over all of them together."""
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef for g in grads]


def edge_step(beta: torch.Tensor, grad_beta: torch.Tensor, lr: float | None) -> torch.Tensor:
    """GAEA's edge update (architect_edarts.step with learn_edges): e ← e·exp(−lr·g), then
    divided by each node's sum (no clamp), for e = per-node softmax(β).

    The forward mixes with e through β, so autograd gives ∂L/∂β_i = e_i·(g_i − ḡ) with ḡ
    the node's e-weighted mean of g = ∂L/∂e. The per-node normalisation cancels any
    constant added to g within a node, so g − ḡ = (∂L/∂β)/e gives the same step.
    """
    assert lr is not None
    e = normalize_edges(beta)
    new = e * torch.exp(-lr * (grad_beta / e))
    return torch.cat([new[lo:hi] / new[lo:hi].sum() for lo, hi in node_slices()])


@register_method(
    "gaea",
    "GAEA: exponentiated-gradient α updates on the simplex (arch_lr as η)",
    args={
        "lr_schedule_epochs": Int(1, nullable=True),
        "arch_grad_clip": Float(0, nullable=True),
        "edge_lr": Float(0, nullable=True),
    },
)
class Gaea(MethodHook):
    """Args: lr_schedule_epochs (the weight cosine's horizon when it is not the run's
    epochs, e.g. 50 for GAEA's 25-epoch NB201 search; null: the run's), arch_grad_clip
    (clip of ∂L/∂p before the step, `search.arch_grad_clip` of the configs; null), edge_lr
    (η of the edge weights on a supernet with PC-DARTS edge normalization, which GAEA
    PC-DARTS learns by the same mirror descent, `learn_edges`; 0.1 in its config)."""

    name = "gaea"
    owns_arch_step = True

    def __init__(
        self,
        lr_schedule_epochs: int | None = None,
        arch_grad_clip: float | None = None,
        edge_lr: float | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule_epochs is not None and (
            isinstance(lr_schedule_epochs, bool)
            or not isinstance(lr_schedule_epochs, int)
            or lr_schedule_epochs < 1
        ):
            raise ValueError(
                "method 'gaea': lr_schedule_epochs must be a positive integer or null, got "
                f"{lr_schedule_epochs!r}"
            )
        if arch_grad_clip is not None and not (
            isinstance(arch_grad_clip, int | float)
            and not isinstance(arch_grad_clip, bool)
            and math.isfinite(arch_grad_clip)
            and arch_grad_clip > 0
        ):
            raise ValueError(
                "method 'gaea': arch_grad_clip must be a number > 0 or null, got "
                f"{arch_grad_clip!r}"
            )
        self.lr_schedule_epochs = lr_schedule_epochs
        self.arch_grad_clip = None if arch_grad_clip is None else float(arch_grad_clip)
        if edge_lr is not None and not (
            isinstance(edge_lr, int | float) and not isinstance(edge_lr, bool) and edge_lr > 0
        ):
            raise ValueError(
                f"method 'gaea': edge_lr must be a number > 0 or null, got {edge_lr!r}"
            )
        self.edge_lr = None if edge_lr is None else float(edge_lr)
        self.grad_max: float = float("nan")

    def _edge_tensors(self, net: Any) -> list[int]:
        """Indices of PC-DARTS' edge β among the α tensors (GAEA's `edges`), or []."""
        if not getattr(net, "edge_normalization", False):
            return []
        mixed = set(mixed_alphas(net))
        return [t for t in range(len(net.arch_parameters())) if t not in mixed]

    def on_build(self, ctx: SearchContext) -> None:
        edges = self._edge_tensors(ctx.supernet)
        if edges and self.edge_lr is None:
            raise ValueError(
                "method 'gaea': the supernet learns edge weights (PC-DARTS edge "
                "normalization); give method_args.gaea.edge_lr (GAEA PC-DARTS: 0.1)"
            )
        if not edges and self.edge_lr is not None:
            raise ValueError("method 'gaea': edge_lr needs edge_normalization on the space")
        if ctx.settings.arch_grad_clip is not None:
            raise ValueError(
                "method 'gaea' takes over the α step: give the clip as method_args.gaea."
                "arch_grad_clip, not search.arch_grad_clip"
            )
        # initialize_alphas: every edge uniform on the simplex, α = log(1/|O|). A resumed
        # search then loads its checkpointed α over this.
        with torch.no_grad():
            for t in mixed_alphas(ctx.supernet):
                a = ctx.supernet.arch_parameters()[t]
                a.fill_(math.log(1.0 / a.shape[-1]))
            # initialize_edge_weights with learn_edges: 1/n_inputs for each of a node's
            # inputs (get_edge_scaling), i.e. uniform per node.
            for t in edges:
                b = ctx.supernet.arch_parameters()[t]
                for lo, hi in node_slices():
                    b[lo:hi] = math.log(1.0 / (hi - lo))

    def on_epoch_start(self, ctx: SearchContext) -> None:
        if self.lr_schedule_epochs is not None:
            set_cosine_t_max(ctx, self.lr_schedule_epochs, "method 'gaea': lr_schedule_epochs")

    def arch_step(
        self,
        ctx: SearchContext,
        x_w: torch.Tensor,
        y_w: torch.Tensor,
        x_a: torch.Tensor,
        y_a: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = ctx.supernet
        assert ctx.a_optimizer is not None
        lr = ctx.a_optimizer.param_groups[0]["lr"]
        alphas = net.arch_parameters()
        mixed = mixed_alphas(net)
        p = {t: torch.softmax(alphas[t].detach(), dim=-1).requires_grad_() for t in mixed}
        logits = net(x_a, cell_weights=[p[t] for t in net.cell_alpha_index()])
        loss = ctx.criterion(logits, y_a)
        objective = loss
        decay = ctx.settings.arch_weight_decay
        if decay:
            objective = objective + decay * sum(entropic_term(p[t]) for t in mixed)
        edges = self._edge_tensors(net)
        grads = torch.autograd.grad(objective, [p[t] for t in mixed] + [alphas[t] for t in edges])
        op_grads, edge_grads = list(grads[: len(mixed)]), grads[len(mixed) :]
        if self.arch_grad_clip is not None:  # over the op weights only (`_arch_parameters`)
            op_grads = clip_by_total_norm(op_grads, self.arch_grad_clip)
        self.grad_max = max(float(g.abs().max()) for g in op_grads)
        with torch.no_grad():
            for t, g in zip(mixed, op_grads, strict=True):
                alphas[t].copy_(torch.log(exponentiated_step(p[t].detach(), g, lr)))
            for t, g_beta in zip(edges, edge_grads, strict=True):
                alphas[t].copy_(torch.log(edge_step(alphas[t], g_beta, self.edge_lr)))
        return loss, logits

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        return {"gaea.grad_max": self.grad_max}
