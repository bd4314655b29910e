"""SDARTS-RS (Chen & Hsieh, ICML 2020): random smoothing of α during the weight step.

What the reference code does (xiangning-chen/SmoothDARTS sota/cnn/train_search.py and
nasbench201/train_search.py; ruocwang/darts-pt attacker/perturb.py `Random_alpha` with
sota/cnn/model_search_sdarts.py): before each weight step α's data is replaced by
softmax(α) (`softmax_arch_parameters`), U(−ε, ε) noise is added to those probabilities
(one draw per α tensor, so every cell sharing that α sees the same noise), `clip()`
clamps each edge's row to [0, 1] (a row left all-zero gets a 1 at its argmax) and
renormalises it to sum 1, the weight step's forward uses these probabilities directly,
and α is restored afterwards. ε ramps 0.03 + (ε_max − 0.03)·epoch/epochs (both
references), so the last epoch uses ε_max − (ε_max − ε_min)/epochs, not ε_max.

Here the same perturbed probabilities are the per-cell mixing weights the engine hands
to `weight_step_cell_weights`; α itself is never written, so there is nothing to restore
and the α step sees exactly the optimizer's α.

Composition with Λ-DARTS (`methods: [lambda, sdarts_rs]` = Λ-SDARTS-RS, Appendix A.5.2):
Λ-DARTS must read the per-cell gradients w.r.t. the weights the forward really used. If
`sdarts_rs` runs first, `lambda` copies the perturbed weights into its leaves; if it runs
after `lambda`, it perturbs those leaves in place. Both orders give the same tensors, and
the noise comes from the hook's own generator (seeded from the run's seed), so the order
neither changes the noise nor the global random stream (nor Λ-DARTS' RNG replay).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

# Offset between the run's seed and the noise generator's seed, so the noise stream is
# not the global stream of the same seed.
_SEED_OFFSET = 0x5DA125


def noise_generator(seed: int) -> torch.Generator:
    """The hook's noise generator for a run seeded with `seed` (its own stream, not the
    global one: the order of hooks then changes neither)."""
    return torch.Generator().manual_seed((seed + _SEED_OFFSET) % 2**63)


def epsilon_schedule(epsilon_min: float, epsilon_max: float, epoch: int, epochs: int) -> float:
    """ε_t = ε_min + (ε_max − ε_min)·epoch/epochs (SmoothDARTS train_search.py:
    `0.03 + (args.epsilon_alpha - 0.03) * epoch / args.epochs`)."""
    return epsilon_min + (epsilon_max - epsilon_min) * epoch / epochs


def uniform_noise(
    shape: torch.Size | tuple[int, ...],
    epsilon: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """U(−ε, ε) noise of `shape` on the CPU (`torch.zeros_like(p).uniform_(-ε, ε)`)."""
    return torch.empty(shape, dtype=dtype).uniform_(-epsilon, epsilon, generator=generator)


def clip_probs(p: torch.Tensor) -> torch.Tensor:
    """The reference's `Network.clip()` per edge row: clamp to [0, 1]; a row that is all
    zero after clamping gets 1 at its (pre-clamp) argmax; divide by the row sum."""
    clamped = p.clamp(0.0, 1.0)
    dead = clamped.sum(dim=-1, keepdim=True) == 0
    onehot = torch.nn.functional.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p.dtype)
    clamped = torch.where(dead, onehot, clamped)
    return clamped / clamped.sum(dim=-1, keepdim=True)


@register_method(
    "sdarts_rs",
    "SDARTS-RS: uniform noise on softmax(α) during the weight step",
    args={"epsilon_min": Float(0), "epsilon_max": Float(0)},
)
class SdartsRS(MethodHook):
    name = "sdarts_rs"

    def __init__(
        self,
        epsilon_min: float = 0.03,  # SmoothDARTS train_search.py, the ramp's start
        epsilon_max: float = 0.3,  # SmoothDARTS --epsilon_alpha default
    ) -> None:
        for arg, value in (("epsilon_min", epsilon_min), ("epsilon_max", epsilon_max)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"sdarts_rs: {arg} must be a finite number >= 0, got {value!r}")
        if epsilon_min > epsilon_max:
            raise ValueError(
                f"sdarts_rs: epsilon_min {epsilon_min} must not exceed epsilon_max {epsilon_max}"
            )
        self.epsilon_min = float(epsilon_min)
        self.epsilon_max = float(epsilon_max)
        self.epsilon = self.epsilon_min
        self.last_noise: list[torch.Tensor] = []  # the last step's noise, by α index
        self._generator: torch.Generator | None = None

    def on_build(self, ctx: SearchContext) -> None:
        self._generator = noise_generator(torch.initial_seed())

    def state_dict(self) -> dict[str, Any]:
        return {} if self._generator is None else {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state and self._generator is not None:
            self._generator.set_state(state["generator"])

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.epsilon = epsilon_schedule(
            self.epsilon_min, self.epsilon_max, ctx.epoch, ctx.settings.epochs
        )

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        if self._generator is None:
            self.on_build(ctx)
        assert self._generator is not None
        alphas = ctx.supernet.arch_parameters()
        index = ctx.supernet.cell_alpha_index()
        # One draw per α tensor the cells mix with, in α order (not PC-DARTS' edge β).
        self.last_noise = [
            uniform_noise(alphas[k].shape, self.epsilon, self._generator, alphas[k].dtype).to(
                alphas[k].device
            )
            for k in range(max(index) + 1)
        ]
        out: list[torch.Tensor] = []
        cache: dict[tuple[int, int], torch.Tensor] = {}
        for w, k in zip(weights, index, strict=True):
            key = (id(w), k)
            if w.is_leaf and w.requires_grad:
                # An earlier hook's leaf (Λ-DARTS reads its .grad): perturb it in place, once.
                if key not in cache:
                    with torch.no_grad():
                        w.copy_(clip_probs(w + self.last_noise[k]))
                    cache[key] = w
                out.append(w)
                continue
            if key not in cache:
                cache[key] = clip_probs(w + self.last_noise[k])
            out.append(cache[key])
        return out

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"sdarts_rs.epsilon": self.epsilon}
