"""Fused NB201 mixed ops (space arg fused) and the CUDA-graphed step equal the plain path."""

import copy
import math

import pytest
import torch
from torch import nn

from nasrepro import rounding
from nasrepro.bench import BenchCase, build_step, check_switch, max_rel_diff
from nasrepro.datasets import build_search_data
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.search.graphed import GraphedStepError, graph_first_order_step
from nasrepro.spaces import build_space
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.spaces.nb201_fused import FusedSearchCell
from nasrepro.suite import SearchSettings

CE = nn.CrossEntropyLoss()


def _pair(**args):
    """(plain, fused) supernets with the same parameters; the fused state_dict is the same."""
    torch.manual_seed(0)
    plain = Nb201Supernet(5, **args)
    with torch.no_grad():
        plain.arch_alpha.normal_(0, 0.5)  # α away from uniform, so the mixing matters
    fused = Nb201Supernet(5, fused=True, **args)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    fused.load_state_dict(plain.state_dict())
    return plain, fused


def _forward_backward(net, x, y, mode, track, delta=0.0):
    """Output, every gradient and every buffer of one forward/backward, in float64; δ > 0
    perturbs the weights and input first (the condition probe of nasrepro/rounding.py)."""
    net = copy.deepcopy(net).double()
    net.zero_grad(set_to_none=True)
    x = x.double()
    if delta:
        rounding.perturb([*net.parameters(), x], delta, seed=5)
    if track:  # move the running stats away from their init
        net.train()
        net(x + 1.0)
    getattr(net, mode)()
    out = net(x)
    CE(out, y).backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    params = {n for n, _ in net.named_parameters()}
    buffers = [b.double() for n, b in net.state_dict().items() if n not in params]
    return [out.detach(), *grads, *buffers]


@pytest.mark.parametrize("c,n", [(4, 1), (8, 2)])
@pytest.mark.parametrize("track", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fused_equals_plain(c, n, track, affine, mode):
    plain, fused = _pair(c=c, n=n, track_running_stats=track, affine=affine)
    assert any(isinstance(m, FusedSearchCell) for m in fused.modules())
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, 8, 8, generator=gen), torch.randint(0, 5, (6,), generator=gen)
    # same gradients exist (None where the plain path has none); on copies, so that the
    # fp32 pass does not move the running statistics compared below
    a, b = copy.deepcopy(plain), copy.deepcopy(fused)
    for net in (a, b):
        CE(net(x), y).backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert (pa.grad is None) == (pb.grad is None), name
    assert a.arch_alpha.grad.abs().max() > 0
    # output, gradients and buffers (running statistics) equal up to float64 rounding
    run = lambda delta: _forward_backward(plain, x, y, mode, track, delta)  # noqa: E731
    first = run(0.0)
    n_grads = sum(1 for p in a.parameters() if p.grad is not None)
    is_grad = [0 < i <= n_grads for i in range(len(first))]
    floors = rounding.share_floors(first, is_grad)  # gradients that cancel to 0 (BN biases)
    want, tols = rounding.probe_tolerances(
        run,
        rounding.longest_reduction(plain, 6, 8),
        rounding.chained_reductions(plain),
        torch.float64,
        floors,
    )
    got = _forward_backward(fused, x, y, mode, track)
    diffs = rounding.relative_diffs(want, got, floors)
    assert all(d <= t for d, t in zip(diffs, tols, strict=True)), (diffs, tols)
    assert max(tols) < 1e-6  # the bound is far below any real difference


def test_fused_falls_back_for_extras_and_partial_channels():
    plain, fused = _pair(c=4, n=1)
    for net in (plain, fused):  # a DARTS- style extra term on every edge
        for mixed in net.mixed_ops():
            mixed.extras.append(nn.Identity())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(plain(x), fused(x))  # the plain path, bit for bit
    pc = Nb201Supernet(5, c=4, n=1, partial_channels=2, fused=True)
    assert not any(cell._static_ok for cell in pc.modules() if isinstance(cell, FusedSearchCell))
    pc(x)


@pytest.mark.parametrize("track", [False, True])
def test_fused_engine_step_equals_plain(track):
    case = BenchCase("nb201", "darts-1st", 4, 8, {"c": 4, "n": 1, "track_running_stats": track})
    check = check_switch(case, "fused", torch.device("cpu"), torch.float64)
    assert check.worst <= 1.0, (check.rel_diffs, check.tolerances)
    assert check.plain_moved > 1e-4  # the step moved α and the weights


