"""FairDARTS against its definitions: the zero-one loss's gradient against finite
differences, the sigmoid mixing weights, and the threshold genotype rule on a hand-built case
(xiaomi-automl/FairDARTS separate_loss.py, model_search.py, utils.py `parse`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.methods.fair_darts import zero_one_loss
from nasrepro.search.engine import SearchContext
from nasrepro.select.fair_darts import fair_darts, threshold_cell
from nasrepro.spaces import build_space
from nasrepro.spaces.darts import CONCAT
from nasrepro.spaces.darts_ops import PRIMITIVES_NO_NONE
from nasrepro.suite import SearchSettings

OPS = (PRIMITIVES_NO_NONE,) * 14


def test_zero_one_loss_value_and_gradient_against_finite_differences() -> None:
    gen = torch.Generator().manual_seed(0)
    alphas = [torch.randn(14, 7, generator=gen, dtype=torch.float64) for _ in range(2)]
    flat = torch.cat([a.reshape(-1) for a in alphas])
    expected = -((torch.sigmoid(flat) - 0.5) ** 2).mean()
    assert float(zero_one_loss(alphas)) == pytest.approx(float(expected), rel=1e-14)
    leaves = [a.clone().requires_grad_() for a in alphas]
    grads = torch.autograd.grad(zero_one_loss(leaves), leaves)
    # d/dα of −mean((σ−½)²) = −2(σ−½)σ(1−σ)/n
    s = torch.sigmoid(alphas[0])
    closed = -2 * (s - 0.5) * s * (1 - s) / flat.numel()
    torch.testing.assert_close(grads[0], closed, rtol=1e-12, atol=1e-15)
    eps = 1e-6
    for t, i, j in ((0, 0, 0), (0, 5, 3), (1, 13, 6)):
        plus = [a.clone() for a in alphas]
        minus = [a.clone() for a in alphas]
        plus[t][i, j] += eps
        minus[t][i, j] -= eps
        fd = (zero_one_loss(plus) - zero_one_loss(minus)) / (2 * eps)
        assert float(grads[t][i, j]) == pytest.approx(float(fd), rel=1e-6, abs=1e-12)
    # the term pushes σ away from ½: its gradient step raises |σ − ½|
    assert float(zero_one_loss([torch.zeros(2, 2)])) == 0.0
    assert float(zero_one_loss([torch.full((2, 2), 20.0)])) == pytest.approx(-0.25)


def _ctx(weight: float = 10.0):
    space = build_space("darts")
    net = space.build_supernet(10, c=2, layers=3, include_none=False).double()
    settings = SearchSettings(epochs=1, batch_size=2, lr=0.1, lr_min=0.0, momentum=0.9,
                              weight_decay=0.0, arch_lr=0.1, arch_weight_decay=0.0)  # fmt: skip
    (hook,) = build_hooks(["fair_darts"], {"fair_darts": {"zero_one_weight": weight}})
    return space, net, hook, SearchContext(net, settings, [hook], torch.device("cpu"),
                                           nn.CrossEntropyLoss())  # fmt: skip


def test_hook_mixes_with_sigmoid_and_adds_the_weighted_term() -> None:
    space, net, hook, ctx = _ctx(10.0)
    hook.on_build(ctx)
    assert all(float(a.detach().abs().max()) == 0.0 for a in net.arch_parameters())  # α = 0
    with torch.no_grad():
        net.alphas_normal.copy_(torch.randn(14, 7, dtype=torch.float64))
    w = hook.weight_step_cell_weights(ctx, net.cell_weights())
    assert len(w) == 3
    torch.testing.assert_close(w[0], torch.sigmoid(net.alphas_normal))
    torch.testing.assert_close(w[1], torch.sigmoid(net.alphas_reduce))  # cell 1 is a reduction cell
    assert float(w[0].sum(-1).std()) > 0  # rows are not normalized
    loss = torch.tensor(1.5, dtype=torch.float64)
    out = hook.arch_loss(ctx, loss)
    assert float(out) == pytest.approx(1.5 + 10.0 * float(zero_one_loss(net.arch_parameters())))


def test_hook_rejects_bad_arguments_and_second_order() -> None:
    with pytest.raises(ValueError, match="zero_one_weight"):
        build_hooks(["fair_darts"], {"fair_darts": {"zero_one_weight": -1.0}})
    space, net, hook, ctx = _ctx()
    ctx.settings = ctx.settings.model_copy(update={"order": 2})
    with pytest.raises(ValueError, match="first order"):
        hook.on_build(ctx)


def _sig(entries: dict[tuple[int, int], float]) -> list[list[float]]:
    rows = [[0.1] * 7 for _ in range(14)]
    for (e, k), v in entries.items():
        rows[e][k] = v
    return rows


def test_threshold_rule_on_a_hand_computed_cell() -> None:
    # ops: 0 max_pool, 1 avg_pool, 2 skip, 3 sep3, 4 sep5, 5 dil3, 6 dil5.
    # node 2 (edges 0,1): both above 0.85 -> sep3 from 0, dil5 from 1.
    # node 3 (edges 2,3,4): ranked edges 4 (0.9) and 2 (0.6): only edge 4 (input 2) kept.
    # node 4 (edges 5..8): all at most 0.5 -> no input, left out of the concat.
    # node 5 (edges 9..13): edge 12 (input 3, 0.95) and edge 13 (input 4, 0.99): input 4 is
    # the empty node 4, skipped as DCOCell does; input 3 kept.
    sig = _sig({(0, 3): 0.9, (1, 6): 0.86, (1, 5): 0.3, (2, 2): 0.6, (4, 4): 0.9,
                (5, 1): 0.5, (12, 0): 0.95, (13, 2): 0.99})  # fmt: skip
    gene, concat = threshold_cell(sig, OPS, 0.85)
    assert gene == (
        ("sep_conv_3x3", 0), ("dil_conv_5x5", 1),
        ("sep_conv_5x5", 2), ("none", 0),
        ("none", 0), ("none", 1),
        ("none", 4), ("max_pool_3x3", 3),
    )  # fmt: skip
    assert concat == (2, 3, 5)
    # 0.85 itself is kept (`>=`); just below it is not
    assert threshold_cell(_sig({(0, 3): 0.85, (1, 3): 0.8499}), OPS, 0.85)[0][:2] == (
        ("sep_conv_3x3", 0), ("none", 1))  # fmt: skip
    # a node whose only kept inputs come from empty nodes cannot be built
    with pytest.raises(ValueError, match="without inputs"):
        threshold_cell(_sig({(0, 3): 0.9, (8, 3): 0.9}), OPS, 0.85)  # node 4 from empty 3
    # all σ high: the DARTS rule (two edges, best op each)
    full, concat = threshold_cell(_sig({(e, 3): 0.9 + 0.001 * e for e in range(14)}), OPS, 0.85)
    assert concat == CONCAT and all(op == "sep_conv_3x3" for op, _ in full)


def test_selector_genotype_builds_and_needs_the_space_without_none() -> None:
    space, net, hook, ctx = _ctx()
    with torch.no_grad():
        net.alphas_normal.fill_(-3.0)
        net.alphas_normal[0, 3] = net.alphas_normal[1, 4] = 3.0  # node 2 only
        net.alphas_reduce.fill_(3.0)
    g = fair_darts(space, net)
    assert g.normal_concat == (2,) and g.reduce_concat == CONCAT
    # the retraining side's check (the default 8-op space) accepts the `none` fillers
    again = build_space("darts").parse_genotype(g.to_str())
    assert again == g
    model = build_space("darts").build_network(again, 10, c=2, layers=3)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)
    with_none = build_space("darts").build_supernet(10, c=2, layers=3)
    with pytest.raises(ValueError, match="include_none: false"):
        fair_darts(space, with_none)
