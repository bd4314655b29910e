"""Early-stop criteria of the SS-DARTS baselines (paper 004 §3): DARTS+ and DARTS-ES.

- DARTS+ (Liang et al., 2019), as paper 004 states it: stop when the normal cell has two
  or more skip connections (sc_2), or when the ranking of α over the learnable operations
  has been stable for k epochs (rt_10).
- DARTS-ES (Zela et al., ICLR 2020; automl/RobustDARTS src/utils.py EVLocalAvg,
  src/search/train_search.py, src/search/analyze.py): track the dominant eigenvalue of the
  Hessian of the validation loss w.r.t. α; stop when its local average grew by more than
  `factor` over `delta` evaluations, and return the architecture of that earlier epoch.

Both stop through `MethodHook.should_stop`; their per-epoch quantities go to diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nasrepro.catalog import Bool, Choice, Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.search.infer import infer, selection_score
from nasrepro.select.pt import alpha_op_names, cell_nodes, derive_cell

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

SKIP_OP = "skip_connect"
# DARTS+'s "learnable operations": the parametric ones (NB201 nor_conv_*, DARTS sep/dil_conv).
LEARNABLE_MARK = "conv"


# --------------------------------------------------------------------------------------
# DARTS+
# --------------------------------------------------------------------------------------


def skip_count(
    weights: torch.Tensor, names: Sequence[Sequence[str]], nodes: list[list[int]] | None
) -> int:
    """Skip connections in the cell the space's DARTS rule derives from `weights`."""
    return sum(op == SKIP_OP for _, op in derive_cell(weights, names, nodes))


def learnable_ranking(
    weights: Sequence[torch.Tensor], names: Sequence[Sequence[Sequence[str]]]
) -> tuple[tuple[str, ...], ...]:
    """Per edge of every α tensor, the learnable ops ordered by decreasing weight."""
    ranking = []
    for w, tensor_names in zip(weights, names, strict=True):
        for row, ops in zip(w.tolist(), tensor_names, strict=True):
            learnable = [k for k, op in enumerate(ops) if LEARNABLE_MARK in op]
            ranking.append(tuple(ops[k] for k in sorted(learnable, key=lambda k: -row[k])))
    return tuple(ranking)


@register_method(
    "darts_plus",
    "DARTS+ early stop: sc_k skip connections or rt_k stable ranking",
    args={"sc_k": Int(1, nullable=True), "rt_k": Int(1, nullable=True)},
)
class DartsPlus(MethodHook):
    """Stop when a criterion holds at an epoch's end (the architecture of that epoch).

    - sc_k: stop when the derived normal cell (NB201: the cell) has >= sc_k skip
      connections (paper 004: DARTS+ (sc_2); Table 3 also sc_3, sc_4). None disables it.
    - rt_k: stop when the ranking of α over the learnable ops of every edge has not changed
      for rt_k epochs, i.e. is the same at the last rt_k + 1 epoch ends (DARTS+ (rt_10);
      Table 3 also rt_2..rt_4). None disables it.
    """

    name = "darts_plus"

    def __init__(self, sc_k: int | None = 2, rt_k: int | None = None) -> None:
        super().__init__()
        if sc_k is None and rt_k is None:
            raise ValueError("darts_plus needs sc_k or rt_k")
        for arg, value in (("sc_k", sc_k), ("rt_k", rt_k)):
            if value is not None and value < 1:
                raise ValueError(f"darts_plus {arg} must be >= 1, got {value}")
        self.sc_k = sc_k
        self.rt_k = rt_k
        self._ranking: tuple[tuple[str, ...], ...] | None = None
        self._stable = 0
        self._stop: list[str] = []

    def state_dict(self) -> dict[str, Any]:
        ranking = None if self._ranking is None else [list(r) for r in self._ranking]
        return {"ranking": ranking, "stable": self._stable}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ranking = state.get("ranking")
        self._ranking = None if ranking is None else tuple(tuple(r) for r in ranking)
        self._stable = int(state.get("stable", 0))

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        net = ctx.supernet
        probs = net.alpha_softmax()
        alpha_names = net.alpha_names()
        names = alpha_op_names(net)  # the mixed α tensors (not PC-DARTS' β)
        weights = {t: probs[alpha_names[t]] for t in names}
        t = alpha_names.index("normal") if "normal" in alpha_names else min(names)
        skips = skip_count(weights[t], names[t], cell_nodes(net)[t])
        ranking = learnable_ranking([weights[t] for t in names], [names[t] for t in names])
        self._stable = self._stable + 1 if ranking == self._ranking else 0
        self._ranking = ranking
        self._stop = []
        if self.sc_k is not None and skips >= self.sc_k:
            self._stop.append(f"sc_{self.sc_k}")
        if self.rt_k is not None and self._stable >= self.rt_k:
            self._stop.append(f"rt_{self.rt_k}")
        return {
            "darts_plus.skip_count": float(skips),
            "darts_plus.stable_epochs": float(self._stable),
            "darts_plus.stop": float(bool(self._stop)),
        }

    def should_stop(self, ctx: SearchContext, history: list[Any]) -> bool:
        if self._stop:
            ctx.state["darts_plus"] = {"criteria": list(self._stop), "epoch": ctx.epoch}
        return bool(self._stop)


