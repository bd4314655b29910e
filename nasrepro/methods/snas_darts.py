"""SNAS' own search on the DARTS space (Xie et al., ICLR 2019): single-level training of
weights and α on one batch and one loss, Gumbel-softmax mixing weights at an annealed
temperature, and the resource constraint.

Reference: SNAS-Series/SNAS-Series (commit of the /work checkout, folder SNAS/), the
README's single-GPU command for the 8-cell search:

    python train_search.py --snas --epochs 150 --seed 6 --layer 8 --init_channels 16 --temp 1
      --temp_min 0.03 --nsample 1 --temp_annealing --resource_efficient
      --resource_lambda 1.5e-3 --log_penalty --drop_path_prob 3e-1
      --method 'reparametrization' --loss

What that command runs (train_search.py, model_search.py, operations.py, utils.py):
- α (`normal_log_alpha`, `reduce_log_alpha`) start at N(loc_mean 1, loc_std 0.01) per entry;
  every forward draws u ~ U(0, 1) per entry (normal, then reduce) and mixes every cell of a
  type with w = softmax((α − log(−log u))/τ) (`_get_categ_mask`).
- One forward of the training batch, loss = CE + λ·R, one backward: the weights get the CE
  gradient (clipped to norm 5 over the weights), α gets both (clipped to norm 10), then one
  SGD step on the weights and one plain SGD step on α at arch_learning_rate (the single-GPU
  branch of `init_optimizer`: no momentum, no weight decay; the distributed branch uses
  Adam). The engine's own α step does not run (`update_alpha` is False): this hook steps α
  from the weight step's gradient.
- R (reparametrization, log penalty): per edge, size, FLOPs and MAC of the mixture,
  S = Σ_k w_k size_k (likewise F, M); each of S, F, M below 1 in magnitude counts as 1 (no
  gradient); the edge's penalty is (log|S| + log|F| + log|M|)/3; R = Σ over normal cells' edges
  / 6 + ratio · Σ over reduction cells' edges / 2 (6 and 2 are hard-coded: the counts of the
  8-cell network). λ = 1.5e-3 (the command), ratio 1 (default).
- Op costs (operations.py, at the edge's input side h; y = h, or h//2 at stride 2):
  conv size sep k: 2Ck² + 2C², dil k: Ck² + C², FactorizedReduce: 2C·(C//2); FLOPs = size·y²;
  MAC sep: y²(8C) + size (stride 2: y²(11C) + size), dil: y²(4C) + size (y²(7C) + size),
  FactorizedReduce: 2y²(4C + C//2) + size, pools: 2y²C (stride 2: 5y²C) with FLOPs 9y²C, skip
  (identity) MAC 2Cy², none 0.
- τ (utils.Temp_Scheduler, stepped at each epoch start): epoch e trains at
  max(τ_min, (1 − (e + 1)/150)(τ_0 − τ_min) + τ_min), 150 hard-coded; τ_0 1, τ_min 0.03.
- Drop path 0.3 on every edge's output in training (constant), as `search_drop_path`.

The paper's own text is not among the project's paper copies: these settings are the code's
(docs/fidelity.md). The published cells' constraint level (mild / moderate / aggressive) is not
tied to a command in the repository; this command is the only one it gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def check_method_args(name: str, args: dict[str, Any]) -> None:
    """The catalog's declaration of `name`'s arguments, for hooks built without a suite."""
    from nasrepro import catalog

    for path, problem in catalog.check_args("method", name, args):
        raise ValueError(f"method {name!r}: {'.'.join(path)} {problem}")


def temperature(temp: float, temp_min: float, epoch: int, total: int = 150) -> float:
    """τ of `epoch` (utils.Temp_Scheduler.decay_whole_process after epoch + 1 steps)."""
    return max(temp_min, (1 - (epoch + 1) / total) * (temp - temp_min) + temp_min)


def gumbel_softmax_weights(
    alpha: torch.Tensor, tau: float, u: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, u): w = softmax((α − log(−log u))/τ) row-wise, u ~ U(0, 1) drawn here unless given."""
    if u is None:
        u = torch.zeros_like(alpha).uniform_()
    return F.softmax((alpha - (-u.log()).log()) / tau, dim=-1), u


