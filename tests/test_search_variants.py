"""Search-setting variants against their definitions: lr warm-up and linear decay, α-gradient
clipping, the clip norm over weights and α, and the α warm-up hook."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, run_search
from nasrepro.search.schedule import cosine_lr, epoch_lr, linear_lr
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.suite import SearchSettings

BASE = dict(
    epochs=50, batch_size=4, lr=0.5, lr_min=0.0, momentum=0.9, weight_decay=3e-5,
    arch_lr=6e-3, arch_weight_decay=1e-3,
)  # fmt: skip


def test_pc_darts_imagenet_lr_warmup_then_cosine():
    # PC-DARTS train_search_imagenet.py: lr·(epoch+1)/5 for epoch < 5, then its cosine
    lrs = [epoch_lr("cosine", 0.5, 0.0, e, 50, warmup=5) for e in range(7)]
    assert lrs[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert (
        lrs[5] == cosine_lr(0.5, 0.0, 5, 50) == pytest.approx(0.25 * (1 + math.cos(math.pi / 10)))
    )
    assert epoch_lr("cosine", 0.5, 0.0, 3, 50) == cosine_lr(0.5, 0.0, 3, 50)  # no warm-up


def test_linear_decay_to_zero():
    # Λ-DARTS ImageNet search: 0.5 linearly decayed to 0 over the epochs
    assert [linear_lr(0.5, 0.0, e, 50) for e in (0, 25, 49)] == pytest.approx([0.5, 0.25, 0.01])
    assert epoch_lr("linear", 0.5, 0.0, 10, 50) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="schedule"):
        epoch_lr("step", 0.5, 0.0, 1, 50)
    with pytest.raises(ValueError):
        SearchSettings(**BASE, lr_schedule="step")


def _net_and_batch(seed: int = 0):
    torch.manual_seed(seed)
    net = Nb201Supernet(3, c=2, n=1).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=gen)
    return net, x, y


def _ctx(net, **kw):
    ctx = SearchContext(
        net, SearchSettings(**{**BASE, **kw}), [], torch.device("cpu"), nn.CrossEntropyLoss()
    )
    build_optimizers(ctx)
    return ctx


def test_arch_grad_clip_clips_alpha_before_adam():
    net, x, y = _net_and_batch()
    start = net.arch_alpha.detach().clone()
    loss = nn.functional.cross_entropy(net(x), y)
    (g,) = torch.autograd.grad(loss, net.arch_alpha)
    clip = 0.5 * g.norm().item()  # acts
    want = g * (clip / (g.norm() + 1e-6))  # clip_grad_norm_'s factor
    # reference: Adam on the clipped gradient
    ref = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=6e-3, betas=(0.5, 0.999), weight_decay=1e-3)
    ref.grad = want.clone()
    opt.step()
    ctx = _ctx(net, arch_grad_clip=clip)
    arch_step(ctx, x, y, x, y)
    torch.testing.assert_close(net.arch_alpha.detach(), ref.detach(), rtol=1e-12, atol=1e-15)
    # unclipped (default): a different α
    net2, _, _ = _net_and_batch()
    arch_step(_ctx(net2), x, y, x, y)
    assert not torch.allclose(net2.arch_alpha, net.arch_alpha, rtol=1e-6, atol=0)


def test_clip_norm_over_weights_and_alpha():
    """AutoDL clips network.parameters(): the factor uses ‖(∇w, ∇α)‖, so the weight step is
    smaller than with the norm of ∇w alone whenever clipping acts."""
    from nasrepro.search.engine import weight_step

    steps = {}
    for both in (False, True):
        net, x, y = _net_and_batch()
        w0 = [p.detach().clone() for p in net.weight_parameters()]
        loss = nn.functional.cross_entropy(net(x), y)
        grads = torch.autograd.grad(loss, [*net.weight_parameters(), net.arch_alpha])
        gw = torch.cat([g.reshape(-1) for g in grads[:-1]]).norm()
        ga = grads[-1].norm()
        clip = 0.1 * gw.item()
        ctx = _ctx(net, grad_clip=clip, clip_includes_alpha=both, momentum=0.0, weight_decay=0.0)
        weight_step(ctx, x, y)
        moved = torch.cat(
            [(p - q).reshape(-1) for p, q in zip(net.weight_parameters(), w0, strict=True)]
        )
        steps[both] = moved.norm().item()
        total = torch.sqrt(gw**2 + ga**2) if both else gw
        assert steps[both] == pytest.approx(
            0.5 * gw.item() * clip / (total.item() + 1e-6), rel=1e-9
        )
    assert steps[True] < steps[False]


def test_alpha_warmup_hook_freezes_alpha_for_its_epochs():
    net, x, y = _net_and_batch()
    (hook,) = build_hooks(["alpha_warmup"], {"alpha_warmup": {"epochs": 2}})
    ctx = SearchContext(
        net, SearchSettings(**{**BASE, "epochs": 3, "lr": 0.01}), [hook],
        torch.device("cpu"), nn.CrossEntropyLoss(),
    )  # fmt: skip
    snapshots = []

    def batches():
        return iter([(x, y, x, y)])

    class Loader:
        def __iter__(self):
            return batches()

    history = run_search(
        ctx, Loader(), 1, lambda log: snapshots.append(net.arch_alpha.detach().clone())
    )
    assert torch.equal(snapshots[0], snapshots[1]) and not torch.equal(snapshots[1], snapshots[2])
    assert [h.diagnostics["alpha_warmup.alpha_frozen"] for h in history] == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="no α update"):
        build_hooks(["alpha_warmup"], {"alpha_warmup": {"epochs": 3}})[0].on_build(ctx)


def test_smoothdarts_schedule_is_cosine_one_epoch_ahead():
    """`cosine_shifted`: SmoothDARTS' `scheduler.step()` at the start of each epoch under
    torch >= 1.1 (the scheduler already stepped once when built): epoch e at cosine(e + 1),
    the last epoch at lr_min. Checked against torch's scheduler driven that way."""
    epochs, base, eta_min = 7, 0.025, 0.001
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, float(epochs), eta_min=eta_min)
    for e in range(epochs):
        with warnings.catch_warnings():  # torch flags this call order (the script's)
            warnings.simplefilter("ignore", UserWarning)
            sched.step()
        lr = epoch_lr("cosine_shifted", base, eta_min, e, epochs)
        assert lr == cosine_lr(base, eta_min, e + 1, epochs)
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
    assert epoch_lr("cosine_shifted", base, eta_min, epochs - 1, epochs) == pytest.approx(eta_min)
    # 50 epochs (the suites' SDARTS-RS searches): at most 7.5e-4 from the unshifted schedule
    gap = max(
        abs(epoch_lr("cosine_shifted", base, eta_min, e, 50) - epoch_lr("cosine", base, eta_min, e, 50))
        for e in range(50)
    )
    assert 7.4e-4 < gap < 7.6e-4
    assert SearchSettings(**BASE, lr_schedule="cosine_shifted").lr_schedule == "cosine_shifted"