# --------------------------------------------------------------------------------------
# DARTS-ES
# --------------------------------------------------------------------------------------


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b, strict=True)))


def power_iteration(
    matvec: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    start: list[torch.Tensor],
    iters: int,
) -> float:
    """Rayleigh quotient vᵀAv after `iters` power steps v ← Av/‖Av‖ (A symmetric): the
    eigenvalue of largest magnitude."""
    norm = _dot(start, start) ** 0.5
    v = [x / norm for x in start]
    for _ in range(iters):
        av = matvec(v)
        norm = _dot(av, av) ** 0.5
        if norm == 0.0:
            return 0.0
        v = [x / norm for x in av]
    return _dot(v, matvec(v))


def hessian_max_eigenvalue(
    loss: torch.Tensor,
    params: Sequence[torch.Tensor],
    iters: int,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> float:
    """Largest eigenvalue of ∇²loss + weight_decay·I w.r.t. `params` by power iteration on
    exact Hessian-vector products (double backward through `loss`).

    RobustDARTS (analyze.py compute_Hw) builds the full Hessian, adds arch_weight_decay·I
    and takes max(eigvals). Power iteration finds the eigenvalue of largest magnitude; when
    that one is negative, a second run on H − λI (all eigenvalues >= 0) gives the largest.
    """
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    used = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [weight_decay * x for x in v]
        if used:
            hv = torch.autograd.grad(
                [grads[i] for i in used],
                params,
                grad_outputs=[v[i] for i in used],
                retain_graph=True,
                allow_unused=True,
            )
            out = [o + h.detach() if h is not None else o for o, h in zip(out, hv, strict=True)]
        return out

    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    lam = power_iteration(hvp, start, iters)
    if lam < 0:
        shifted = power_iteration(
            lambda v: [h - lam * x for h, x in zip(hvp(v), v, strict=True)], start, iters
        )
        lam = shifted + lam
    return lam


def full_hessian(
    loss: torch.Tensor, params: Sequence[torch.Tensor], weight_decay: float = 0.0
) -> torch.Tensor:
    """∇²loss + weight_decay·I w.r.t. `params` (flattened, in order), as RobustDARTS'
    analyze.py `_hessian` builds it: row i from the gradient of ∂loss/∂θ_i, its entries
    j >= i kept and mirrored below the diagonal (exactly symmetric)."""
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    flat = torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )
    n = flat.numel()
    h = torch.zeros(n, n, dtype=flat.dtype, device=flat.device)
    for i in range(n):
        if not flat[i].requires_grad:
            continue
        row = torch.autograd.grad(flat[i], params, retain_graph=True, allow_unused=True)
        row_flat = torch.cat(
            [
                (r if r is not None else torch.zeros_like(p)).reshape(-1)
                for r, p in zip(row, params, strict=True)
            ]
        ).detach()
        h[i, i:] = row_flat[i:]
        h[i + 1 :, i] = row_flat[i + 1 :]
    return h + weight_decay * torch.eye(n, dtype=h.dtype, device=h.device)


def full_hessian_max_eigenvalue(
    loss: torch.Tensor, params: Sequence[torch.Tensor], weight_decay: float = 0.0
) -> float:
    """max(eigvals(H)) of `full_hessian` (RobustDARTS train_search.py: max(LA.eigvals(H))),
    in float64."""
    h = full_hessian(loss, params, weight_decay)
    return float(torch.linalg.eigvalsh(h.double()).max())


