"""SDARTS-ADV's PGD attack on α against its definition (SmoothDARTS attacker/perturb.py
Linf_PGD_alpha); tests/oracle/test_smoothdarts.py compares whole weight steps with the
authors' code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.methods.sdarts import clip_probs
from nasrepro.methods.sdarts_adv import SdartsAdv, pgd_linf
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings


def test_pgd_steps_by_hand_on_a_linear_loss():
    # L(a) = Σ w·a: ∇ = w, every step moves by lr·sign(w), the difference to α₀ clamped
    # to ε, each row clamped to [0, 1] and renormalised
    base = [torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], dtype=torch.float64)]
    w = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 3.0, 0.0]], dtype=torch.float64)
    noise = [torch.tensor([[0.01, -0.02, 0.0], [0.03, 0.0, -0.01]], dtype=torch.float64)]
    eps, steps = 0.1, 4
    got, kept = pgd_linf(lambda a: (w * a[0]).sum(), base, eps, steps, noise)
    a = clip_probs(base[0] + noise[0])
    for _ in range(steps):
        a = a + 2 * eps / steps * torch.sign(w)
        a = clip_probs(base[0] + (a - base[0]).clamp(-eps, eps))
    assert kept and torch.equal(got[0], a)
    assert (got[0].sum(-1) - 1).abs().max() < 1e-15 and got[0].min() >= 0


def test_an_attack_that_does_not_raise_the_loss_is_dropped():
    base = [torch.tensor([[0.4, 0.6]], dtype=torch.float64)]
    noise = [torch.tensor([[0.05, -0.05]], dtype=torch.float64)]
    # the loss is highest at α₀ itself: the attack ends below it and α₀ is kept
    got, kept = pgd_linf(lambda a: -((a[0] - base[0]) ** 2).sum(), base, 0.1, 7, noise)
    assert not kept and torch.equal(got[0], base[0])


def test_adv_hook_in_a_search_leaves_alpha_and_the_mode_alone():
    seed_everything(0, True)
    net = build_space("s3").build_supernet(3, c=2, layers=3).double()
    settings = SearchSettings(
        epochs=1, batch_size=4, lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
        arch_lr=3e-3, arch_weight_decay=1e-3, alpha_step="before_weights",
    )  # fmt: skip
    (hook,) = build_hooks(["sdarts_adv"], {"sdarts_adv": {"epsilon_max": 0.3, "steps": 2}})
    ctx = SearchContext(net, settings, [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    gen = torch.Generator().manual_seed(1)
    batches = [
        (x, torch.randint(0, 3, (4,), generator=gen), x, torch.randint(0, 3, (4,), generator=gen))
        for x in (torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    ]
    (log,) = run_search(ctx, [batches[0]], 1)
    assert log.diagnostics["sdarts_adv.epsilon"] == 0.03
    assert log.diagnostics["sdarts_adv.attack_kept"] in (0.0, 1.0)
    assert net.training
    ramp = []
    for epoch in range(3):  # train_search.py: 0.03 + (ε_max − 0.03)·epoch/epochs
        ctx.epoch, ctx.settings = epoch, settings.model_copy(update={"epochs": 3})
        hook.on_epoch_start(ctx)
        ramp.append(hook.epsilon)
    assert ramp == pytest.approx([0.03, 0.12, 0.21])
    # α moved only by its own Adam steps: its gradient never came from the weight loss
    hook.on_epoch_start(ctx)
    ctx.weight_batch = batches[0][:2]
    before = [a.detach().clone() for a in net.arch_parameters()]
    mixed = hook.weight_step_cell_weights(ctx, net.cell_weights())
    assert all(torch.equal(a, b) for a, b in zip(net.arch_parameters(), before, strict=True))
    assert len(mixed) == 3 and all(not m.requires_grad for m in mixed)
    with pytest.raises(ValueError, match="steps"):
        SdartsAdv(steps=0)
