"""Layer alignment of Λ-DARTS (Movahedi et al., ICLR 2023) as small pure functions.

`grads` is always the matrix of per-cell ("per-layer") gradients of the training loss
w.r.t. each cell's own copy of the mixing weights p = softmax(α), one flattened row per
cell: g_l = ∇_{p_l} L(ω, P), shape [L, D]. Rows must be non-zero (the cosines are
undefined otherwise); the functions return NaN rather than guess.

Reference: dr-faustus/Lambda-DARTS sota/cnn/model_search.py (`get_corr`,
`get_perturbations`) and NAS-Bench201/lib/models/cell_searchs/search_model_darts_v1.py.
"""

from __future__ import annotations

from typing import Literal

import torch

Variant = Literal["Lambda", "Lambda_pm"]
VARIANTS: tuple[str, ...] = ("Lambda", "Lambda_pm")


def _rows(grads: torch.Tensor) -> torch.Tensor:
    g = grads.reshape(grads.shape[0], -1)
    if g.shape[0] < 2:
        raise ValueError(f"layer alignment needs at least two layers, got {g.shape[0]}")
    return g


def pair_weight(num_layers: int) -> float:
    """w = 1/C(L, 2), the averaging weight of Eq. 5, 7, 9 and 13."""
    return 2.0 / (num_layers * (num_layers - 1))


def _mean_upper(m: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(m.shape[0], m.shape[1], offset=1, device=m.device)
    return m[i, j].mean()


def layer_alignment(grads: torch.Tensor) -> torch.Tensor:
    """Λ (Eq. 5): mean over pairs l < l' of cos(g_l, g_l')."""
    g = _rows(grads)
    u = g / g.norm(dim=1, keepdim=True)
    return _mean_upper(u @ u.T)


def layer_alignment_pm(grads: torch.Tensor) -> torch.Tensor:
    """Λ± (Eq. 7): mean over pairs l < l' of g_lᵀg_l' / (|g_l|ᵀ|g_l'|)."""
    g = _rows(grads)
    a = g.abs()
    return _mean_upper((g @ g.T) / (a @ a.T))


def alignment_direction(grads: torch.Tensor, variant: Variant = "Lambda") -> torch.Tensor:
    """Δ (Eq. 12): row l is w·Σ_{l'≠l} δ^{l,l'} with δ from Eq. 10 and w = 1/C(L, 2).

    Δ = ∂Λ/∂G (resp. ∂Λ±/∂G), the direction in which moving the per-cell gradients
    increases the alignment; Eq. 13 turns it into ∇_ω Λ by a finite difference in P.
    Returned in the shape of `grads`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    g = _rows(grads)
    n = g.shape[0]
    w = pair_weight(n)
    off = 1.0 - torch.eye(n, dtype=g.dtype, device=g.device)  # the l' ≠ l of Eq. 12
    if variant == "Lambda":
        # Eq. 10, δ_Λ^{l,l'} = (I − u_l u_lᵀ) u_l' / ‖g_l‖ = P_l u_l'  (u = g/‖g‖), so
        # Σ_{l'≠l} δ^{l,l'} = P_l s_l with s_l = Σ_{l'≠l} u_l'. P_l is applied as a
        # projection (no D×D matrix).
        norm = g.norm(dim=1, keepdim=True)
        u = g / norm
        s = off @ u
        proj = s - u * (u * s).sum(dim=1, keepdim=True)
        delta = w * proj / norm
    else:
        # Eq. 10, δ_Λ±^{l,l'} = (g_l' − c_ll'·sign(g_l) ⊙ sign(g_l') ⊙ g_l') / a_ll' with
        # a_ll' = |g_l|ᵀ|g_l'| and c_ll' = g_lᵀg_l' / a_ll'; sign(g_l') ⊙ g_l' = |g_l'|, so
        # Σ_{l'≠l} δ = Σ_{l'} M1_ll' g_l' − sign(g_l) ⊙ Σ_{l'} M2_ll' |g_l'|.
        a = g.abs()
        dots = a @ a.T
        m1 = off / dots
        m2 = off * (g @ g.T) / dots.pow(2)
        delta = w * (m1 @ g - torch.sign(g) * (m2 @ a))
    return delta.reshape(grads.shape)