def local_averages(ev: Sequence[float], window: int) -> list[float]:
    """Centred local averages of the eigenvalues seen so far (RobustDARTS EVLocalAvg.update):
    entry k = mean(ev[k - h : k + h + 1]), h = window // 2, cut at the start; it exists
    once ev[k + h] does."""
    h = window // 2
    return [float(np.mean(ev[max(0, k - h) : k + h + 1])) for k in range(len(ev) - h)]


def es_stop_epoch(
    ev_epochs: Sequence[int],
    ev: Sequence[float],
    window: int,
    delta: int,
    factor: float,
    es_start_epoch: int,
) -> tuple[int | None, float | None]:
    """RobustDARTS EVLocalAvg.early_stop after the latest eigenvalue: with the newest local
    average (centred at ev_epochs[k]) and the one `delta` evaluations before it (centred at
    ev_epochs[k - delta]), stop if that earlier epoch >= es_start_epoch and
    current / previous > factor. Returns (epoch to roll back to or None, the ratio)."""
    la = local_averages(ev, window)
    k = len(la) - 1
    if k - delta < 0 or ev_epochs[k - delta] < es_start_epoch:
        return None, None
    ratio = la[k] / la[k - delta]
    return (int(ev_epochs[k - delta]) if ratio > factor else None), ratio


