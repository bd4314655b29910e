"""SDARTS-ADV (Chen & Hsieh, ICML 2020): an adversarial α perturbation during the weight step.

The reference (xiangning-chen/SmoothDARTS sota/cnn/train_search.py with
`--perturb_alpha pgd_linf`; attacker/perturb.py `Linf_PGD_alpha`, attacker/linf_sgd.py) does,
before every weight step, on that step's training batch:

1. α ← softmax(α) (`softmax_arch_parameters`); the cells then mix with α as it is;
2. the supernet in eval() mode; loss_before = L(α₀) (no gradient);
3. random start: α ← clip(α₀ + U(−ε, ε));
4. 7 steps of `Linf_SGD` (lr = 2ε/steps) ascending L: α ← α + lr·sign(∇_α L), then
   α ← clip(α₀ + clamp(α − α₀, −ε, ε)), where clip clamps each edge's row to [0, 1] (a row
   left all-zero gets 1 at its argmax) and renormalises it (`Network.clip`);
5. loss_after = L(α); if loss_before > loss_after, α ← α₀ (the attack failed);
6. back to train() mode; the weight step's forward uses the perturbed α.

ε follows SDARTS-RS' ramp 0.03 + (ε_max − 0.03)·epoch/epochs (train_search.py). As in
`sdarts_rs`, the perturbed probabilities are the per-cell mixing weights the engine hands to
`weight_step_cell_weights` (one tensor per α, shared by every cell of that type); α itself
is never written. The random start draws from the hook's own generator (SDARTS-RS' pieces:
nasrepro/methods/sdarts.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.sdarts import clip_probs, epsilon_schedule, uniform_noise

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

_SEED_OFFSET = 0x5DAADF  # the hook's own noise stream, apart from the run's global stream


def pgd_linf(
    loss_fn: Any,
    start: list[torch.Tensor],
    epsilon: float,
    steps: int,
    noise: list[torch.Tensor] | None,
) -> tuple[list[torch.Tensor], bool]:
    """SmoothDARTS' Linf_PGD_alpha on probabilities `start` (α₀): (the perturbed α, True),
    or (α₀, False) when the attack did not raise the loss. `loss_fn(alphas)` is the loss with
    the cells mixing with `alphas`; `noise` is the random start's U(−ε, ε) draw (None: no
    random start)."""
    base = [a.detach() for a in start]
    lr = 2 * epsilon / steps  # Linf_SGD(lr=2*epsilon/steps)
    with torch.no_grad():
        loss_before = float(loss_fn(base))
    alphas = [a.clone() for a in base]
    if noise is not None:
        alphas = [clip_probs(a + n) for a, n in zip(alphas, noise, strict=True)]
    for _ in range(steps):
        leaves = [a.detach().requires_grad_(True) for a in alphas]
        grads = torch.autograd.grad(-loss_fn(leaves), leaves)
        with torch.no_grad():
            stepped = [a - lr * torch.sign(g) for a, g in zip(leaves, grads, strict=True)]
            alphas = [
                clip_probs(b + (s - b).clamp(-epsilon, epsilon))
                for s, b in zip(stepped, base, strict=True)
            ]
    with torch.no_grad():
        loss_after = float(loss_fn(alphas))
    if loss_before > loss_after:
        return base, False
    return [a.detach() for a in alphas], True


@register_method(
    "sdarts_adv",
    "SDARTS-ADV: PGD (L-inf) attack on softmax(α) during the weight step",
    args={"epsilon_min": Float(0), "epsilon_max": Float(0), "steps": Int(1)},
)
class SdartsAdv(MethodHook):
    name = "sdarts_adv"

    def __init__(
        self,
        epsilon_min: float = 0.03,  # SmoothDARTS train_search.py, the ramp's start
        epsilon_max: float = 0.3,  # SmoothDARTS --epsilon_alpha default
        steps: int = 7,  # attacker/perturb.py Linf_PGD_alpha(steps=7)
    ) -> None:
        for arg, value in (("epsilon_min", epsilon_min), ("epsilon_max", epsilon_max)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"sdarts_adv: {arg} must be a finite number >= 0, got {value!r}")
        if epsilon_min > epsilon_max:
            raise ValueError(
                f"sdarts_adv: epsilon_min {epsilon_min} must not exceed epsilon_max {epsilon_max}"
            )
        if steps < 1:
            raise ValueError(f"sdarts_adv: steps must be >= 1, got {steps}")
        self.epsilon_min = float(epsilon_min)
        self.epsilon_max = float(epsilon_max)
        self.steps = steps
        self.epsilon = self.epsilon_min
        self.kept = 0  # weight steps whose attack raised the loss, this epoch
        self.total = 0
        self._generator: torch.Generator | None = None

    def on_build(self, ctx: SearchContext) -> None:
        self._generator = torch.Generator().manual_seed(
            (torch.initial_seed() + _SEED_OFFSET) % 2**63
        )

    def state_dict(self) -> dict[str, Any]:
        return {} if self._generator is None else {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state and self._generator is not None:
            self._generator.set_state(state["generator"])

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.epsilon = epsilon_schedule(
            self.epsilon_min, self.epsilon_max, ctx.epoch, ctx.settings.epochs
        )
        self.kept = self.total = 0

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        if self._generator is None:
            self.on_build(ctx)
        assert self._generator is not None and ctx.weight_batch is not None
        net = ctx.supernet
        x, y = ctx.weight_batch
        index = net.cell_alpha_index()
        # α₀ per α tensor: the probabilities the cells of that type mix with
        start = [weights[index.index(k)].detach() for k in range(max(index) + 1)]
        noise = [
            uniform_noise(a.shape, self.epsilon, self._generator, a.dtype).to(a.device)
            for a in start
        ]

        def loss(alphas: list[torch.Tensor]) -> torch.Tensor:
            return ctx.criterion(net(x, cell_weights=[alphas[k] for k in index]), y)

        was_training = net.training
        net.eval()  # Linf_PGD_alpha: model.eval() during the attack
        try:
            perturbed, kept = pgd_linf(loss, start, self.epsilon, self.steps, noise)
        finally:
            net.train(was_training)
        self.total += 1
        self.kept += int(kept)
        return [perturbed[k] for k in index]

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        kept = self.kept / self.total if self.total else float("nan")
        return {"sdarts_adv.epsilon": self.epsilon, "sdarts_adv.attack_kept": kept}