def test_resume_keeps_the_alpha_gradient_the_clip_norm_counts():
    """With `clip_includes_alpha` the first weight step of an epoch counts the gradient the
    last α step left: a resumed search restores it and continues exactly (clip acting)."""
    x_gen = torch.Generator().manual_seed(7)
    batches = [
        (torch.randn(4, 3, 8, 8, generator=x_gen, dtype=torch.float64),
         torch.randint(0, 3, (4,), generator=x_gen),
         torch.randn(4, 3, 8, 8, generator=x_gen, dtype=torch.float64),
         torch.randint(0, 3, (4,), generator=x_gen))
        for _ in range(2)
    ]  # fmt: skip
    settings = {**BASE, "epochs": 3, "lr": 0.05, "grad_clip": 0.05, "clip_includes_alpha": True}

    def search(resume=None):
        net, _, _ = _net_and_batch()
        ctx = SearchContext(
            net, SearchSettings(**settings), [], torch.device("cpu"), nn.CrossEntropyLoss()
        )
        states = []  # what a checkpoint file holds: a copy, not the live tensors
        run_search(ctx, batches, 2, checkpoint=lambda st: states.append(copy.deepcopy(st)),
                   resume=resume)  # fmt: skip
        return net, states

    whole, states = search()
    assert states[1]["alpha_grad"][0] is not None
    resumed, _ = search(resume=states[1])
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    lost = {**states[1], "alpha_grad": [None]}  # the state without it: another trajectory
    other, _ = search(resume=lost)
    assert not torch.equal(other.arch_alpha, whole.arch_alpha)
