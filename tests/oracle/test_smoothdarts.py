"""SDARTS-ADV against xiangning-chen/SmoothDARTS, step by step (float64, CPU).

Skipped unless NASREPRO_REF_SMOOTHDARTS names a checkout. The reference's weight step
(sota/cnn/train_search.py train(): softmax_arch_parameters, attacker/perturb.py
Linf_PGD_alpha on the training batch, the forward with the perturbed α, clipped SGD,
restore_arch_parameters) against the `sdarts_adv` hook in the engine's weight step, with the
random start drawn from the same seed on both sides, on S1 and S3 supernets whose batch-norm
running statistics (read in eval mode by the attack) were first moved off their init.
"""

from __future__ import annotations

import pytest
import torch
from _oracle import checkout, copy_by_structure, reference_modules
from torch import nn

from nasrepro.methods.sdarts_adv import SdartsAdv
from nasrepro.search.engine import SearchContext, build_optimizers, weight_step
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

LAYERS, C, CLASSES = 3, 4, 10
SETTINGS = dict(
    epochs=10, batch_size=4, lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
    arch_lr=3e-4, arch_weight_decay=1e-3, grad_clip=5.0, alpha_step="before_weights",
)  # fmt: skip


@pytest.mark.parametrize("space_name", ["s1", "s3"])
def test_adversarial_weight_steps_match_smoothdarts(space_name: str) -> None:
    root = checkout("xiangning-chen/SmoothDARTS")
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the reference's α are plain default-dtype tensors
    try:
        with reference_modules(
            root, "sota.cnn.spaces", "sota.cnn.model_search", "attacker.perturb"
        ) as (sp, ms, perturb):
            torch.manual_seed(0)
            ref = ms.Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss(), sp.spaces_dict[space_name])
            gen = torch.Generator().manual_seed(1)
            ref.train()
            with torch.no_grad():  # running statistics away from 0/1: eval mode reads them
                for _ in range(3):
                    ref(torch.randn(8, 3, 8, 8, generator=gen) * 2 + 0.5)
                for a in ref.arch_parameters():
                    a.copy_(torch.randn(a.shape, generator=gen))
            ours = build_space(space_name).build_supernet(CLASSES, c=C, layers=LAYERS).double()
            copy_by_structure(ref, ours, skip_dst=("alphas",))
            with torch.no_grad():
                for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
                    b.copy_(a)
            optimizer = torch.optim.SGD(ref.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
            hook = SdartsAdv(epsilon_min=0.03, epsilon_max=0.3)
            ctx = SearchContext(
                ours, SearchSettings(**SETTINGS), [hook], torch.device("cpu"),
                nn.CrossEntropyLoss(),
            )  # fmt: skip
            build_optimizers(ctx)
            kept = []
            for step, epoch in enumerate((0, 4, 9)):
                ctx.epoch = epoch
                hook.on_epoch_start(ctx)
                eps = 0.03 + (0.3 - 0.03) * epoch / 10  # train_search.py's ramp
                assert hook.epsilon == pytest.approx(eps, rel=1e-15)
                x = torch.randn(4, 3, 8, 8, generator=gen)
                y = torch.randint(0, CLASSES, (4,), generator=gen)
                # the reference's loop body (α step left out: α is equal on both sides)
                ref.train()
                optimizer.zero_grad()
                ref.softmax_arch_parameters()
                torch.manual_seed(100 + step)  # its random start: zeros_like(p).uniform_
                perturb.Linf_PGD_alpha(ref, x, y, hook.epsilon)
                attacked = [a.detach().clone() for a in ref.arch_parameters()]
                optimizer.zero_grad()
                loss = nn.CrossEntropyLoss()(ref(x, updateType="weight"), y)
                loss.backward()
                nn.utils.clip_grad_norm_(ref.parameters(), 5.0)
                optimizer.step()
                ref.restore_arch_parameters()
                # ours: the same draw from the hook's generator
                hook._generator = torch.Generator().manual_seed(100 + step)
                ctx.weight_batch = (x, y)
                mixed = hook.weight_step_cell_weights(ctx, ours.cell_weights())
                index = ours.cell_alpha_index()
                for k, want in enumerate(attacked):
                    torch.testing.assert_close(mixed[index.index(k)], want, rtol=0, atol=1e-15)
                kept.append(bool(hook.kept))
                hook._generator = torch.Generator().manual_seed(100 + step)
                weight_step(ctx, x, y)
                for a, b in zip(ref.parameters(), ours.weight_parameters(), strict=True):
                    torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-12, atol=1e-15)
            assert any(kept)  # the attack raised the loss at least once
    finally:
        torch.set_default_dtype(saved)