@register_method(
    "darts_es",
    "DARTS-ES: stop when the dominant α-Hessian eigenvalue grows",
    args={
        "ev_freq": Int(1),
        "window": Int(1),
        "delta": Int(1),
        "factor": Float(0, lo_open=True),
        "es_start_epoch": Int(0),
        "power_iters": Int(1),
        "rollback": Bool(),
        "hessian": Choice("full", "power"),
    },
)
class DartsEs(MethodHook):
    """DARTS-ES (RobustDARTS); defaults from its src/search/args.py and DARTS_search.sh.

    - ev_freq: epochs between eigenvalue computations (--report_freq_hessian 2), and always
      at the last epoch.
    - window: odd size of the centred local average (--window 5).
    - delta: how many evaluations back the compared local average lies (--delta 4).
    - factor: stop when the ratio of the local averages exceeds it (--factor 1.3).
    - es_start_epoch: the earlier local average must be centred at or after this epoch
      (--es_start_epoch 10).
    - hessian: `full` (RobustDARTS: the full Hessian of α, <= 224 entries on the DARTS
      spaces, and its largest eigenvalue) or `power` (`power_iters` steps of power
      iteration on Hessian-vector products: cheaper, but 50 steps can land a few percent
      low, which can flip a stop near the threshold).
    - power_iters: power-iteration steps of `hessian: power`.
    - rollback: on a stop, set α back to the epoch of the earlier local average, as
      RobustDARTS returns that epoch's genotype (la_tracker.stop_genotype).

    The Hessian is of the loss on the last α (validation) batch of the epoch, with the
    supernet in train() mode, plus arch_weight_decay·I (analyze.py compute_Hw). The engine
    must hand α batches to `after_arch_step`.

    Selection score: RobustDARTS picks its best of 3 searches by `results_perf`, the
    `infer()` accuracy (eval mode, the whole validation split) of the epoch it returns: the
    stop epoch when it stopped (train_search.py: `errors_dict['valid_acc'][stop_epoch]`), the
    last epoch otherwise. Every eigenvalue epoch is scored that way (a stop can roll back
    only to one of them) and the returned epoch's score is the record's `search.valid_acc`.
    """

    name = "darts_es"

    def __init__(
        self,
        ev_freq: int = 2,
        window: int = 5,
        delta: int = 4,
        factor: float = 1.3,
        es_start_epoch: int = 10,
        power_iters: int = 50,
        rollback: bool = True,
        hessian: str = "full",
    ) -> None:
        super().__init__()
        if hessian not in ("full", "power"):
            raise ValueError(f"darts_es: hessian must be 'full' or 'power', got {hessian!r}")
        self.hessian = hessian
        if ev_freq < 1 or delta < 1 or power_iters < 1:
            raise ValueError("darts_es: ev_freq, delta and power_iters must be >= 1")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"darts_es: window must be odd and >= 1, got {window}")
        if factor <= 0:
            raise ValueError(f"darts_es: factor must be > 0, got {factor}")
        self.ev_freq = ev_freq
        self.window = window
        self.delta = delta
        self.factor = factor
        self.es_start_epoch = es_start_epoch
        self.power_iters = power_iters
        self.rollback = rollback
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._ev_epochs: list[int] = []
        self._ev: list[float] = []
        self._alphas: dict[int, list[torch.Tensor]] = {}
        self._valid: dict[int, float] = {}  # infer() accuracy at each eigenvalue epoch
        self._stop_epoch: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "ev_epochs": list(self._ev_epochs),
            "ev": list(self._ev),
            "alphas": {str(k): v for k, v in self._alphas.items()},
            "valid": {str(k): v for k, v in self._valid.items()},
            "stop_epoch": self._stop_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ev_epochs = [int(e) for e in state.get("ev_epochs", [])]
        self._ev = [float(v) for v in state.get("ev", [])]
        self._alphas = {int(k): list(v) for k, v in state.get("alphas", {}).items()}
        self._valid = {int(k): float(v) for k, v in state.get("valid", {}).items()}
        self._stop_epoch = state.get("stop_epoch")

    def after_arch_step(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        """The α batch of the step just taken; the last one of an epoch is used."""
        self._batch = (x.detach(), y.detach())

    def eigenvalue(self, ctx: SearchContext) -> float:
        if self._batch is None:
            raise RuntimeError(
                "darts_es needs the validation (α) batches: the engine must call "
                "hook.after_arch_step(ctx, x_a, y_a) after each α step"
            )
        x, y = self._batch
        net = ctx.supernet
        net.train()
        loss = ctx.criterion(net(x), y)
        if self.hessian == "full":
            return full_hessian_max_eigenvalue(
                loss, net.arch_parameters(), weight_decay=ctx.settings.arch_weight_decay
            )
        return hessian_max_eigenvalue(
            loss,
            net.arch_parameters(),
            self.power_iters,
            weight_decay=ctx.settings.arch_weight_decay,
            seed=ctx.epoch,
        )

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        last = ctx.epoch == ctx.settings.epochs - 1
        if ctx.epoch % self.ev_freq != 0 and not last:
            return {}
        ev = self.eigenvalue(ctx)
        self._ev_epochs.append(ctx.epoch)
        self._ev.append(ev)
        self._alphas[ctx.epoch] = [a.detach().clone() for a in ctx.supernet.arch_parameters()]
        out = {"darts_es.eigenvalue": ev}
        scored = infer(ctx)
        if scored is not None:
            self._valid[ctx.epoch] = scored[0]
            out["darts_es.infer_valid_acc"] = scored[0]
            if last:
                selection_score(ctx, scored[0], ctx.epoch, _SCORE_HOW)
        la = local_averages(self._ev, self.window)
        if la:
            out["darts_es.local_avg"] = la[-1]
        if not last:  # RobustDARTS never stops at the last epoch
            stop, ratio = es_stop_epoch(
                self._ev_epochs,
                self._ev,
                self.window,
                self.delta,
                self.factor,
                self.es_start_epoch,
            )
            if ratio is not None:
                out["darts_es.ratio"] = ratio
            if stop is not None:
                self._stop_epoch = stop
                out["darts_es.stop_epoch"] = float(stop)
        return out

    def should_stop(self, ctx: SearchContext, history: list[Any]) -> bool:
        if self._stop_epoch is None:
            return False
        if self.rollback:
            with torch.no_grad():
                for a, saved in zip(
                    ctx.supernet.arch_parameters(), self._alphas[self._stop_epoch], strict=True
                ):
                    a.copy_(saved)
        ctx.state["darts_es"] = {
            "stop_epoch": self._stop_epoch,
            "triggered_at_epoch": ctx.epoch,
            "rolled_back": self.rollback,
        }
        returned = self._stop_epoch if self.rollback else ctx.epoch
        if returned in self._valid:
            selection_score(ctx, self._valid[returned], returned, _SCORE_HOW)
        return True


_SCORE_HOW = (
    "infer(): eval mode, the whole validation split, at the epoch the search returns "
    "(RobustDARTS results_perf)"
)
