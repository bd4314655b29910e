"""Λ-DARTS (layer alignment, its finite-difference regularizer) and SDARTS-RS hooks.

The finite-difference checks run on tiny float64 supernets against the exact gradient
∇Λ obtained by double backward, with ε0 small enough that ±εΔ crosses no ReLU/max-pool
kink: 1e-6 (1e-7 on the DARTS net). On these tiny nets the paper's ε0 = 1e-4 still agrees
to ~4e-8 (NB201), and the error becomes O(1) from ε0 = 1e-3 up. The full-size supernets
are the opposite case: there the paper's ε0 = 1e-4 crosses kinks and the finite difference
is dominated by the resulting gradient jumps (float64, relative error 154 on NB201 C=16
N=5 and 151 on the 8-cell DARTS space; exact again only below ε0 = 1e-6), measured by
docs/lambda_fd_check.py and recorded in docs/fidelity.md. Measured relative errors (NB201, c=2, n=1,
3 cells, 6 samples, seed 0): central 2.3e-10 (Λ) / 2.3e-10 (Λ±); one-sided 1.5e-6 /
1.6e-6 (= O(ε)); the mean of a forward and a backward step 2.3e-10; the outer variant's
α-gradient 3.5e-10 (central) / 1.1e-6 (one-sided); DARTS space, normal cells, 6.9e-9.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasrepro import catalog
from nasrepro.datasets import build_search_data
from nasrepro.methods.base import MethodHook, build_hooks
from nasrepro.methods.lambda_darts import LambdaDarts, lambda_schedule
from nasrepro.methods.layer_alignment import (
    alignment_direction,
    layer_alignment,
    layer_alignment_pm,
    pair_weight,
)
from nasrepro.methods.sdarts import SdartsRS, clip_probs, epsilon_schedule, uniform_noise
from nasrepro.search.engine import (
    SearchContext,
    build_optimizers,
    run_search,
    seed_everything,
    weight_step,
)
from nasrepro.spaces.darts import DartsSupernet
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.suite import SearchSettings

SETTINGS = dict(
    epochs=2,
    batch_size=16,
    lr=0.025,
    lr_min=0.001,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    arch_lr=3e-4,
    arch_weight_decay=1e-3,
    steps_per_epoch=3,
    image_size=8,
)
EPS0 = 1e-6  # finite-difference definition tests (float64); see the module docstring
CE = nn.CrossEntropyLoss()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Double backward through tiny float64 nets is ~50x slower with 2 contended threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- Λ, Λ±, Δ on hand-made gradients ------------------------------------------------------


def test_layer_alignment_by_hand():
    e1, e2, e3 = torch.eye(3, dtype=torch.float64)
    assert layer_alignment(torch.stack([e1, 2 * e1, 0.5 * e1])).item() == pytest.approx(1.0)
    assert layer_alignment(torch.stack([e1, e2, e3])).item() == pytest.approx(0.0)
    assert layer_alignment(torch.stack([e1, -e1])).item() == pytest.approx(-1.0)
    # pairs (a,b), (a,c), (b,c): cos = 1/√2, 0, 1/√2  → mean √2/3
    g = torch.stack([e1, e1 + e2, e2])
    assert layer_alignment(g).item() == pytest.approx(math.sqrt(2) / 3)
    assert pair_weight(15) == pytest.approx(1 / 105) and pair_weight(6) == pytest.approx(1 / 15)
    with pytest.raises(ValueError, match="two layers"):
        layer_alignment(e1[None])


def test_layer_alignment_pm_by_hand():
    a = torch.tensor([1.0, 1.0], dtype=torch.float64)
    b = torch.tensor([1.0, -1.0], dtype=torch.float64)
    c = torch.tensor([2.0, 1.0], dtype=torch.float64)
    # a·b = 0 over |a|·|b| = 2 → 0, although the vectors are not sign-aligned
    assert layer_alignment_pm(torch.stack([a, b])).item() == pytest.approx(0.0)
    # same signs everywhere → 1 even when not parallel (Λ(a, c) = 3/√10 < 1)
    assert layer_alignment_pm(torch.stack([a, c])).item() == pytest.approx(1.0)
    assert layer_alignment(torch.stack([a, c])).item() == pytest.approx(3 / math.sqrt(10))
    # opposite signs everywhere → −1
    assert layer_alignment_pm(torch.stack([a, -c])).item() == pytest.approx(-1.0)
    # b vs c: b·c = 1, |b|·|c| = 3 → 1/3; three vectors average their three pairs
    assert layer_alignment_pm(torch.stack([b, c])).item() == pytest.approx(1 / 3)
    three = torch.stack([a, b, c])
    assert layer_alignment_pm(three).item() == pytest.approx((0 + 1 + 1 / 3) / 3)


@pytest.mark.parametrize("variant", ["Lambda", "Lambda_pm"])
def test_direction_is_the_gradient_of_the_alignment(variant):
    """Δ (Eq. 10/12, with w = 1/C(L,2)) is exactly ∂Λ/∂G (resp. ∂Λ±/∂G)."""
    torch.manual_seed(0)
    g = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    fn = layer_alignment if variant == "Lambda" else layer_alignment_pm
    (exact,) = torch.autograd.grad(fn(g), g)
    delta = alignment_direction(g.detach(), variant)
    torch.testing.assert_close(delta, exact, rtol=1e-10, atol=1e-12)
    # Parallel gradients are a maximum of Λ: no direction left.
    par = torch.stack([torch.ones(4), 2 * torch.ones(4)]).double()
    assert alignment_direction(par, "Lambda").abs().max() < 1e-12
    with pytest.raises(ValueError, match="variant"):
        alignment_direction(g.detach(), "nope")  # type: ignore[arg-type]


# -- the finite-difference regularizer on a tiny supernet ----------------------------------


def _ctx(net: nn.Module, hooks: list[MethodHook], epochs: int = 3, **overrides) -> SearchContext:
    settings = SearchSettings(**{**SETTINGS, "epochs": epochs, "weight_decay": 0.0, **overrides})
    ctx = SearchContext(
        supernet=net, settings=settings, hooks=hooks, device=torch.device("cpu"), criterion=CE
    )
    for h in hooks:
        h.on_build(ctx)
    build_optimizers(ctx)
    return ctx


def _tiny(seed: int = 0, darts: bool = False):
    """float64 NB201 supernet (3 search cells) or DARTS supernet (3 normal + 2 reduction
    cells) with spread-out α, on one fixed batch."""
    torch.manual_seed(seed)
    if darts:
        net = DartsSupernet(3, c=2, layers=5, include_none=False).double()
        alphas = net.arch_parameters()
    else:
        net = Nb201Supernet(3, c=2, n=1).double()
        alphas = [net.arch_alpha]
    with torch.no_grad():
        for a in alphas:
            a.normal_(0.0, 1.0)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 3, (6,))
    return net, x, y


def _params(ctx: SearchContext) -> list[nn.Parameter]:
    return [p for g in ctx.w_optimizer.param_groups for p in g["params"]]


def _exact_lambda_grad(net, x, y, fn, wrt, cells=None, through_alpha=False):
    """∇ Λ(ω, α) by double backward: per-cell g_l with create_graph, Λ of them, its gradient."""
    if through_alpha:
        probs = [torch.softmax(a, dim=-1) for a in net.arch_parameters()]
        per_cell = [probs[k].clone() for k in net.cell_alpha_index()]
    else:
        per_cell = [w.detach().clone().requires_grad_(True) for w in net.cell_weights()]
    loss = CE(net(x, cell_weights=per_cell), y)
    g = torch.autograd.grad(loss, per_cell, create_graph=True)
    cells = range(len(per_cell)) if cells is None else cells
    value = fn(torch.stack([g[c].reshape(-1) for c in cells]))
    return value, torch.autograd.grad(value, wrt, allow_unused=True)


def _hook_step(net, x, y, hook, ctx, seed=None):
    """One weight step's forward/backward with the hook; returns what it added to .grad / λ_t."""
    ctx.w_optimizer.zero_grad(set_to_none=True)
    if seed is not None:
        torch.manual_seed(seed)
    weights = hook.weight_step_cell_weights(ctx, net.cell_weights())
    CE(net(x, cell_weights=weights), y).backward()
    before = [p.grad.clone() for p in _params(ctx)]
    hook.after_weight_backward(ctx, x, y)
    return torch.cat(
        [
            ((p.grad - b) / hook.lambda_t).reshape(-1)
            for p, b in zip(_params(ctx), before, strict=True)
        ]
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("variant", ["Lambda", "Lambda_pm"])
def test_central_difference_matches_exact_gradient(variant):
    net, x, y = _tiny()
    hook = LambdaDarts(variant=variant, eps0=EPS0)
    ctx = _ctx(net, [hook])
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    fn = layer_alignment if variant == "Lambda" else layer_alignment_pm
    _, exact = _exact_lambda_grad(net, x, y, fn, _params(ctx))
    # The weight step descends L − λ_t·Λ, so the hook adds −λ_t·∇_ω Λ (Eq. 8, 13).
    minus_grad = -torch.cat([e.reshape(-1) for e in exact])
    added = _hook_step(net, x, y, hook, ctx)
    assert _rel(added, minus_grad) < 1e-7, _rel(added, minus_grad)
    # ε = ε0/‖Δ‖_F (Eq. 13), Δ from the per-cell gradients of a plain backward.
    leaves = [w.detach().clone().requires_grad_(True) for w in net.cell_weights()]
    g = torch.autograd.grad(CE(net(x, cell_weights=leaves), y), leaves)
    delta = alignment_direction(torch.stack([t.reshape(-1) for t in g]), variant)
    assert hook.eps == pytest.approx(EPS0 / delta.norm().item(), rel=1e-9)


@pytest.mark.parametrize("variant", ["Lambda", "Lambda_pm"])
def test_forward_backward_difference(variant):
    """Eq. 24 on one step, Eq. 25 on the next: each is O(ε) off, their mean is the central
    difference (same batch and weights)."""
    net, x, y = _tiny()
    hook = LambdaDarts(variant=variant, eps0=EPS0, difference="forward_backward")
    ctx = _ctx(net, [hook])
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    fn = layer_alignment if variant == "Lambda" else layer_alignment_pm
    _, exact = _exact_lambda_grad(net, x, y, fn, _params(ctx))
    minus_grad = -torch.cat([e.reshape(-1) for e in exact])
    fwd = _hook_step(net, x, y, hook, ctx)
    bwd = _hook_step(net, x, y, hook, ctx)
    assert 0 < _rel(fwd, minus_grad) < 1e-4 and 0 < _rel(bwd, minus_grad) < 1e-4
    assert _rel((fwd + bwd) / 2, minus_grad) < 1e-7


def test_darts_space_regularizes_normal_cells_only():
    net, x, y = _tiny(darts=True)
    # ε0 = 1e-7: on this net a max-pool/ReLU switch lies between ε0 = 1e-7 and 1e-6 along
    # Δ; from 1e-6 up the error grows exactly as 1/ε (2.5e3, 2.5e2, 25, 3.7 for
    # ε0 = 1e-6 … 1e-3), a gradient jump, not a wrong direction.
    hook = LambdaDarts(eps0=1e-7)
    ctx = _ctx(net, [hook])
    assert hook.groups == [[0, 2, 4]]  # reductions at layers//3 = 1 and 2·layers//3 = 3
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    _, exact = _exact_lambda_grad(net, x, y, layer_alignment, _params(ctx), cells=[0, 2, 4])
    minus_grad = -torch.cat([e.reshape(-1) for e in exact])
    assert _rel(_hook_step(net, x, y, hook, ctx), minus_grad) < 1e-6
    both = LambdaDarts(cells="all")
    _ctx(net, [both])
    assert both.groups == [[0, 2, 4], [1, 3]]
    with pytest.raises(ValueError, match=">= 2 cells"):
        _ctx(DartsSupernet(3, c=2, layers=3), [LambdaDarts()])


@pytest.mark.parametrize("difference", ["central", "forward_backward"])
def test_outer_objective_adds_minus_lambda_grad_alpha_to_the_alpha_step(difference):
    net, x, y = _tiny()
    hook = LambdaDarts(eps0=EPS0, objective="outer", difference=difference)
    ctx = _ctx(net, [hook])
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    _, (exact,) = _exact_lambda_grad(
        net, x, y, layer_alignment, [net.arch_alpha], through_alpha=True
    )
    regs = []
    for _ in range(2):  # forward_backward: Eq. 24, then Eq. 25
        added = _hook_step(net, x, y, hook, ctx)
        assert added.abs().max() == 0  # ω gets nothing in the outer variant
        ((alpha, reg),) = hook._alpha_reg
        assert alpha is net.arch_alpha
        regs.append(reg / hook.lambda_t)
    bound = 1e-7 if difference == "central" else 1e-4
    assert all(_rel(r, -exact) < bound for r in regs)
    assert _rel((regs[0] + regs[1]) / 2, -exact) < 1e-7
    # The α optimizer's pre-step hook adds it to whatever α gradient the step computed.
    net.arch_alpha.grad = torch.ones_like(net.arch_alpha)
    ctx.a_optimizer.step()
    assert hook._alpha_reg is None
    torch.testing.assert_close(net.arch_alpha.grad, 1.0 + reg)


def test_extra_passes_replay_randomness_and_move_bn_stats_as_the_reference():
    """A random op is the same function in all passes (the RNG is replayed), the global RNG
    does not move, and the BN running statistics move as the reference's extra passes move
    them: two more train-mode forwards, at P − εΔ then P + εΔ, after the main pass."""
    import copy

    net, x, y = _tiny()
    net.body.stem.register_forward_hook(lambda m, i, out: out + 0.1 * torch.randn_like(out))
    hook = LambdaDarts(eps0=EPS0)
    ctx = _ctx(net, [hook])
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    torch.manual_seed(5)
    _, exact = _exact_lambda_grad(net, x, y, layer_alignment, _params(ctx))
    minus_grad = -torch.cat([e.reshape(-1) for e in exact])

    ctx.w_optimizer.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    weights = hook.weight_step_cell_weights(ctx, net.cell_weights())
    CE(net(x, cell_weights=weights), y).backward()
    after_main = copy.deepcopy(net)
    counts = {k: int(v) for k, v in net.state_dict().items() if "tracked" in k}
    rng = torch.get_rng_state()
    passes: list[list[torch.Tensor]] = []
    grads = hook._grads
    hook._grads = lambda c, xx, yy, w, wrt: passes.append([t.detach() for t in w]) or grads(
        c, xx, yy, w, wrt
    )
    before = [p.grad.clone() for p in _params(ctx)]
    hook.after_weight_backward(ctx, x, y)
    added = torch.cat(
        [
            ((p.grad - b) / hook.lambda_t).reshape(-1)
            for p, b in zip(_params(ctx), before, strict=True)
        ]
    )
    assert _rel(added, minus_grad) < 1e-6
    assert torch.equal(torch.get_rng_state(), rng)
    # The same two passes on the copy taken after the main pass, in the same order.
    assert len(passes) == 2
    with torch.no_grad():
        for w in passes:
            torch.manual_seed(5)
            after_main(x, cell_weights=w)
    stats = [k for k in net.state_dict() if "running" in k or "tracked" in k]
    assert stats
    for k in stats:
        assert torch.equal(net.state_dict()[k], after_main.state_dict()[k]), k
        if "tracked" in k:
            assert int(net.state_dict()[k]) == counts[k] + 2


def test_extra_passes_run_forward_only_when_lambda_is_zero():
    """Epoch 0 (λ_t = 0): nothing is added to the weights' gradients, but the two passes run
    without gradients and move the BN statistics, as the reference's passes (added × 0) do."""
    net, x, y = _tiny()
    hook = LambdaDarts(eps0=EPS0)
    ctx = _ctx(net, [hook])
    ctx.epoch = 0
    hook.on_epoch_start(ctx)
    assert hook.lambda_t == 0.0
    ctx.w_optimizer.zero_grad(set_to_none=True)
    weights = hook.weight_step_cell_weights(ctx, net.cell_weights())
    CE(net(x, cell_weights=weights), y).backward()
    before = [p.grad.clone() for p in _params(ctx)]
    hook.after_weight_backward(ctx, x, y)
    assert all(torch.equal(p.grad, b) for p, b in zip(_params(ctx), before, strict=True))
    counts = [v for k, v in net.state_dict().items() if "tracked" in k]
    assert counts and all(int(c) == 3 for c in counts)


@pytest.mark.parametrize("clip_includes_alpha", [False, True])
def test_weight_loss_alpha_gradient_reaches_the_clip_norm_only(clip_includes_alpha):
    """AutoDL's NB201 loops clip with α in the norm, and the reference Λ cells mix with
    `alphas.clone()`: the weight loss' α gradient is in α.grad at the clip. The hook's leaf
    copies would stop it, so with `clip_includes_alpha` it sends their gradients back to α;
    the engine drops α's gradient after the weight step, so the α step is unchanged."""
    net, x, y = _tiny()
    hook = LambdaDarts(eps0=1e-4)
    ctx = _ctx(net, [hook], clip_includes_alpha=clip_includes_alpha)
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    (want,) = torch.autograd.grad(CE(net(x), y), net.arch_alpha)
    seen = []
    saved = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        seen.append(None if net.arch_alpha.grad is None else net.arch_alpha.grad.clone())
        assert any(p is net.arch_alpha for p in params) == clip_includes_alpha
        return saved(params, max_norm, *a, **k)

    nn.utils.clip_grad_norm_ = spy
    try:
        weight_step(ctx, x, y)
    finally:
        nn.utils.clip_grad_norm_ = saved
    if clip_includes_alpha:
        torch.testing.assert_close(seen[0], want, rtol=1e-12, atol=1e-15)
    else:
        assert seen == [None]
    assert net.arch_alpha.grad is None  # dropped before the α step


def test_alpha_step_is_the_same_with_alpha_in_the_clip_norm():
    """Same weights, α and batches, clip too large to act: α and the weights end up equal
    whether or not the norm counts α (it only changes the clip factor)."""
    g = torch.Generator().manual_seed(3)
    loader = [
        (torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g),
         torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g))
        for _ in range(2)
    ]  # fmt: skip
    results = []
    for flag in (False, True):
        net, _, _ = _tiny()
        ctx = _ctx(
            net, [LambdaDarts(eps0=1e-4)], grad_clip=1e6, clip_includes_alpha=flag,
            steps_per_epoch=2,
        )  # fmt: skip
        run_search(ctx, loader, steps_per_epoch=2)
        results.append([t.detach().clone() for t in net.state_dict().values()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_regularizer_step_increases_alignment():
    """Sign check: a small SGD step on the added term alone raises Λ; the opposite lowers it."""
    for variant, fn in (("Lambda", layer_alignment), ("Lambda_pm", layer_alignment_pm)):
        net, x, y = _tiny(seed=1)
        hook = LambdaDarts(variant=variant, eps0=1e-4)  # the paper's ε0
        ctx = _ctx(net, [hook])
        ctx.epoch = 2
        hook.on_epoch_start(ctx)
        params = _params(ctx)
        start, _ = _exact_lambda_grad(net, x, y, fn, params)
        added = _hook_step(net, x, y, hook, ctx) * hook.lambda_t  # −λ_t·∇Λ as added to .grad
        step = 1e-2 / added.norm()
        values = {}
        for sign in (1.0, -1.0):
            with torch.no_grad():
                offset = 0
                saved = [p.clone() for p in params]
                for p in params:
                    n = p.numel()
                    p.sub_(sign * step * added[offset : offset + n].view_as(p))
                    offset += n
            values[sign], _ = _exact_lambda_grad(net, x, y, fn, params)
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)
        assert values[1.0] > start > values[-1.0], (variant, start, values)


# -- schedule, arguments, diagnostics, an engine run --------------------------------------


def test_lambda_schedule_and_args():
    assert [lambda_schedule(0.125, e, 5) for e in range(5)] == [
        0.0,
        0.03125,
        0.0625,
        0.09375,
        0.125,
    ]
    assert lambda_schedule(0.25, 0, 1) == 0.25
    net, _, _ = _tiny()
    hook = LambdaDarts(lambda_=0.5)
    ctx = _ctx(net, [hook], epochs=3)
    for epoch, want in enumerate([0.0, 0.25, 0.5]):
        ctx.epoch = epoch
        hook.on_epoch_start(ctx)
        assert hook.lambda_t == want
    bad = [
        {"lambda_": -1.0},
        {"lambda_": float("nan")},
        {"eps0": 0.0},
        {"variant": "lambda"},
        {"difference": "forward"},
        {"objective": "both"},
        {"cells": "reduce"},
    ]
    for args in bad:
        with pytest.raises(ValueError, match="lambda: "):
            LambdaDarts(**args)
    with pytest.raises(ValueError, match="sdarts_rs: "):
        SdartsRS(epsilon_min=0.5, epsilon_max=0.3)
    with pytest.raises(ValueError, match="sdarts_rs: "):
        SdartsRS(epsilon_max=-1)
    assert isinstance(catalog.get("method", "lambda")(), LambdaDarts)
    assert isinstance(catalog.get("method", "sdarts_rs")(), SdartsRS)


def _search(methods, method_args=None, seed=3, **overrides):
    settings = SearchSettings(**{**SETTINGS, **overrides})
    seed_everything(seed, deterministic=True)
    data = build_search_data(
        "synthetic",
        root=None,
        batch_size=settings.batch_size,
        seed=seed,
        image_size=8,
        options={"n": 96, "num_classes": 3},
    )
    net = Nb201Supernet(data.num_classes, c=4, n=1)
    ctx = SearchContext(
        supernet=net,
        settings=settings,
        hooks=build_hooks(methods, method_args or {}),
        device=torch.device("cpu"),
        criterion=CE,
    )
    return net, run_search(ctx, data.loader, data.steps_per_epoch)


def test_search_with_lambda_logs_alignment():
    _, history = _search(["darts", "lambda"])
    assert len(history) == 2
    for epoch, log in enumerate(history):
        d = log.diagnostics
        assert {"lambda.Lambda", "lambda.Lambda_pm", "lambda.lambda_t", "lambda.eps"} <= set(d)
        assert -1.0 <= d["lambda.Lambda"] <= 1.0 and d["lambda.eps"] > 0
        assert d["lambda.lambda_t"] == 0.125 * epoch
        assert math.isfinite(log.train_loss) and math.isfinite(log.valid_loss)


def test_lambda_sdarts_and_outer_run():
    net, history = _search(
        ["darts", "lambda", "sdarts_rs"],
        {"lambda": {"variant": "Lambda_pm", "difference": "forward_backward"}},
    )
    assert history[-1].diagnostics["sdarts_rs.epsilon"] == pytest.approx(0.03 + 0.27 / 2)
    assert math.isfinite(history[-1].diagnostics["lambda.Lambda"])
    net_outer, hist_outer = _search(["darts", "lambda"], {"lambda": {"objective": "outer"}})
    net_plain, _ = _search(["darts"])
    assert math.isfinite(hist_outer[-1].diagnostics["lambda.Lambda"])
    assert not torch.equal(net_outer.arch_alpha, net_plain.arch_alpha)


# -- SDARTS-RS ------------------------------------------------------------------------------


def test_sdarts_epsilon_ramp_and_noise_bounds():
    # SmoothDARTS: 0.03 + (ε_max − 0.03)·epoch/epochs
    ramp = [epsilon_schedule(0.03, 0.3, e, 10) for e in range(10)]
    assert ramp[0] == pytest.approx(0.03) and ramp[-1] == pytest.approx(0.273)
    assert all(b - a == pytest.approx(0.027) for a, b in zip(ramp, ramp[1:], strict=False))
    g = torch.Generator().manual_seed(0)
    noise = uniform_noise((1000, 5), 0.2, g, torch.float64)
    assert noise.abs().max() <= 0.2 and noise.max() > 0.19 and noise.min() < -0.19
    p = clip_probs(torch.tensor([[0.7, -0.1, 0.6], [-0.2, -0.05, -0.3]]))
    torch.testing.assert_close(p, torch.tensor([[0.7 / 1.3, 0.0, 0.6 / 1.3], [0.0, 1.0, 0.0]]))


class _Record(MethodHook):
    name = "record"

    def weight_step_cell_weights(self, ctx, weights):
        self.seen = [w.detach().clone() for w in weights]
        return weights


def test_sdarts_perturbs_mixing_weights_not_alpha():
    net, x, y = _tiny()
    sd, rec = SdartsRS(), _Record()
    ctx = _ctx(net, [sd, rec], epochs=4)
    ctx.epoch = 3
    sd.on_epoch_start(ctx)
    assert sd.epsilon == pytest.approx(0.03 + 0.27 * 3 / 4)
    alpha = net.arch_alpha.detach().clone()
    weight_step(ctx, x, y)
    assert torch.equal(net.arch_alpha, alpha)  # only the α optimizer moves α
    probs = torch.softmax(alpha, dim=-1)
    (noise,) = sd.last_noise
    assert noise.abs().max() <= sd.epsilon
    torch.testing.assert_close(rec.seen[0], clip_probs(probs + noise))
    for w in rec.seen:  # every cell of the shared α sees the same noise
        assert torch.equal(w, rec.seen[0])
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[0], dtype=w.dtype))
        assert w.min() >= 0
    assert not torch.allclose(rec.seen[0], probs)


