"""GDAS, SETN and RSPS against their definitions (tests/oracle/test_xautodl_sampled.py compares
them with AutoDL-Projects step by step): the Gumbel hard sample and its straight-through
gradient, one computed op per edge, τ's schedule, SETN's candidates by α log-probability,
the best-of-n choice on validation batches, and one SETN trial end to end at the smoke
budget of a real suite (digits, scored in the embedded NB201 table: not a result)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import nasrepro.api as nr
from nasrepro.datasets.search import without_augmentation
from nasrepro.methods.sampled_paths import gumbel_hard, tau_schedule, uniform_path
from nasrepro.select.sampled_best import alpha_top, sampled_best
from nasrepro.spaces import build_space
from nasrepro.spaces.mixed import SampledOps
from nasrepro.spaces.nb201 import OPS, Nb201Supernet

ROOT = Path(__file__).resolve().parents[1]


def test_gumbel_hard_sample_and_its_straight_through_gradient():
    alpha = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    sample = gumbel_hard(alpha, 0.5)
    torch.manual_seed(3)
    g = -torch.empty_like(alpha).exponential_().log()
    probs = torch.softmax((torch.log_softmax(alpha, 1) + g) / 0.5, 1)
    assert torch.equal(sample.index, probs.argmax(1))
    one_hot = nn.functional.one_hot(probs.argmax(1), 5).double()
    assert torch.allclose(sample.weights, one_hot, atol=1e-15)
    c = torch.randn(6, 5, dtype=torch.float64)
    (got,) = torch.autograd.grad((c * sample.weights).sum(), alpha)
    (want,) = torch.autograd.grad((c * probs).sum(), alpha)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_sampled_edge_computes_one_op():
    ops = [nn.Identity(), nn.Tanh(), nn.Sigmoid()]
    x = torch.randn(2, 3, dtype=torch.float64)
    assert torch.equal(SampledOps(torch.tensor([1]))[0].mix(x, ops), torch.tanh(x))
    w = torch.tensor([[0.0, 0.9, 0.0]], dtype=torch.float64, requires_grad=True)
    out = SampledOps(torch.tensor([1]), w)[0].mix(x, ops)
    assert torch.equal(out, 0.0 + 0.9 * torch.tanh(x) + 0.0)
    (grad,) = torch.autograd.grad(out.sum(), w)
    # the other ops' weights enter as scalars: ∂/∂w_j = Σ 1 (GDAS' forward_gdas)
    assert grad[0, 0] == grad[0, 2] == x.numel()
    assert grad[0, 1] == pytest.approx(float(torch.tanh(x).sum()))


def test_tau_schedule_and_uniform_paths():
    assert [tau_schedule(10, 0.1, e, 3) for e in range(3)] == pytest.approx([10, 5.05, 0.1])
    import random

    random.seed(4)
    path = uniform_path(6, 5)
    random.seed(4)
    assert path.index.tolist() == [random.choice(range(5)) for _ in range(6)]


def test_alpha_top_orders_cells_by_log_probability_stably():
    alpha = torch.tensor([[1.0, 0.0, 2.0], [0.5, 0.5, -1.0]])
    logp = torch.log_softmax(alpha, 1)
    cells = list(itertools.product(range(3), repeat=2))
    want = sorted(cells, key=lambda c: -float(logp[0, c[0]] + logp[1, c[1]]))
    assert alpha_top(alpha, 9) == want
    assert alpha_top(alpha, 4) == want[:4]
    # ties keep the enumeration order (Structure.gen_all: first edge slowest)
    assert alpha_top(torch.zeros(2, 3), 5) == cells[:5]


def test_without_augmentation_keeps_only_the_deterministic_steps():
    from torchvision import transforms as T

    data = SimpleNamespace(
        transform=T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(8, 1), T.ToTensor()])
    )
    out = without_augmentation(data)
    assert [type(t).__name__ for t in out.transform.transforms] == ["ToTensor"]
    assert len(data.transform.transforms) == 3  # the original is untouched


class _Passes:
    """A stand-in for SearchData: its α split as fixed batches, counting the passes."""

    def __init__(self, batches):
        self.batches, self.passes = batches, []
        self.loader = self

    def arch_pass(self, epoch, *, augment, shuffle, batch_size):
        assert augment is False and shuffle is True
        self.passes.append((epoch, batch_size))
        return self.batches


def test_sampled_best_scores_each_candidate_on_the_next_batch_and_keeps_the_first_best():
    torch.manual_seed(0)
    net = Nb201Supernet(3, c=2, n=1).double()
    net.train()
    g = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(5, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (5,), generator=g))
        for _ in range(2)
    ]
    data = _Passes(batches)
    ctx = SimpleNamespace(state={}, epoch=0)
    space = build_space("nb201")
    genotype = sampled_best(space, net, ctx=ctx, data=data, candidates="alpha_top", n=5, batch_size=7)
    assert net.training  # scored in eval mode, restored after
    assert len(data.passes) == 3 and data.passes[0][1] == 7  # 5 candidates on 2-batch passes
    cells = alpha_top(net.arch_alpha, 5)
    accs = []
    net.eval()
    with torch.no_grad():
        for i, cell in enumerate(cells):
            x, y = batches[i % 2]
            logits = net(x, cell_weights=[SampledOps(torch.tensor(cell))] * net.num_search_cells)
            accs.append(float((logits.argmax(1) == y).double().mean()) * 100)
    best = accs.index(max(accs))
    assert genotype.ops == tuple(OPS[k] for k in cells[best])
    assert ctx.state["selection"]["best_batch_acc"] == accs[best]


def test_setn_trial_at_the_smoke_budget_of_a_real_suite():
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import execute_trial

    (trial,) = [
        t
        for t in nr.plan(str(ROOT / "suites" / "rf_darts.yaml"), budget="smoke")
        if t.experiment == "nb201-setn"
    ]
    rec = execute_trial(
        trial, tracker=NullTracker(), experiment_id="x", parent_run_id="p", data_root=None,
        device="cpu",
    )  # fmt: skip
    sel = rec["search"]["selection"]
    assert sel["selector"] == "sampled_best" and sel["n"] == 4 and sel["batch_size"] == 32
    assert rec["genotype"] == sel["genotype"] and rec["config"]["methods"] == ["setn"]
    assert math.isfinite(rec["metrics"]["cifar10"]["test_acc"]) and rec["budget"] == "smoke"


def test_randomnas_darts_cells_are_uniform_over_ops_and_distinct_input_pairs():
    """DartsWrapper.sample_arch's definition, on counts: each node's ops uniform over all 8
    (none included), its two inputs distinct and every ordered pair of the i + 2 earlier states
    equally likely; the one-hot weights put exactly those (input, op) pairs on the edges."""
    import numpy as np

    from nasrepro.methods.sampled_paths import darts_arch, darts_arch_weights

    np.random.seed(0)
    draws = 4000
    ops = np.zeros(8)
    pairs = [dict() for _ in range(4)]
    for _ in range(draws):
        arch = darts_arch(8)
        for cell in arch:
            assert len(cell) == 8
            for i in range(4):
                (j0, k0), (j1, k1) = cell[2 * i : 2 * i + 2]
                assert j0 != j1 and 0 <= j0 < i + 2 and 0 <= j1 < i + 2
                pairs[i][(j0, j1)] = pairs[i].get((j0, j1), 0) + 1
                ops[[k0, k1]] += 1
    n_ops = draws * 2 * 8
    assert abs(ops / n_ops - 1 / 8).max() < 0.01  # ~5 standard errors of 0.0018
    for i in range(4):
        n_pairs = (i + 2) * (i + 1)
        assert len(pairs[i]) == n_pairs  # every ordered pair of distinct inputs occurs
        freq = np.array(list(pairs[i].values())) / (2 * draws)
        assert abs(freq - 1 / n_pairs).max() < 5 * math.sqrt(1 / n_pairs / (2 * draws))
    like = torch.zeros(1, dtype=torch.float64)
    normal, reduce = darts_arch_weights(arch, 8, like)
    assert normal.shape == (14, 8) and normal.dtype == torch.float64
    for w, cell in ((normal, arch[0]), (reduce, arch[1])):
        starts = [0, 2, 5, 9]
        hot = {(int(e), int(k)) for e, k in w.nonzero()}
        assert hot == {(starts[t // 2] + j, k) for t, (j, k) in enumerate(cell)}
        assert w.sum() == 8


def test_randomnas_trial_at_the_smoke_budget_of_a_real_suite():
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import execute_trial

    (trial,) = [
        t
        for t in nr.plan(str(ROOT / "suites" / "rf_darts.yaml"), budget="smoke")
        if t.experiment == "darts-c10-randomnas"
    ]
    rec = execute_trial(
        trial, tracker=NullTracker(), experiment_id="x", parent_run_id="p", data_root=None,
        device="cpu",
    )  # fmt: skip
    sel = rec["search"]["selection"]
    assert sel["selector"] == "sampled_best" and sel["n"] == 4 and sel["batch_size"] == 32
    assert sel["batches"] == 10 and sel["finalists"] == 10 and sel["augment"] is True
    assert rec["genotype"] == sel["genotype"] and rec["config"]["methods"] == ["rsps"]
    assert math.isfinite(rec["metrics"]["cifar10"]["test_err"]) and rec["budget"] == "smoke"
