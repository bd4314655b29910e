"""Λ-DARTS `batched=True`: both perturbed passes in one vmapped forward/backward.

The batched path must add the same −λ_t·∇_ω Λ to the weight gradients as the two separate
passes (float64 nets, so that only the math is compared: in fp32 both paths carry the
finite difference's cancellation error, ~ulp(∇L)/‖∇L(P+εΔ) − ∇L(P−εΔ)‖).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasrepro.methods.lambda_darts import LambdaDarts
from nasrepro.search.engine import SearchContext, build_optimizers
from nasrepro.spaces.darts import DartsSupernet
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.suite import SearchSettings

CE = nn.CrossEntropyLoss()
SETTINGS = dict(
    epochs=3,
    batch_size=6,
    lr=0.025,
    lr_min=0.001,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    arch_lr=3e-4,
    arch_weight_decay=1e-3,
)


def _net(kind: str, dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "darts":
        net = DartsSupernet(3, c=2, layers=5, include_none=False)
    else:
        net = Nb201Supernet(3, c=2, n=1, track_running_stats=kind == "nb201-track")
    net = net.double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0.0, 1.0)
    net = net.to(dtype)  # drawn in float64, so the fp32 net is the float64 one rounded
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 3, (6,))
    return net, x, y


def _added(net, x, y, batched: bool, eps0: float, noise: bool = False):
    """What one weight step's hook adds to .grad, the BN state after it and the RNG state."""
    hook = LambdaDarts(eps0=eps0, batched=batched)
    ctx = SearchContext(
        supernet=net,
        settings=SearchSettings(**SETTINGS),
        hooks=[hook],
        device=torch.device("cpu"),
        criterion=CE,
    )
    hook.on_build(ctx)
    build_optimizers(ctx)
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    params = [p for g in ctx.w_optimizer.param_groups for p in g["params"]]
    ctx.w_optimizer.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    weights = hook.weight_step_cell_weights(ctx, net.cell_weights())
    CE(net(x, cell_weights=weights), y).backward()
    before = [p.grad.clone() for p in params]
    rng = torch.get_rng_state()
    hook.after_weight_backward(ctx, x, y)
    added = torch.cat([(p.grad - b).reshape(-1) for p, b in zip(params, before, strict=True)])
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "tracked" in k}
    return added, stats, torch.equal(torch.get_rng_state(), rng)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("kind", ["nb201", "nb201-track", "darts"])
def test_batched_equals_two_passes(kind):
    results = {}
    for batched in (False, True):
        net, x, y = _net(kind, torch.float64)
        results[batched] = _added(net, x, y, batched, eps0=1e-4)
    (plain, stats_p, rng_p), (fast, stats_b, rng_b) = results[False], results[True]
    assert plain.norm() > 0
    assert _rel(fast, plain) < 1e-5, _rel(fast, plain)
    assert rng_p and rng_b  # the global RNG unmoved
    # BN running statistics: the two vmapped passes leave what two passes in a row leave
    # (recomposed from per-pass copies: rounding only).
    assert stats_p.keys() == stats_b.keys() and stats_p
    for k, v in stats_p.items():
        torch.testing.assert_close(stats_b[k], v, rtol=1e-12, atol=1e-15, msg=k)


def test_batched_replays_random_ops():
    """A random op draws the same values in both vmapped passes as in the main pass."""
    results = {}
    for batched in (False, True):
        net, x, y = _net("nb201", torch.float64)
        net.body.stem.register_forward_hook(lambda m, i, out: out + 0.1 * torch.randn_like(out))
        results[batched] = _added(net, x, y, batched, eps0=1e-4)
    assert _rel(results[True][0], results[False][0]) < 1e-5
    assert results[True][2]


def test_batched_fp32_error_is_the_finite_difference_error():
    """In fp32 both paths are off the float64 result by the same order (cancellation)."""
    net64, x, y = _net("nb201", torch.float64)
    exact, _, _ = _added(net64, x, y, False, eps0=1e-4)
    errs = {}
    for batched in (False, True):
        net, x32, y32 = _net("nb201", torch.float32)
        added, _, _ = _added(net, x32, y32, batched, eps0=1e-4)
        errs[batched] = _rel(added.double(), exact)
    assert errs[True] < max(10 * errs[False], 1e-3), errs


def test_batched_needs_central_inner():
    with pytest.raises(ValueError, match="batched"):
        LambdaDarts(batched=True, difference="forward_backward")
    with pytest.raises(ValueError, match="batched"):
        LambdaDarts(batched=True, objective="outer")
    with pytest.raises(ValueError, match="batched"):
        LambdaDarts(batched="yes")


def test_time_lambda_overhead_rows():
    from nasrepro.search.overhead import time_lambda_overhead

    rows = time_lambda_overhead(
        "cpu", steps=1, warmup=0, batch=4, image_size=8, space_args={"c": 2, "n": 1}
    )
    assert [r["method"] for r in rows] == [
        "darts-1st",
        "lambda-central",
        "lambda-forward_backward",
        "lambda-central-batched",
    ]
    assert rows[0]["ratio_to_darts"] == 1.0
    assert all(r["step_ms"] > 0 and r["ratio_to_darts"] > 0 for r in rows)