def test_lambda_sdarts_order_does_not_matter():
    """[lambda, sdarts_rs] and [sdarts_rs, lambda] take the identical weight step."""
    results = []
    for order in (("lambda", "sdarts_rs"), ("sdarts_rs", "lambda")):
        net, x, y = _tiny()
        torch.manual_seed(11)
        hooks = {"lambda": LambdaDarts(eps0=1e-4), "sdarts_rs": SdartsRS()}
        ctx = _ctx(net, [hooks[m] for m in order])
        ctx.epoch = 2
        for h in ctx.hooks:
            h.on_epoch_start(ctx)
        weight_step(ctx, x, y)
        results.append(([p.detach().clone() for p in _params(ctx)], hooks["lambda"].eps))
    (pa, ea), (pb, eb) = results
    assert ea == eb
    for a, b in zip(pa, pb, strict=True):
        assert torch.equal(a, b)


def _s4_step(noise: str, eps0: float):
    """One hooked weight step on a float64 S4 supernet (its `noise` op is random)."""
    from nasrepro.spaces import build_space

    torch.manual_seed(0)
    net = build_space("s4").build_supernet(3, c=2, layers=5).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0.0, 1.0)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 3, (6,))
    hook = LambdaDarts(eps0=eps0, noise=noise)
    ctx = _ctx(net, [hook])
    ctx.epoch = 2
    hook.on_epoch_start(ctx)
    added = _hook_step(net, x, y, hook, ctx, seed=7)
    return added, hook.eps, torch.get_rng_state()


