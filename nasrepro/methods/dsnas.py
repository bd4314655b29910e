"""DSNAS (Hu et al., CVPR 2020) on the DARTS space: one sampled path per step, trained as a
single level, with DSNAS' low-bias gradient for α.

Reference: SNAS-Series/SNAS-Series SNAS/train_search.py `--dsnas` with SNAS/model_search.py
(Network.forward's dsnas branch) and model_edge_all.py (NetworkChild, MixedOpChild); the
ImageNet code in DSNAS/ searches another space (ShuffleNetV2 blocks). Per step:
- z ~ OneHotCategorical(softmax(α)) per edge, normal then reduce, shared by every cell of a
  type (`_get_onehot_mask`); the child network computes only the chosen op of every edge,
  op_k(x)·z_k, with z a leaf that requires a gradient.
- One backward of CE (+ Σ_edges log p(z), whose only gradient is to α): the weights get the
  child's gradients; every edge's reward is ∂CE/∂z_k summed over the cells that share z, and
  α's gradient is ∇α log p(z) times that reward, row by row (the low-bias estimator).
- Clip the weights (norm `grad_clip`) and α (`arch_grad_clip`, 10 there), SGD on the weights,
  plain SGD on α at arch_lr (the single-GPU branch of `init_optimizer`); the engine's α step
  does not run. Under PyTorch 0.4 (SNAS/README.md) `zero_grad` zeroes gradients rather than
  dropping them, so weights of ops not sampled this step still get momentum and weight decay:
  the hook gives them zero gradients.
- α ~ N(1, 0.01) (as `snas_darts`); drop path on every sampled edge's output at the
  command's rate.
The reference's child is a copy of the supernet, so the supernet's BN running statistics never
move there; here the sampled ops' do. Train-mode BN never reads them and argmax selection
does not either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.snas_darts import SnasSupernet, check_method_args
from nasrepro.spaces.mixed import SampledOps

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def one_hot_sample(alpha: torch.Tensor) -> torch.Tensor:
    """One op per row of α, drawn with probabilities softmax(α), as a one-hot matrix."""
    return torch.distributions.OneHotCategorical(probs=F.softmax(alpha, dim=-1)).sample()


def low_bias_alpha_grad(alpha: torch.Tensor, z: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
    """∇α Σ_e log softmax(α_e)[k_e], row e scaled by reward_e: (z − softmax(α))·reward."""
    return (z - F.softmax(alpha.detach(), dim=-1)) * reward.unsqueeze(-1)


@register_method(
    "dsnas",
    "DSNAS on the DARTS space: one sampled path per step, single level, low-bias α gradient",
    args={"drop_path_prob": Float(0, 1, hi_open=True), "loc_mean": Float(), "loc_std": Float(0)},
)
class Dsnas(SnasSupernet, MethodHook):
    """Args (SNAS/train_search.py defaults): drop_path_prob 0.3, loc_mean 1, loc_std 0.01."""

    name = "dsnas"

    def __init__(
        self, drop_path_prob: float = 0.3, loc_mean: float = 1.0, loc_std: float = 0.01
    ) -> None:
        super().__init__()
        given = dict(drop_path_prob=drop_path_prob, loc_mean=loc_mean, loc_std=loc_std)
        check_method_args(self.name, given)
        self.drop_path_prob, self.loc_mean, self.loc_std = drop_path_prob, loc_mean, loc_std
        self._z: list[torch.Tensor] = []

    def update_alpha(self, ctx: SearchContext) -> bool:
        return False  # α steps in `after_weight_backward`, from the same batch

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        with torch.no_grad():
            self._z = [one_hot_sample(a).requires_grad_() for a in ctx.supernet.arch_parameters()]
        drawn = [SampledOps(z.argmax(-1), z) for z in self._z]
        return [drawn[t] for t in ctx.supernet.cell_alpha_index()]  # type: ignore[misc]

    def after_weight_backward(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        alphas = ctx.supernet.arch_parameters()
        with torch.no_grad():
            for a, z in zip(alphas, self._z, strict=True):
                # only the chosen op's weight enters the child: its gradient is the reward
                grad = torch.zeros_like(z) if z.grad is None else z.grad
                reward = (grad * z).sum(-1)
                a.grad = low_bias_alpha_grad(a, z, reward)
            if ctx.settings.arch_grad_clip is not None:  # train_search.py: norm 10 over α
                torch.nn.utils.clip_grad_norm_(alphas, ctx.settings.arch_grad_clip)
            for a in alphas:  # the single-GPU branch: torch.optim.SGD(arch, lr=arch_lr)
                a.add_(a.grad, alpha=-ctx.settings.arch_lr)
            assert ctx.w_optimizer is not None
            for group in ctx.w_optimizer.param_groups:  # PyTorch 0.4: zeroed, not dropped
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
