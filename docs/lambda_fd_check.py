"""Λ-DARTS' finite difference against the exact ∇_ω Λ at the search size (docs/fidelity.md).

Usage: python docs/lambda_fd_check.py {nb201,darts} [batch] [dtype]
Builds the full search supernet (NB201: C=16, N=5; DARTS: 8 cells, C=16, 7 ops), one
random batch of 32x32 images, spread-out α (N(0, 1)), and prints, per ε0, the relative error
‖FD − exact‖/‖exact‖ of the term the `lambda` hook adds (−∇_ω Λ, central difference) and
the exact term's norm. Exact = double backward through the per-cell gradients.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from nasrepro.methods.lambda_darts import LambdaDarts
from nasrepro.methods.layer_alignment import layer_alignment
from nasrepro.search.engine import SearchContext, build_optimizers
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

CE = nn.CrossEntropyLoss()


def main(space: str, batch: int, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    if space == "nb201":
        net = build_space("nb201").build_supernet(10)
    else:
        net = build_space("darts").build_supernet(10, include_none=False)
    net = net.to(dtype)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0.0, 1.0)
    x = torch.randn(batch, 3, 32, 32, dtype=dtype)
    y = torch.randint(0, 10, (batch,))
    settings = SearchSettings(
        epochs=3, batch_size=batch, lr=0.025, lr_min=0.001, momentum=0.9,
        weight_decay=0.0, arch_lr=3e-4, arch_weight_decay=1e-3,
    )  # fmt: skip
    probe = LambdaDarts()
    ctx = SearchContext(net, settings, [probe], torch.device("cpu"), CE)
    probe.on_build(ctx)
    build_optimizers(ctx)
    params = [p for g in ctx.w_optimizer.param_groups for p in g["params"]]
    cells = [c for group in probe.groups for c in group]
    t = time.perf_counter()
    per_cell = [w.detach().clone().requires_grad_(True) for w in net.cell_weights()]
    g = torch.autograd.grad(CE(net(x, cell_weights=per_cell), y), per_cell, create_graph=True)
    value = layer_alignment(torch.stack([g[c].reshape(-1) for c in cells]))
    exact = torch.autograd.grad(value, params, allow_unused=True)
    exact = -torch.cat([(e if e is not None else torch.zeros_like(p)).reshape(-1)
                        for e, p in zip(exact, params, strict=True)])  # fmt: skip
    print(f"{space} batch {batch} {dtype}: Λ = {value.item():.4f}, |exact| = "
          f"{exact.norm().item():.4e} ({time.perf_counter() - t:.0f}s)", flush=True)  # fmt: skip
    for eps0 in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
        hook = LambdaDarts(eps0=eps0)
        hook.on_build(ctx)
        ctx.hooks = [hook]
        ctx.epoch = 2
        hook.on_epoch_start(ctx)
        ctx.w_optimizer.zero_grad(set_to_none=True)
        w = hook.weight_step_cell_weights(ctx, net.cell_weights())
        CE(net(x, cell_weights=w), y).backward()
        before = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        hook.after_weight_backward(ctx, x, y)
        added = torch.cat([((p.grad - b) / hook.lambda_t).reshape(-1)
                           for p, b in zip(params, before, strict=True)])  # fmt: skip
        rel = ((added - exact).norm() / exact.norm()).item()
        print(f"  eps0 {eps0:.0e}: rel. error {rel:.3e}, |FD| = {added.norm().item():.4e}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else 16,
        torch.float32 if len(sys.argv) > 3 and sys.argv[3] == "float32" else torch.float64,
    )