def test_fresh_noise_variant_is_the_references_noise_dominated_difference():
    """`noise="fresh"` (Lambda-DARTS train_search.py: three passes, each drawing its own
    S4 noise): the added term is [∇L(P−εΔ, n₁) − ∇L(P+εΔ, n₂)]/(2ε) = [∇L(P, n₁) −
    ∇L(P, n₂)]/(2ε) + O(1), so ε·term tends to a fixed, noise-only vector as ε → 0. With
    `replay` (exact Eq. 13) the term itself converges."""
    fresh = {e: _s4_step("fresh", e) for e in (1e-5, 1e-6)}
    (a5, eps5, rng5), (a6, eps6, rng6) = fresh[1e-5], fresh[1e-6]
    assert _rel(a6 * eps6, a5 * eps5) < 1e-3  # the O(1/ε) noise term, same draws
    assert a6.norm() / a5.norm() == pytest.approx(eps5 / eps6, rel=1e-2)
    replay = {e: _s4_step("replay", e) for e in (1e-5, 1e-6)}
    (r5, _, rng_r5), (r6, _, _) = replay[1e-5], replay[1e-6]
    assert _rel(r6, r5) < 1e-3  # a derivative, not noise
    assert a5.norm() > 100 * r5.norm()  # at ε0 = 1e-5 the noise term is 100x the Λ term
    # fresh passes advance the global RNG (two more draws), replayed ones do not
    assert not torch.equal(rng5, rng_r5) and torch.equal(rng5, rng6)
    with pytest.raises(ValueError, match="noise"):
        LambdaDarts(noise="sometimes")
    with pytest.raises(ValueError, match="fresh"):
        LambdaDarts(noise="fresh", batched=True)
