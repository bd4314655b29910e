"""Rounding tolerances for "a speed switch computes the same step as the plain path".

An fp32 speed switch (channels_last, the fused NB201 op, seeds stacked under vmap, compiled
kernels, CUDA graphs) evaluates the same real-valued step in a different order and grouping
of floating-point operations, so its result differs from the plain path's by rounding only.
How large that difference may be follows from the standard error analysis (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1, §3.5):

1. Backward error. A sum or dot product of n terms, evaluated in any order, equals the exact
   sum of terms each perturbed by a relative γ_n = n·u/(1 − n·u) (u = unit roundoff, half
   the dtype's machine epsilon). A step chains D such reductions (each layer's forward and
   backward), so every evaluation order computes the exact step of data (weights, α,
   inputs) perturbed relatively by at most γ_{n·D}, n the longest reduction in the step.
2. Condition. A relative data perturbation δ moves output tensor t by at most κ_t·δ
   relative to ‖t‖, κ_t the tensor's condition number at this point of the computation.
   κ varies hugely between tensors: weights after one SGD step barely depend on the
   rounding of their gradients (κ ~ 1), α after Adam's first step, ≈ α − lr·g/(|g| + ε),
   amplifies the error of a near-zero gradient element by up to 1/ε, and the second-order
   step's finite difference divides by its radius. So κ is not assumed; it is measured per
   tensor by running the plain step on data perturbed by a random relative δ (float64, δ
   small enough to stay in the linear regime of Adam's ε, large enough to be far above
   float64 rounding).
3. Both paths are within κ_t·γ_{nD} of the exact result, so they are within 2·κ_t·γ_{nD}
   of each other. (A random δ direction under-estimates the worst-case κ, while γ_{nD}
   over-estimates accumulated rounding, which grows like √(nD) for independent errors:
   the two approximations point opposite ways, by factors of the same √-size.)

Tests compare in float64, where this bound is ~1e-10 and a real mistake (a wrong mixing
weight, a lost BN statistic) moves α by ~10% and the weights by ~1%.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Relative perturbation of the data used to measure κ (see the module docstring, 2.):
# δ·‖∇L‖ ≈ 1e-10 stays far below Adam's ε = 1e-8, and far above float64's 1e-16 rounding.
PROBE_DELTA = 1e-10


def unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def longest_reduction(net: nn.Module, batch: int, image_size: int) -> int:
    """n: the longest sum in a training step — BN statistics and conv weight gradients run
    over every pixel of the batch at the input resolution; a conv output over its fan-in."""
    fan_in = max(
        (m.weight[0].numel() for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)),
        default=1,
    )
    return max(batch * image_size * image_size, fan_in)


def chained_reductions(net: nn.Module) -> int:
    """D: an upper bound on the reductions chained along any path of a step — every leaf
    module once in the forward and once in the backward pass (over-counts parallel edges)."""
    leaves = sum(1 for m in net.modules() if not any(True for _ in m.children()))
    return 2 * max(leaves, 1)


def gamma(n: int, dtype: torch.dtype) -> float:
    """γ_n = n·u/(1 − n·u): the relative backward error of an n-term sum in any order."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"n·u = {nu:.2g} >= 1: no rounding bound for n={n} in {dtype}")
    return nu / (1 - nu)


def _scales(tensors: list[torch.Tensor], floors: list[float] | None) -> list[float]:
    norms = [t.double().norm().item() for t in tensors]
    floors = floors or [0.0] * len(tensors)
    return [max(n, f) or 1.0 for n, f in zip(norms, floors, strict=True)]


def share_floors(tensors: list[torch.Tensor], group: list[bool]) -> list[float]:
    """Scale floors for tensors that may be zero up to rounding (a BN bias's gradient ahead of
    a batch-statistics BN is a sum that cancels exactly): the rounding bound of a sum is
    γ_n·Σ|terms|, not relative to the (cancelled) result, so such a tensor is judged against
    its share of its group's norm, ‖group‖·√(numel_t / numel_group) (the normwise bound
    over the group, spread by size). Tensors outside the group (`group[t]` False) get 0."""
    members = [t.double() for t, g in zip(tensors, group, strict=True) if g]
    total = torch.cat([t.reshape(-1) for t in members]) if members else torch.zeros(1)
    norm, numel = total.norm().item(), total.numel()
    return [
        norm * (t.numel() / numel) ** 0.5 if g else 0.0 for t, g in zip(tensors, group, strict=True)
    ]


def condition_numbers(
    base: list[torch.Tensor],
    perturbed: list[torch.Tensor],
    delta: float = PROBE_DELTA,
    floors: list[float] | None = None,
) -> list[float]:
    """κ_t = (‖t(δ) − t‖ / ‖t‖) / δ per tensor, from a run on data perturbed by δ."""
    scales = _scales(base, floors)
    return [
        (b.double() - a.double()).norm().item() / s / delta
        for a, b, s in zip(base, perturbed, scales, strict=True)
    ]


def step_tolerances(kappas: list[float], n: int, depth: int, dtype: torch.dtype) -> list[float]:
    """Per-tensor bound on ‖switch − plain‖/‖plain‖: 2·κ_t·γ_{n·D} (module docstring, 3.),
    floored at the tensor's own last rounding (4u: the update written back in `dtype`)."""
    g = gamma(n * depth, dtype)
    return [max(2 * k * g, 4 * unit_roundoff(dtype)) for k in kappas]


def relative_diffs(
    a: list[torch.Tensor], b: list[torch.Tensor], floors: list[float] | None = None
) -> list[float]:
    """‖a_t − b_t‖ / max(‖a_t‖, floor_t) per tensor (absolute where both are 0)."""
    scales = _scales(a, floors)
    return [
        (x.double() - y.double()).norm().item() / s for x, y, s in zip(a, b, scales, strict=True)
    ]


def perturb(tensors: list[torch.Tensor], delta: float, seed: int) -> None:
    """Scale every element by (1 ± δ) with random signs, in place: the data perturbation of
    the condition probe."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in tensors:
            sign = torch.randint(0, 2, t.shape, generator=gen).to(t) * 2 - 1
            t.mul_(1 + delta * sign)


def probe_tolerances(
    run: Callable[[float], list[torch.Tensor]],
    n: int,
    depth: int,
    dtype: torch.dtype,
    floors: list[float] | None = None,
) -> tuple[list[torch.Tensor], list[float]]:
    """(run(0) in float64, per-tensor bounds for comparing another evaluation order in
    `dtype`): `run(δ)` computes the plain path in float64 on data perturbed by δ. Pass the
    same `floors` to relative_diffs when comparing."""
    base = run(0.0)
    kappas = condition_numbers(base, run(PROBE_DELTA), floors=floors)
    return base, step_tolerances(kappas, n, depth, dtype)
