"""RobustDARTS' robustified searches (Zela et al., ICLR 2020; automl/RobustDARTS).

- R-DARTS(L2) and R-DARTS(DP) (`rdarts`): the same second-order DARTS search repeated over a
  grid of regularization strengths — weight decay {3, 9, 27, 81, 243}·1e-4
  (scripts/start_search.sh) or search-time drop-path probability {0, 0.2, 0.4, 0.6} with
  the cutout schedule — and the run with the best validation accuracy kept. Each run of
  the grid starts from the same initial state as an independent run with the same seed
  would (the references' grid jobs share `--seed`); the score is RobustDARTS'
  `results_perf`: the `infer()` accuracy of the last epoch, in eval mode, over the whole
  validation split (search/infer.py).
- Drop path and cutout (src/search/train_search.py, `drop_path_prob != 0`): each epoch e
  drops every mixed-op output with probability p·e/(epochs − 1) in training mode and cuts
  out a 16×16 square of each image with probability cutout_prob·e/(epochs − 1); cutout is
  off when p = 0 (src/search/args.py). The reference's `valid_queue` draws from the same
  training set and transform, so the α batches and the infer() pass are cut out too.
- DARTS-ADA (`darts_ada`, scripts/DARTS-ADA_search.sh: --early_stop 3 --mul_factor 10
  --max_weight_decay 0.03): DARTS-ES' eigenvalue criterion, but when it fires the search
  rolls back to the epoch it names (weights, α, both optimizers and the eigenvalue tracker
  as saved at the end of that epoch), multiplies the weight decay by `mul_factor` and goes
  on; once the weight decay has reached `max_weight_decay` the criterion is ignored. The
  architecture of the last epoch is returned, scored by infer() at that epoch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Arg, Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.stop_criteria import DartsEs
from nasrepro.search.infer import infer, selection_score

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

# Offset between the run's seed and the cutout generator's seed (own stream, as SDARTS-RS).
_SEED_OFFSET = 0x2DA125
_INFER_HOW = "infer(): eval mode, the whole validation split, last epoch (RobustDARTS results_perf)"


def cutout(
    x: torch.Tensor, length: int, prob: float, generator: torch.Generator
) -> torch.Tensor:
    """RobustDARTS utils.Cutout on a batch: each image, with probability `prob`, gets the
    square [y − length//2, y + length//2) × [x − length//2, x + length//2), clipped to the
    image, set to 0 (after normalization, as the reference appends it to the transform);
    the centre (y, x) is uniform over the pixels. Draws come from `generator` (CPU)."""
    n, _, h, w = x.shape
    apply = torch.rand(n, generator=generator) < prob
    ys = torch.randint(0, h, (n,), generator=generator)
    xs = torch.randint(0, w, (n,), generator=generator)
    if not bool(apply.any()):
        return x
    half = length // 2
    rows = torch.arange(h)
    cols = torch.arange(w)
    y1, y2 = (ys - half).clamp(0, h), (ys + half).clamp(0, h)
    x1, x2 = (xs - half).clamp(0, w), (xs + half).clamp(0, w)
    in_rows = (rows[None, :] >= y1[:, None]) & (rows[None, :] < y2[:, None])
    in_cols = (cols[None, :] >= x1[:, None]) & (cols[None, :] < x2[:, None])
    cut = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    return x * (~cut).to(x.dtype).to(x.device)[:, None, :, :]


def ramp(value: float, epoch: int, epochs: int) -> float:
    """value·epoch/(epochs − 1): RobustDARTS' drop-path and cutout schedules (0 at the first
    epoch, the full value at the last)."""
    return value * epoch / (epochs - 1) if epochs > 1 else value


class _Regularization:
    """Drop path and cutout at one run's strength, on the schedule of train_search.py."""

    def __init__(self, cutout_length: int, cutout_prob: float) -> None:
        self.cutout_length = cutout_length
        self.cutout_prob = cutout_prob
        self.current_cutout = 0.0
        self.generator: torch.Generator | None = None

    def seed(self) -> None:
        self.generator = torch.Generator().manual_seed(
            (torch.initial_seed() + _SEED_OFFSET) % 2**63
        )

    def epoch_start(self, ctx: SearchContext, drop_path_prob: float) -> dict[str, float]:
        p = ramp(drop_path_prob, ctx.epoch, ctx.settings.epochs)
        if not hasattr(ctx.supernet, "drop_path_prob"):
            if drop_path_prob > 0:
                kind = type(ctx.supernet).__name__
                raise ValueError(f"search-time drop path needs a DARTS-type supernet, not {kind}")
        else:
            ctx.supernet.drop_path_prob = p
        # args.py: "set cutout to False if the drop_prob is 0"
        self.current_cutout = (
            ramp(self.cutout_prob, ctx.epoch, ctx.settings.epochs) if drop_path_prob > 0 else 0.0
        )
        return {"drop_path_prob": p, "cutout_prob": self.current_cutout}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.current_cutout <= 0 or self.cutout_length <= 0:
            return x
        if self.generator is None:
            self.seed()
        assert self.generator is not None
        return cutout(x, self.cutout_length, self.current_cutout, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            if self.generator is None:
                self.seed()
            assert self.generator is not None
            self.generator.set_state(state["generator"])


@register_method(
    "rdarts",
    "R-DARTS(L2)/(DP): a grid of searches over weight decay / drop path, best by validation",
    args={
        "weight_decays": Arg("list", nullable=True),
        "drop_path_probs": Arg("list", nullable=True),
        "cutout_length": Int(0),
        "cutout_prob": Float(0, 1),
    },
)
class RDarts(MethodHook):
    """One search per grid point (drop_path_probs × weight_decays; a list left null is the
    search's own weight decay / no drop path), each from the same initial state; the run
    whose last epoch has the best infer() validation accuracy is kept (ties: the first).

    - weight_decays: R-DARTS(L2), RobustDARTS start_search.sh {3, 9, 27, 81, 243}e-4.
    - drop_path_probs: R-DARTS(DP), {0.0, 0.2, 0.4, 0.6}.
    - cutout_length, cutout_prob: the cutout applied with drop path (args.py: 16, 1.0).
    """

    name = "rdarts"
    restarts_from_start = True

    def __init__(
        self,
        weight_decays: list[float] | None = None,
        drop_path_probs: list[float] | None = None,
        cutout_length: int = 16,  # RobustDARTS src/search/args.py --cutout_length
        cutout_prob: float = 1.0,  # --cutout_prob
    ) -> None:
        super().__init__()
        if weight_decays is None and drop_path_probs is None:
            raise ValueError("rdarts needs weight_decays (R-DARTS(L2)) or drop_path_probs (DP)")
        for arg, values, hi in (
            ("weight_decays", weight_decays, math.inf),
            ("drop_path_probs", drop_path_probs, 1.0),
        ):
            if values is None:
                continue
            ok = all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < hi
                for v in values
            )
            if not values or not ok:
                raise ValueError(f"rdarts: {arg} must be a non-empty list of numbers in [0, {hi})")
        self.grid = [
            (float(dp), None if wd is None else float(wd))
            for dp in (drop_path_probs if drop_path_probs is not None else [0.0])
            for wd in (weight_decays if weight_decays is not None else [None])
        ]
        self.reg = _Regularization(cutout_length, cutout_prob)
        self._run = 0
        self._runs: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"run": self._run, "runs": list(self._runs), "reg": self.reg.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._run = int(state.get("run", 0))
        self._runs = list(state.get("runs", []))
        self.reg.load_state_dict(state.get("reg", {}))

    def on_build(self, ctx: SearchContext) -> None:
        self.reg.seed()

    def _settings(self, ctx: SearchContext) -> tuple[float, float]:
        dp, wd = self.grid[self._run]
        return dp, ctx.settings.weight_decay if wd is None else wd

    def on_epoch_start(self, ctx: SearchContext) -> None:
        dp, wd = self._settings(ctx)
        assert ctx.w_optimizer is not None
        for group in ctx.w_optimizer.param_groups:
            group["weight_decay"] = wd
        self._now = self.reg.epoch_start(ctx, dp)

    def augment(self, ctx: SearchContext, x: torch.Tensor) -> torch.Tensor:
        return self.reg.augment(x)

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        dp, wd = self._settings(ctx)
        out = {
            "rdarts.run": float(self._run),
            "rdarts.weight_decay": wd,
            "rdarts.drop_path_prob": self._now["drop_path_prob"],
            "rdarts.cutout_prob": self._now["cutout_prob"],
        }
        if ctx.epoch == ctx.settings.epochs - 1:
            scored = infer(ctx)
            if scored is None:
                raise RuntimeError("rdarts scores each run on the validation split: none given")
            self._runs.append(
                {
                    "drop_path_prob": dp,
                    "weight_decay": wd,
                    "valid_acc": scored[0],
                    "valid_loss": scored[1],
                    "alpha": [a.detach().cpu().tolist() for a in ctx.supernet.arch_parameters()],
                }
            )
            out["rdarts.infer_valid_acc"] = scored[0]
        return out

    def restart(self, ctx: SearchContext, history: list[Any]) -> int | None:
        if ctx.epoch != ctx.settings.epochs - 1 or len(self._runs) != self._run + 1:
            return None
        if self._run + 1 < len(self.grid):
            self._run += 1
            return -1
        best = max(range(len(self._runs)), key=lambda k: (self._runs[k]["valid_acc"], -k))
        chosen = self._runs[best]
        with torch.no_grad():
            for a, saved in zip(ctx.supernet.arch_parameters(), chosen["alpha"], strict=True):
                a.copy_(torch.tensor(saved, dtype=a.dtype))
        ctx.state["rdarts"] = {
            "selected_run": best,
            "runs": [{k: v for k, v in r.items() if k != "alpha"} for r in self._runs],
        }
        selection_score(ctx, chosen["valid_acc"], ctx.epoch, _INFER_HOW + f", run {best}")
        return None