class _Float64Loader:
    """The search loader with images in float64 (labels unchanged)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        for x_w, y_w, x_a, y_a in self.loader:
            yield x_w.double(), y_w, x_a.double(), y_a


def _search(fused: bool, delta: float = 0.0, channels_last: bool = False) -> list[torch.Tensor]:
    """Per-epoch losses and the final α of a 2-epoch float64 search."""
    seed_everything(0, deterministic=True)
    data = build_search_data(
        "synthetic", root=None, batch_size=8, seed=0, image_size=8,
        options={"n": 48, "num_classes": 3},
    )  # fmt: skip
    net = build_space("nb201").build_supernet(data.num_classes, c=4, n=1, fused=fused).double()
    if delta:
        rounding.perturb(list(net.parameters()), delta, seed=5)
    settings = SearchSettings(
        epochs=2, batch_size=8, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=True,
        weight_decay=5e-4, arch_lr=3e-4, arch_weight_decay=1e-3, steps_per_epoch=2,
        image_size=8,
    )  # fmt: skip
    ctx = SearchContext(
        net, settings, [], torch.device("cpu"), nn.CrossEntropyLoss(), channels_last=channels_last
    )
    history = run_search(ctx, _Float64Loader(data.loader), data.steps_per_epoch)
    assert len(history) == 2
    losses = torch.tensor([[h.train_loss, h.valid_loss] for h in history], dtype=torch.float64)
    return [losses, net.arch_alpha.detach().clone()]


@pytest.mark.parametrize("switch", ["fused", "channels_last"])
def test_fast_search_matches_plain(switch):
    # a whole run_search (schedule, clipping, α after weights) through the fused cells
    net = build_space("nb201").build_supernet(3, c=4, n=1)
    want, tols = rounding.probe_tolerances(
        lambda delta: _search(False, delta),
        rounding.longest_reduction(net, 8, 8),
        rounding.chained_reductions(net) * 4,  # 4 steps chained
        torch.float64,
    )
    got = _search(True) if switch == "fused" else _search(False, channels_last=True)
    diffs = rounding.relative_diffs(want, got)
    assert all(d <= t for d, t in zip(diffs, tols, strict=True)), (diffs, tols)


def _ctx(device: str, fused: bool = False):
    case = BenchCase("nb201", "darts-1st", 8, 16, {"c": 4, "n": 1, "fused": fused})
    step, ctx = build_step(case, "plain", torch.device(device))
    return step, ctx


def test_graphed_step_needs_cuda_and_no_hooks():
    _, ctx = _ctx("cpu")
    x, y = torch.zeros(8, 3, 16, 16), torch.zeros(8, dtype=torch.long)
    with pytest.raises(GraphedStepError, match="CUDA"):
        graph_first_order_step(ctx, x, y, x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("fused", [False, True])
def test_graphed_step_equals_eager_after_three_steps(fused, monkeypatch):
    # cuDNN's default TF32 convolutions round differently per algorithm; and Adam's first
    # steps (≈ lr·sign(g)) amplify rounding of small α gradients, so the bound is loose.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    _, ctx_e = _ctx("cuda", fused)
    _, ctx_g = _ctx("cuda", fused)
    gen = torch.Generator().manual_seed(3)
    batches = [
        [torch.randn(8, 3, 16, 16, generator=gen).cuda(), torch.randint(0, 10, (8,)).cuda()]
        for _ in range(6)
    ]
    graphed = graph_first_order_step(ctx_g, *batches[0], *batches[1])
    from nasrepro.search.engine import arch_step, weight_step

    for i in range(3):
        xw, yw, xa, ya = *batches[2 * i], *batches[2 * i + 1]
        loss_e, _ = weight_step(ctx_e, xw, yw)  # the engine's 1st-order order
        arch_step(ctx_e, xw, yw, xa, ya)
        out = graphed(xw, yw, xa, ya)
        assert math.isfinite(out.train_loss.item())
        assert math.isclose(out.train_loss.item(), loss_e, rel_tol=1e-3)
    if fused is False:  # a new epoch lr re-captures
        for opt in (ctx_e.w_optimizer, ctx_g.w_optimizer):
            opt.param_groups[0]["lr"] = 0.01
        weight_step(ctx_e, *batches[0])
        arch_step(ctx_e, *batches[0], *batches[1])
        graphed(*batches[0], *batches[1])
    nets = (ctx_e.supernet, ctx_g.supernet)
    a, b = ([p.detach().float().cpu() for p in net.parameters()] for net in nets)
    assert max_rel_diff(a, b) < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_engine_search_with_cuda_graphs_matches_eager(monkeypatch):
    """`nasrepro run --fast` on a GPU: run_search replays each step as a graph (and the last,
    short batch eagerly); the epochs' losses match the eager search."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)

    def search(graph: bool) -> list:
        seed_everything(0, False)
        data = build_search_data("synthetic", root=None, batch_size=12, seed=0, image_size=8)
        net = build_space("nb201").build_supernet(4, c=4, n=1, fused=graph)
        settings = SearchSettings(
            epochs=2, batch_size=12, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=True,
            weight_decay=5e-4, arch_lr=3e-4, arch_weight_decay=1e-3, image_size=8,
        )  # fmt: skip
        ctx = SearchContext(
            net, settings, [], torch.device("cuda"), nn.CrossEntropyLoss(), cuda_graph=graph
        )
        return run_search(ctx, data.loader, data.steps_per_epoch)

    eager, graphed = search(False), search(True)
    for a, b in zip(eager, graphed, strict=True):
        assert math.isclose(a.train_loss, b.train_loss, rel_tol=1e-3)
        assert math.isclose(a.valid_loss, b.valid_loss, rel_tol=1e-3)
