"""Multi-seed vmapped search: one step for S seeds equals S separate engine steps."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nasrepro import rounding
from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
from nasrepro.search.multiseed import (
    MultiSeedSearch,
    _clip_per_seed,
    build_nets,
    nb201_darts_settings,
    time_multiseed,
)

SPACE_ARGS = {"c": 4, "n": 1}


def _engine_step(net, settings, x_w, y_w, x_a, y_a, steps: int = 1) -> dict[str, torch.Tensor]:
    ctx = SearchContext(
        supernet=net.train(),
        settings=settings,
        hooks=[],
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )
    build_optimizers(ctx)
    for _ in range(steps):
        if settings.resolved_alpha_step() == "before_weights":
            arch_step(ctx, x_w, y_w, x_a, y_a)
            weight_step(ctx, x_w, y_w)
        else:
            weight_step(ctx, x_w, y_w)
            arch_step(ctx, x_w, y_w, x_a, y_a)
    return {k: v.detach() for k, v in net.state_dict().items()}


@pytest.mark.parametrize(
    "alpha_step,track,impl,with_alpha",
    [
        ("after_weights", False, "default", True),
        ("after_weights", True, "default", True),
        ("before_weights", False, "default", True),
        ("before_weights", True, "default", True),
        ("after_weights", False, "default", False),  # the weights-only clip norm
        ("after_weights", False, "foreach", True),  # the optimizers a CUDA graph captures
        ("after_weights", True, "fused", True),
    ],
)
def test_vmapped_step_equals_separate_engine_steps(alpha_step, track, impl, with_alpha):
    # Clip at 0.5 so that clipping is active and its coefficient differs between the seeds:
    # a clip over all seeds together would fail this test. Two steps: with α in the clip norm
    # (nb201_darts_settings, as AutoDL's loop) the second weight step counts what the first α
    # step left.
    settings = nb201_darts_settings().model_copy(
        update={"grad_clip": 0.5, "alpha_step": alpha_step, "clip_includes_alpha": with_alpha}
    )
    space_args = {**SPACE_ARGS, "track_running_stats": track}
    nets = build_nets("nb201", space_args, [0, 1], num_classes=10)
    separate = [copy.deepcopy(n) for n in nets]
    gen = torch.Generator().manual_seed(7)
    x_w, x_a = (torch.randn(2, 4, 3, 16, 16, generator=gen, dtype=torch.float64) for _ in range(2))
    y_w, y_a = (torch.randint(0, 10, (2, 4), generator=gen) for _ in range(2))

    multi = MultiSeedSearch([n.double() for n in nets], settings, optimizer_impl=impl)
    multi.step(x_w, y_w, x_a, y_a, check=impl == "default")
    train, valid = multi.step(x_w, y_w, x_a, y_a, check=impl == "default")
    assert train.shape == valid.shape == (2,) and bool(torch.isfinite(train).all())
    n = rounding.longest_reduction(separate[0], 4, 16)
    depth = 2 * rounding.chained_reductions(separate[0])  # two steps chained
    for s, net in enumerate(separate):
        start = {k: v.clone() for k, v in net.state_dict().items()}

        def run(delta, s=s, net=net):
            # seed s alone through the engine, in float64; δ: the condition probe
            net = copy.deepcopy(net).double()
            xs = [x_w[s].clone(), x_a[s].clone()]
            if delta:
                rounding.perturb([*net.parameters(), *xs], delta, seed=5)
            want = _engine_step(net, settings, xs[0], y_w[s], xs[1], y_a[s], steps=2)
            return [v.double() for v in want.values()]

        # equal to the separate run up to float64 rounding (bounds of nasrepro/rounding.py)
        want, tols = rounding.probe_tolerances(run, n, depth, torch.float64)
        keys = list(net.state_dict())
        got = multi.seed_state(s)
        assert set(got) == set(keys)
        diffs = rounding.relative_diffs(want, [got[k] for k in keys])
        bad = [(k, d, t) for k, d, t in zip(keys, diffs, tols, strict=True) if d > t]
        assert not bad, (s, bad)
        # The step moved α, the weights and (for tracked BNs) the running statistics.
        final = dict(zip(keys, want, strict=True))
        assert not torch.equal(final["arch_alpha"], start["arch_alpha"].double())
        assert not torch.equal(
            final["body.stem.1.running_mean"], start["body.stem.1.running_mean"].double()
        )


def test_clip_is_per_seed():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # seed 0 norm 5, seed 1 norm 0.5
    p = torch.zeros_like(g, requires_grad=True)
    p.grad = g.clone()
    total = _clip_per_seed([p], 1.0)
    torch.testing.assert_close(total, torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(p.grad[0], g[0] / (5.0 + 1e-6))
    torch.testing.assert_close(p.grad[1], g[1])  # under the limit: unchanged


def test_second_order_is_refused():
    settings = nb201_darts_settings().model_copy(update={"order": 2})
    with pytest.raises(ValueError, match="first-order"):
        MultiSeedSearch(build_nets("nb201", SPACE_ARGS, [0], 10), settings)


def test_time_multiseed_reports_both_paths():
    row = time_multiseed(SPACE_ARGS, 2, batch=4, image_size=16, device="cpu", steps=1, warmup=0)
    assert row["seeds"] == 2
    for key in ("step_ms", "images_per_s", "sequential_step_ms", "sequential_images_per_s"):
        assert row[key] > 0


def test_evaluate_is_the_eval_mode_forward_of_each_seed():
    settings = nb201_darts_settings()
    nets = build_nets("nb201", {**SPACE_ARGS, "track_running_stats": True}, [0, 1], 10)
    nets = [n.double() for n in nets]
    multi = MultiSeedSearch([copy.deepcopy(n) for n in nets], settings)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, 16, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (2, 4), generator=gen)
    multi.step(x, y, x, y)  # move the running statistics off their init
    got = multi.evaluate(x, y)
    for s in range(2):
        net = nets[s]
        net.load_state_dict(multi.seed_state(s))
        net.eval()
        with torch.no_grad():
            want = nn.functional.cross_entropy(net(x[s]), y[s])
        # one loss, same ops in the same order per seed; the bound is float64 rounding of
        # the forward's longest chain (nasrepro/rounding.py γ_nD), κ ≈ 1 for a mean loss
        n = rounding.longest_reduction(net, 4, 16)
        bound = 2 * rounding.gamma(n * rounding.chained_reductions(net), torch.float64)
        assert abs(got[s].item() - want.item()) <= bound * abs(want.item())
    assert multi.template.training  # back in train mode


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graphed_packed_step_equals_eager_packed_step():
    """4 seeds packed, fused optimizers, one CUDA graph: in float64 (no TF32 question), three
    replays equal three eager packed steps within the rounding bounds of nasrepro/rounding.py."""
    from nasrepro.search.graphed import GraphedMultiSeedStep

    settings = nb201_darts_settings()
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(7)
    batches = [
        (
            torch.randn(4, 4, 3, 16, 16, generator=gen, dtype=torch.float64).to(dev),
            torch.randint(0, 10, (4, 4), generator=gen).to(dev),
        )
        for _ in range(6)
    ]
    nets = build_nets("nb201", {**SPACE_ARGS, "fused": True}, [0, 1, 2, 3], 10)

    def run(delta: float, graph: bool = False) -> list[torch.Tensor]:
        copies = [copy.deepcopy(n).to(dev, torch.float64) for n in nets]
        if delta:
            rounding.perturb([p for n in copies for p in n.parameters()], delta, seed=5)
        multi = MultiSeedSearch(copies, settings, optimizer_impl="fused")
        step = GraphedMultiSeedStep(multi, *batches[0], *batches[1]) if graph else multi.step
        for i in range(3):
            step(*batches[2 * i], *batches[2 * i + 1])
        return [t.detach().cpu() for t in multi.params.values()]

    n = rounding.longest_reduction(nets[0], 4, 16)
    depth = 3 * rounding.chained_reductions(nets[0])  # three steps chained
    want, tols = rounding.probe_tolerances(run, n, depth, torch.float64)
    diffs = rounding.relative_diffs(want, run(0.0, graph=True))
    assert all(d <= t for d, t in zip(diffs, tols, strict=True)), (diffs, tols)