def _cpu_copy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


@register_method(
    "darts_ada",
    "DARTS-ADA: on each DARTS-ES stop, roll back and raise the weight decay",
    args={
        "mul_factor": Float(1, lo_open=True),
        "max_weight_decay": Float(0, lo_open=True),
        "ev_freq": Int(1),
        "window": Int(1),
        "delta": Int(1),
        "factor": Float(0, lo_open=True),
        "es_start_epoch": Int(0),
    },
)
class DartsAda(DartsEs):
    """DARTS-ES' tracker (full Hessian, defaults of RobustDARTS' args.py) with DARTS-ADA's
    response to a stop: restore the end-of-epoch state of the epoch the criterion names (as
    utils.load_checkpoint does: weights, α, weight and α optimizers, eigenvalue tracker),
    weight decay × mul_factor, continue with the next epoch. The increase happens while the
    weight decay is below max_weight_decay (train_search.py `final_iteration`:
    log(max)/log(wd) rounds to 1); afterwards the criterion is ignored.

    One difference from the reference, deliberate: RobustDARTS builds the new Architect
    before multiplying args.weight_decay, so its unrolled step keeps using the previous
    weight decay for the rest of the run; here the unrolled step uses the weight decay the
    weights train with (docs/fidelity.md).
    """

    name = "darts_ada"

    def __init__(
        self,
        mul_factor: float = 10.0,  # DARTS-ADA_search.sh --mul_factor 10 (args.py default 3)
        max_weight_decay: float = 0.03,  # DARTS-ADA_search.sh --max_weight_decay 0.03
        ev_freq: int = 2,
        window: int = 5,
        delta: int = 4,
        factor: float = 1.3,
        es_start_epoch: int = 10,
    ) -> None:
        super().__init__(
            ev_freq=ev_freq,
            window=window,
            delta=delta,
            factor=factor,
            es_start_epoch=es_start_epoch,
            rollback=True,
            hessian="full",
        )
        if mul_factor <= 1:
            raise ValueError(f"darts_ada: mul_factor must be > 1, got {mul_factor}")
        self.mul_factor = mul_factor
        self.max_weight_decay = max_weight_decay
        self._snapshots: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "snapshots": {str(k): v for k, v in self._snapshots.items()},
            "events": list(self._events),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._snapshots = {int(k): v for k, v in state.get("snapshots", {}).items()}
        self._events = list(state.get("events", []))

    def _tracker(self) -> dict[str, Any]:
        return {
            "ev_epochs": list(self._ev_epochs),
            "ev": list(self._ev),
            "alphas": {k: [a.clone() for a in v] for k, v in self._alphas.items()},
            "valid": dict(self._valid),
        }

    def weight_decay(self, ctx: SearchContext) -> float:
        assert ctx.w_optimizer is not None
        return float(ctx.w_optimizer.param_groups[0]["weight_decay"])

    def final_iteration(self, weight_decay: float) -> bool:
        """train_search.py: round(log(max_weight_decay)/log(weight_decay), 1) == 1."""
        ratio = math.log(self.max_weight_decay) / math.log(weight_decay)
        return round(ratio, 1) == 1.0

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        out = super().on_epoch_end(ctx)
        if "darts_es.eigenvalue" in out:  # an eigenvalue epoch: a possible rollback target
            assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
            self._snapshots[ctx.epoch] = _cpu_copy(
                {
                    "supernet": ctx.supernet.state_dict(),
                    "w_optimizer": ctx.w_optimizer.state_dict(),
                    "a_optimizer": ctx.a_optimizer.state_dict(),
                    "tracker": self._tracker(),
                }
            )
            # a stop names an epoch at most window//2 + delta evaluations back
            keep = sorted(self._snapshots)[-(self.window // 2 + self.delta + 1) :]
            self._snapshots = {k: self._snapshots[k] for k in keep}
        out["darts_ada.weight_decay"] = self.weight_decay(ctx)
        return out

    def should_stop(self, ctx: SearchContext, history: list[Any]) -> bool:
        return False  # ADA never stops; `restart` handles the criterion

    def restart(self, ctx: SearchContext, history: list[Any]) -> int | None:
        stop, self._stop_epoch = self._stop_epoch, None
        if stop is None:
            return None
        wd = self.weight_decay(ctx)
        if self.final_iteration(wd):
            return None  # the regularization is at its maximum: go on as plain DARTS
        snap = self._snapshots[stop]
        assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
        ctx.supernet.load_state_dict(snap["supernet"])
        ctx.w_optimizer.load_state_dict(snap["w_optimizer"])
        ctx.a_optimizer.load_state_dict(snap["a_optimizer"])
        new_wd = wd * self.mul_factor
        for group in ctx.w_optimizer.param_groups:
            group["weight_decay"] = new_wd
        tracker = snap["tracker"]
        self._ev_epochs = list(tracker["ev_epochs"])
        self._ev = list(tracker["ev"])
        self._alphas = {int(k): [a.clone() for a in v] for k, v in tracker["alphas"].items()}
        self._valid = {int(k): float(v) for k, v in tracker["valid"].items()}
        self._snapshots = {k: v for k, v in self._snapshots.items() if k <= stop}
        event = {
            "stop_epoch": stop,
            "triggered_at_epoch": ctx.epoch,
            "weight_decay": new_wd,
            # DARTS-ES' answer: the architecture at the first stop (README: "we just start
            # DARTS-ADA and log the architectures after the first rollback iteration")
            "valid_acc": self._valid.get(stop),
        }
        self._events.append(event)
        ctx.state["darts_ada"] = {"rollbacks": list(self._events)}
        return stop