def op_cost(name: str, c: int, stride: int, h: int) -> tuple[float, float, float]:
    """(size, FLOPs, MAC) of one candidate op as SNAS' operations.py counts them."""
    y = h if stride == 1 else h // 2
    if name == "none":
        return 0.0, 0.0, 0.0
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return 0.0, 9.0 * y * y * c, (2.0 if stride == 1 else 5.0) * y * y * c
    if name == "skip_connect":
        if stride == 1:
            return 0.0, 0.0, 2.0 * c * h * h
        size = 2.0 * c * (c // 2)
        return size, size * y * y, 2.0 * y * y * (4 * c + c // 2) + size
    kinds = {"sep_conv": (2, 7, 10), "dil_conv": (1, 3, 6)}
    for prefix, (convs, mac1, mac2) in kinds.items():
        if name.startswith(prefix):
            k = int(name.split("_")[-1].split("x")[0])
            size = float(convs * c * k * k + convs * c * c)
            mac = y * y * ((mac1 if stride == 1 else mac2) * c + c) + size
            return size, size * y * y, mac
    raise ValueError(f"method 'snas_darts': no resource cost for op {name!r}")


def edge_costs(net: Any, image_side: int) -> list[torch.Tensor]:
    """Per cell, a (14, ops, 3) tensor of (size, FLOPs, MAC) per edge and op, at the sides
    the CIFAR stem (stride 1) and the reduction cells give each edge's input."""
    from nasrepro.spaces.darts import EDGES

    if getattr(net, "stem_kind", None) != "cifar" or getattr(net, "partial_channels", 1) != 1:
        raise ValueError("method 'snas_darts' runs on the DARTS space's CIFAR supernet")
    h, out = image_side, []
    for cell in net.cells:
        rows = []
        for edge, (_, j) in zip(cell.edges, EDGES, strict=True):
            side = h if (j < 2 or not cell.reduction) else h // 2
            rows.append([op_cost(n, edge.channels, edge.stride, side) for n in edge.op_names])
        out.append(torch.tensor(rows, dtype=torch.float64))
        h = h // 2 if cell.reduction else h
    return out


def nodes_not_two(net: Any) -> int:
    """Nodes (of both cell types) whose incoming edges do not have exactly two argmax ops other
    than 'none'. SNAS evaluates the child of every edge's argmax op with 'none' edges dropped
    (model_search.py genotype_edge_all, model_edge_all.py); the harness derives quark0's
    two-input cell (selector argmax), the same child where this count is 0."""
    from nasrepro.spaces.darts import node_slices

    count = 0
    for t, alpha in enumerate(net.arch_parameters()[:2]):
        ops = net.cells[net.cell_alpha_index().index(t)].edges[0].op_names
        chosen = alpha.detach().argmax(-1).tolist()
        for a, b in node_slices():
            kept = sum(1 for k in chosen[a:b] if ops[k] != "none")
            count += kept != 2
    return count


def log_resource(weights: torch.Tensor, costs: torch.Tensor) -> torch.Tensor:
    """Σ over edges of (log|S| + log|F| + log|M|)/3, each mixture cost S = Σ_k w_k size_k
    (F, M alike) taken as 1 where its magnitude is below 1 (model_search.py `clean_*`)."""
    mix = (weights.unsqueeze(-1) * costs.to(weights.dtype)).sum(1)  # (edges, 3)
    clean = torch.where(mix.abs() < 1, torch.ones_like(mix), mix)
    return (clean.abs().log().sum(-1) / 3).sum()


class SnasSupernet:
    """What SNAS-Series' model_search.py does to the supernet, for `snas_darts` and `dsnas`
    alike: the DARTS space only, α drawn from N(loc_mean, loc_std) (normal cell first), drop
    path on the cells' ops."""

    name: str
    loc_mean: float
    loc_std: float
    drop_path_prob: float

    def on_build(self, ctx: SearchContext) -> None:
        net = ctx.supernet
        if list(net.alpha_names()) != ["normal", "reduce"]:  # type: ignore[attr-defined]
            raise ValueError(f"method {self.name!r} needs the DARTS space (α normal, reduce)")
        self.init_alpha(net)
        net.drop_path_prob = self.drop_path_prob  # type: ignore[attr-defined]

    def init_alpha(self, net: Any) -> None:
        """model_search.py: torch.zeros(k, ops).normal_(loc_mean, loc_std), normal first."""
        with torch.no_grad():
            for a in net.arch_parameters():
                a.normal_(self.loc_mean, self.loc_std)


@register_method(
    "snas_darts",
    "SNAS on the DARTS space: single-level Gumbel-softmax search with the log resource penalty",
    args={
        "temp": Float(0, lo_open=True),
        "temp_min": Float(0, lo_open=True),
        "temp_epochs": Float(0, lo_open=True),
        "resource_lambda": Float(0),
        "ratio": Float(0),
        "drop_path_prob": Float(0, 1, hi_open=True),
        "loc_mean": Float(),
        "loc_std": Float(0),
    },
)
class SnasDarts(SnasSupernet, MethodHook):
    """Args (the README command, else train_search.py's defaults): temp 1, temp_min 0.03,
    temp_epochs 150, resource_lambda 1.5e-3, ratio 1, drop_path_prob 0.3, loc_mean 1,
    loc_std 0.01. α's clip norm (10) is the search setting `arch_grad_clip`."""

    name = "snas_darts"
    # Normal and reduction cell counts train_search.py divides by (its 8-cell network's).
    DIVISORS = (6.0, 2.0)

    def __init__(
        self,
        temp: float = 1.0,
        temp_min: float = 0.03,
        temp_epochs: float = 150.0,
        resource_lambda: float = 1.5e-3,
        ratio: float = 1.0,
        drop_path_prob: float = 0.3,
        loc_mean: float = 1.0,
        loc_std: float = 0.01,
    ) -> None:
        super().__init__()
        given = dict(temp=temp, temp_min=temp_min, temp_epochs=temp_epochs, ratio=ratio,
                     resource_lambda=resource_lambda, drop_path_prob=drop_path_prob,
                     loc_mean=loc_mean, loc_std=loc_std)  # fmt: skip
        check_method_args(self.name, given)
        if temp_min > temp:
            raise ValueError(f"method 'snas_darts': temp_min {temp_min} exceeds temp {temp}")
        self.temp, self.temp_min, self.temp_epochs = temp, temp_min, temp_epochs
        self.resource_lambda, self.ratio = resource_lambda, ratio
        self.drop_path_prob = drop_path_prob
        self.loc_mean, self.loc_std = loc_mean, loc_std
        self.tau = temp
        self._u: list[torch.Tensor] = []
        self._costs: list[torch.Tensor] | None = None
        self._penalties: list[float] = []

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.tau = temperature(self.temp, self.temp_min, ctx.epoch, int(self.temp_epochs))
        self._penalties = []

    def update_alpha(self, ctx: SearchContext) -> bool:
        return False  # α steps in `after_weight_backward`, from the same batch and loss

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        alphas = ctx.supernet.arch_parameters()
        drawn = [gumbel_softmax_weights(a, self.tau) for a in alphas]  # normal, then reduce
        self._u = [u for _, u in drawn]
        return [drawn[t][0] for t in ctx.supernet.cell_alpha_index()]

    def resource_penalty(self, ctx: SearchContext) -> torch.Tensor:
        """R at this step's draw, differentiable in α (the draw's u are kept)."""
        net = ctx.supernet
        if self._costs is None:
            assert ctx.weight_batch is not None
            self._costs = edge_costs(net, int(ctx.weight_batch[0].shape[-1]))
        alphas = net.arch_parameters()
        pairs = zip(alphas, self._u, strict=True)
        w = [gumbel_softmax_weights(a, self.tau, u)[0] for a, u in pairs]
        sums = [torch.zeros((), dtype=alphas[0].dtype, device=alphas[0].device) for _ in w]
        for t, costs in zip(net.cell_alpha_index(), self._costs, strict=True):
            sums[t] = sums[t] + log_resource(w[t], costs.to(alphas[0].device))
        return sums[0] / self.DIVISORS[0] + self.ratio * sums[1] / self.DIVISORS[1]

    def after_weight_backward(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        alphas = ctx.supernet.arch_parameters()
        penalty = self.resource_penalty(ctx)
        self._penalties.append(penalty.item())
        grads = torch.autograd.grad(self.resource_lambda * penalty, alphas)
        with torch.no_grad():
            for a, g in zip(alphas, grads, strict=True):
                a.grad = g if a.grad is None else a.grad + g
            if ctx.settings.arch_grad_clip is not None:  # train_search.py: norm 10 over α
                torch.nn.utils.clip_grad_norm_(alphas, ctx.settings.arch_grad_clip)
            for a in alphas:  # the single-GPU branch: torch.optim.SGD(arch, lr=arch_lr)
                a.add_(a.grad, alpha=-ctx.settings.arch_lr)

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        out = {"snas.tau": self.tau, "snas.nodes_not_two": float(nodes_not_two(ctx.supernet))}
        if self._penalties:
            out["snas.log_resource"] = sum(self._penalties) / len(self._penalties)
        return out
