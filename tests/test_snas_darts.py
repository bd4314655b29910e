"""`snas_darts` (SNAS' own DARTS-space search) against its definitions: the temperature
schedule, the Gumbel-softmax draw, the op costs of operations.py on hand-computed cases, the
log resource penalty and its α gradient (finite differences), and one single-level step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.methods.snas_darts import (
    SnasDarts,
    edge_costs,
    gumbel_softmax_weights,
    log_resource,
    nodes_not_two,
    op_cost,
    temperature,
)
from nasrepro.search.engine import SearchContext, run_search
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

D = torch.float64


def test_temperature_is_the_linear_schedule_stepped_before_each_epoch() -> None:
    # utils.Temp_Scheduler: (1 − (e + 1)/150)(τ0 − τmin) + τmin, never below τmin
    assert temperature(1.0, 0.03, 0) == pytest.approx((1 - 1 / 150) * 0.97 + 0.03)
    assert temperature(1.0, 0.03, 74) == pytest.approx(0.5 * 0.97 + 0.03)
    assert temperature(1.0, 0.03, 149) == pytest.approx(0.03)
    assert temperature(1.0, 0.03, 400) == 0.03
    taus = [temperature(1.0, 0.03, e) for e in range(150)]
    assert all(b < a for a, b in zip(taus, taus[1:], strict=False))


def test_gumbel_softmax_weights_definition_and_gumbel_max_frequencies() -> None:
    alpha = torch.tensor([[0.5, -1.0, 2.0]], dtype=D)
    u = torch.tensor([[0.2, 0.7, 0.4]], dtype=D)
    w, same_u = gumbel_softmax_weights(alpha, 0.5, u)
    g = -torch.log(-torch.log(u))
    assert same_u is u
    assert torch.allclose(w, torch.softmax((alpha + g) / 0.5, dim=-1), rtol=0, atol=1e-15)
    torch.manual_seed(0)
    many = alpha.expand(20_000, 3).contiguous()
    w, _ = gumbel_softmax_weights(many, 0.05)
    freq = torch.bincount(w.argmax(-1), minlength=3).double() / 20_000
    # the argmax of α + Gumbel noise is distributed as softmax(α) (the Gumbel-max trick)
    assert torch.allclose(freq, torch.softmax(alpha[0], -1), atol=0.015)


def test_op_costs_match_operations_py_by_hand() -> None:
    # sep 3x3, C 4, stride 1, side 8: size 2·4·9 + 2·16 = 104, FLOPs 104·64, MAC 64·(7·4 + 4) + 104
    assert op_cost("sep_conv_3x3", 4, 1, 8) == (104, 6656, 2152)
    # dil 5x5, stride 2: y 4, size 4·25 + 16 = 116, FLOPs 116·16, MAC 16·(6·4 + 4) + 116
    assert op_cost("dil_conv_5x5", 4, 2, 8) == (116, 1856, 564)
    assert op_cost("max_pool_3x3", 4, 2, 8) == (0, 9 * 16 * 4, 5 * 16 * 4)
    assert op_cost("avg_pool_3x3", 4, 1, 8) == (0, 9 * 64 * 4, 2 * 64 * 4)
    # FactorizedReduce: size 2·4·2, FLOPs 16·16, MAC 2·16·(4·4 + 2) + 16
    assert op_cost("skip_connect", 4, 2, 8) == (16, 256, 592)
    assert op_cost("skip_connect", 4, 1, 8) == (0, 0, 512)
    assert op_cost("none", 4, 2, 8) == (0, 0, 0)
    with pytest.raises(ValueError, match="no resource cost for op 'conv_7x1_1x7'"):
        op_cost("conv_7x1_1x7", 4, 1, 8)


def test_edge_costs_follow_the_cells_channels_and_sides() -> None:
    net = build_space("darts").build_supernet(10, c=4, layers=5)  # reductions at 1 and 3
    costs = edge_costs(net, 8)
    assert [tuple(c.shape) for c in costs] == [(14, 8, 3)] * 5
    ops = net.cells[0].edges[0].op_names
    sep = ops.index("sep_conv_3x3")
    assert costs[0][0, sep].tolist() == list(op_cost("sep_conv_3x3", 4, 1, 8))
    assert costs[1][0, sep].tolist() == list(op_cost("sep_conv_3x3", 8, 2, 8))  # reduction
    assert costs[1][2, sep].tolist() == list(op_cost("sep_conv_3x3", 8, 2, 8))  # node 3 ← 0
    assert costs[1][4, sep].tolist() == list(op_cost("sep_conv_3x3", 8, 1, 4))  # node 3 ← 2
    assert costs[2][5, sep].tolist() == list(op_cost("sep_conv_3x3", 8, 1, 4))
    assert costs[4][13, sep].tolist() == list(op_cost("sep_conv_3x3", 16, 1, 2))


def test_log_resource_on_a_hand_computed_case() -> None:
    costs = torch.tensor(
        [[[10.0, 100.0, 1000.0], [0.0, 0.0, 0.0]], [[0.5, 0.25, 4.0], [0.2, 0.1, 0.0]]], dtype=D
    )
    w = torch.tensor([[0.3, 0.7], [0.5, 0.5]], dtype=D)
    # edge 0: S 3, F 30, M 300; edge 1: S 0.35 → 1, F 0.175 → 1, M 2
    want = (math.log(3) + math.log(30) + math.log(300)) / 3 + math.log(2) / 3
    assert log_resource(w, costs).item() == pytest.approx(want, rel=1e-14)


def test_resource_penalty_alpha_gradient_matches_finite_differences() -> None:
    torch.manual_seed(0)
    net = build_space("darts").build_supernet(10, c=4, layers=5).double()
    hook = SnasDarts(resource_lambda=1.0)
    ctx = SearchContext(net, _settings(), [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    ctx.weight_batch = (torch.zeros(1, 3, 8, 8, dtype=D), torch.zeros(1, dtype=torch.long))
    hook.on_build(ctx)
    hook.tau = 0.7
    hook.weight_step_cell_weights(ctx, net.cell_weights())
    alphas = net.arch_parameters()
    grads = torch.autograd.grad(hook.resource_penalty(ctx), alphas)
    h = 1e-4  # R is ~30: a smaller step loses the difference to rounding
    for a, g in zip(alphas, grads, strict=True):
        for idx in [(0, 4), (3, 7), (13, 1)]:
            with torch.no_grad():
                a[idx] += h
                up = hook.resource_penalty(ctx).item()
                a[idx] -= 2 * h
                down = hook.resource_penalty(ctx).item()
                a[idx] += h
            assert g[idx].item() == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-12)
    assert max(g.abs().max().item() for g in grads) > 0


def test_nodes_not_two_counts_where_snas_child_differs_from_the_two_input_cell() -> None:
    net = build_space("darts").build_supernet(10, c=4, layers=3)
    ops = net.cells[0].edges[0].op_names
    none, sep = ops.index("none"), ops.index("sep_conv_3x3")
    with torch.no_grad():
        for a in net.arch_parameters():
            a.zero_()
            a[:, none] = 1.0  # every edge's argmax is 'none': 4 nodes of 0 kept, per cell type
    assert nodes_not_two(net) == 8
    with torch.no_grad():
        for a in net.arch_parameters():
            for e in (0, 1, 2, 3, 5, 6, 9, 10):  # two edges of every node
                a[e, sep] = 2.0
    assert nodes_not_two(net) == 0
    with torch.no_grad():
        net.alphas_reduce[4, sep] = 2.0  # node 3 of the reduction cell keeps three
    assert nodes_not_two(net) == 1


def _settings(**over) -> SearchSettings:
    base = dict(
        epochs=1, batch_size=4, order=1, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False,
        weight_decay=3e-4, arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=0.0,
        grad_clip=5.0, arch_grad_clip=10.0,
    )  # fmt: skip
    return SearchSettings(**{**base, **over})


def test_one_single_level_step_moves_alpha_by_sgd_on_the_joint_gradient() -> None:
    """α after one step = α − lr·(∂CE/∂α + λ∂R/∂α) at the step's draw (no clip acting), and the
    engine's own α step never runs (no validation numbers)."""
    torch.manual_seed(1)
    net = build_space("darts").build_supernet(10, c=4, layers=5).double()
    hook = build_hooks(["snas_darts"], {"snas_darts": {"drop_path_prob": 0.0}})[0]
    x = torch.randn(4, 3, 8, 8, dtype=D)
    y = torch.tensor([0, 1, 2, 3])
    ctx = SearchContext(net, _settings(arch_lr=0.1), [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    torch.manual_seed(2)
    history = run_search(ctx, [(x, y, x, y)], steps_per_epoch=1)
    assert math.isnan(history[0].valid_acc)
    assert history[0].diagnostics["snas.tau"] == pytest.approx(temperature(1.0, 0.03, 0))
    after = [a.detach().clone() for a in net.arch_parameters()]
    # replay: same α start (seed 2 draws α in on_build, then the Gumbel u) on a fresh copy
    torch.manual_seed(1)
    net2 = build_space("darts").build_supernet(10, c=4, layers=5).double()
    hook2 = SnasDarts(drop_path_prob=0.0)
    ctx2 = SearchContext(net2, _settings(arch_lr=0.1), [hook2], torch.device("cpu"), nn.CrossEntropyLoss())
    torch.manual_seed(2)
    hook2.on_build(ctx2)
    hook2.on_epoch_start(ctx2)
    start = [a.detach().clone() for a in net2.arch_parameters()]
    ctx2.weight_batch = (x, y)
    weights = hook2.weight_step_cell_weights(ctx2, net2.cell_weights())
    ce = nn.functional.cross_entropy(net2(x, cell_weights=weights), y)
    total = ce + hook2.resource_lambda * hook2.resource_penalty(ctx2)
    grads = torch.autograd.grad(total, net2.arch_parameters())
    assert sum(g.norm() ** 2 for g in grads) ** 0.5 < 10  # the α clip does not act
    for a0, g, a1 in zip(start, grads, after, strict=True):
        assert torch.allclose(a1, a0 - 0.1 * g, rtol=0, atol=1e-12)
        assert (a1 - a0).abs().max() > 1e-6


# ----------------------------------------------------------------------------------- DSNAS


def test_dsnas_one_hot_sample_frequencies_follow_softmax_alpha() -> None:
    from nasrepro.methods.dsnas import one_hot_sample

    alpha = torch.tensor([[0.5, -1.0, 2.0]], dtype=D).expand(20_000, 3)
    torch.manual_seed(0)
    z = one_hot_sample(alpha)
    assert torch.equal(z.sum(-1), torch.ones(20_000, dtype=D))
    freq = z.mean(0)
    assert torch.allclose(freq, torch.softmax(alpha[0], -1), atol=0.015)


def test_dsnas_low_bias_gradient_is_score_function_times_reward() -> None:
    from nasrepro.methods.dsnas import low_bias_alpha_grad

    torch.manual_seed(0)
    alpha = torch.randn(14, 8, dtype=D, requires_grad=True)
    z = torch.nn.functional.one_hot(torch.randint(0, 8, (14,)), 8).to(D)
    reward = torch.randn(14, dtype=D)
    log_p = (torch.log((z * torch.softmax(alpha, -1)).sum(-1)) * reward).sum()
    (want,) = torch.autograd.grad(log_p, alpha)
    assert torch.allclose(low_bias_alpha_grad(alpha, z, reward), want, rtol=0, atol=1e-14)


def test_dsnas_step_reward_is_the_chosen_ops_gradient_and_unsampled_weights_decay() -> None:
    """One step: α moves by −lr·(z − softmax α)·∂CE/∂z_k, the reward read from the one-hot
    weights shared by the cells of a type; an op not sampled anywhere still gets weight decay
    (its gradient zeroed, not dropped)."""
    torch.manual_seed(3)
    net = build_space("darts").build_supernet(10, c=4, layers=3).double()
    hook = build_hooks(["dsnas"], {"dsnas": {"drop_path_prob": 0.0}})[0]
    x = torch.randn(4, 3, 8, 8, dtype=D)
    y = torch.tensor([0, 1, 2, 3])
    settings = _settings(arch_lr=0.1, momentum=0.0)
    ctx = SearchContext(net, settings, [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    hook.on_build(ctx)
    start = [a.detach().clone() for a in net.arch_parameters()]
    ctx.weight_batch = (x, y)
    torch.manual_seed(4)
    weights = hook.weight_step_cell_weights(ctx, net.cell_weights())
    z = [w.detach().clone() for w in hook._z]
    ce = nn.functional.cross_entropy(net(x, cell_weights=weights), y)
    grads = torch.autograd.grad(ce, hook._z)
    rewards = [(g * zz).sum(-1) for g, zz in zip(grads, z, strict=True)]
    # replay through the engine from the same state and draw
    net2 = build_space("darts").build_supernet(10, c=4, layers=3).double()
    net2.load_state_dict(net.state_dict())
    with torch.no_grad():
        for a, s in zip(net2.arch_parameters(), start, strict=True):
            a.copy_(s)
    hook2 = build_hooks(["dsnas"], {"dsnas": {"drop_path_prob": 0.0}})[0]
    hook2.init_alpha = lambda n: None
    ctx2 = SearchContext(net2, settings, [hook2], torch.device("cpu"), nn.CrossEntropyLoss())
    edge = net2.cells[0].edges[0]  # the one normal cell (3 cells: reductions at 1 and 2)
    name = next(n for n in ("sep_conv_3x3", "sep_conv_5x5") if edge.op_names.index(n) != int(z[0][0].argmax()))
    unsampled = edge.ops[edge.op_names.index(name)]
    before = [p.detach().clone() for p in unsampled.parameters()]
    torch.manual_seed(4)
    run_search(ctx2, [(x, y, x, y)], steps_per_epoch=1)
    for a0, a1, zz, r in zip(start, net2.arch_parameters(), z, rewards, strict=True):
        want = a0 - 0.1 * (zz - torch.softmax(a0, -1)) * r.unsqueeze(-1)
        assert torch.allclose(a1.detach(), want, rtol=0, atol=1e-12)
    # SGD with weight decay on a zero gradient, no momentum: p ← p·(1 − lr·wd)
    assert before
    for p0, p1 in zip(before, unsampled.parameters(), strict=True):
        assert torch.allclose(p1.detach(), p0 * (1 - settings.lr * settings.weight_decay), atol=1e-15)


@pytest.mark.parametrize(
    "method, args, message",
    [
        ("snas_darts", {"temp": -1.0}, "method 'snas_darts': temp must be a number in"),
        ("snas_darts", {"temp": 0.5, "temp_min": 0.6}, "temp_min 0.6 exceeds temp 0.5"),
        ("dsnas", {"drop_path_prob": 1.0}, "method 'dsnas': drop_path_prob must be a number in"),
    ],
)
def test_bad_arguments_name_the_method_and_argument(method: str, args: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_hooks([method], {method: args})


@pytest.mark.parametrize("method", ["snas_darts", "dsnas"])
def test_the_darts_space_methods_refuse_nb201(method: str) -> None:
    net = build_space("nb201").build_supernet(10, c=4, n=1)
    hook = build_hooks([method], {})[0]
    ctx = SearchContext(net, _settings(), [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=f"method '{method}' needs the DARTS space"):
        hook.on_build(ctx)
