"""SNAS' DARTS-space search (`snas_darts`) against the authors' code, step by step.

SNAS-Series/SNAS-Series SNAS/model_search.py `Network` (its Gumbel draws, drop path, cost
bookkeeping and resource terms) driven by a loop written from SNAS/train_search.py `train`
for the README's 8-cell command (`--snas --temp_annealing --resource_efficient --log_penalty
--method reparametrization --loss`, single GPU): one forward, loss = CE + λ·(penalty[37]/6 +
ratio·penalty[38]/2), one backward, clip the weights (norm `grad_clip`) and α (norm 10), SGD on
the weights, plain SGD on α. Its logging-only backward passes are zeroed by the script before
the real one and are left out. The code hard-codes `torch.device("cuda")`: the test maps it to
the CPU while the reference runs (never in the project). Float64 on the CPU; nasrepro runs
`run_search` with the `snas_darts` hook on the same weights, α, batches and random stream.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import torch
from _oracle import checkout, copy_by_structure, reference_modules
from _trajectory import (
    ClipNorms,
    assert_within,
    deviation,
    make_batches,
    run_nasrepro,
    state_of,
)
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.search.engine import SearchContext
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

EPOCHS, STEPS, BATCH, IMAGE, CLASSES, C, LAYERS = 2, 3, 4, 8, 10, 4, 5
CE = nn.CrossEntropyLoss()
LAM, CLIP = 0.5, 0.5  # λ large enough that the cost moves α visibly; a weight clip that acts
SETTINGS = dict(
    lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4, arch_lr=0.05,
    arch_grad_clip=10.0, clip_includes_alpha=False, arch_weight_decay=0.0, order=1,
)  # fmt: skip


@contextmanager
def _cuda_is_cpu():
    """`.to(torch.device("cuda"))` in the reference's constructors and forward -> the CPU."""
    saved = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple(
            "cpu" if (isinstance(a, torch.device | str) and str(a).startswith("cuda")) else a
            for a in args
        )
        return saved(self, *args, **kwargs)

    torch.Tensor.to = to  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.to = saved  # type: ignore[method-assign]


def _args(drop: float) -> SimpleNamespace:
    return SimpleNamespace(
        snas=True, dsnas=False, use_ckpt=False, resample_layer=False, resource_efficient=True,
        resource_lambda=LAM, method="reparametrization", drop_path_prob=drop,
        normalization=False, running_mean_var=False, separation="all", log_penalty=True,
        loss=True, ckpt_false_list="[]", bn_affine=False, distributed=False,
        minus_baseline=False, loc_mean=1.0, loc_std=0.01, temp=1.0, nsample=1,
        init_channels=C, auxiliary=False, gen_max_child_flag=False, random_sample=False,
        random_sample_fix_temp=False, prox_policy_opt=False, ratio=1.0,
    )  # fmt: skip


def _trajectory(drop: float) -> None:
    root = checkout("SNAS-Series/SNAS-Series") / "SNAS"
    epochs = make_batches(EPOCHS, STEPS, BATCH, IMAGE, CLASSES, seed=5)
    theirs: list = []
    with reference_modules(root, "model_search", "utils") as (ms, ut), _cuda_is_cpu():
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, CE, _args(drop), 0, 1).double()
        ref.normal_log_alpha = ref.normal_log_alpha.detach().double().requires_grad_()
        ref.reduce_log_alpha = ref.reduce_log_alpha.detach().double().requires_grad_()
        ref._arch_parameters = [ref.normal_log_alpha, ref.reduce_log_alpha]
        arch = ref._arch_parameters
        ours = build_space("darts").build_supernet(CLASSES, c=C, layers=LAYERS).double()
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        with torch.no_grad():
            for a, b in zip(arch, ours.arch_parameters(), strict=True):
                b.copy_(a)
        optimizer = torch.optim.SGD(
            ref.parameters(), SETTINGS["lr"], momentum=0.9, weight_decay=SETTINGS["weight_decay"]
        )
        arch_optimizer = torch.optim.SGD(arch, lr=SETTINGS["arch_lr"])
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, float(EPOCHS), eta_min=SETTINGS["lr_min"]
        )
        temps = ut.Temp_Scheduler(EPOCHS, ref._temp, 1.0, temp_min=0.03)
        torch.manual_seed(11)
        with ClipNorms() as ref_norms:
            for batches in epochs:
                ref._temp = temps.step()
                ref.train()
                for x, y, _, _ in batches:
                    logits, _, penalty, _, _ = ref(x)
                    error_loss = CE(logits, y)
                    log_penalty = penalty[37] / 6 + 1.0 * penalty[38] / 2
                    loss = ref._resource_lambda * log_penalty + error_loss
                    optimizer.zero_grad()
                    arch_optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(ref.parameters(), CLIP)
                    nn.utils.clip_grad_norm_(ref.arch_parameters(), 10.0)
                    optimizer.step()
                    arch_optimizer.step()
                    theirs.append(state_of(ref, arch))
                scheduler.step()
    args = {"resource_lambda": LAM, "drop_path_prob": drop}
    hook = build_hooks(["snas_darts"], {"snas_darts": args})[0]
    hook.init_alpha = lambda net: None  # α copied from the reference above
    settings = SearchSettings(epochs=EPOCHS, batch_size=BATCH, grad_clip=CLIP, **SETTINGS)
    ctx = SearchContext(ours, settings, [hook], torch.device("cpu"), CE)
    torch.manual_seed(11)
    with ClipNorms() as our_norms:
        snapshot = lambda: state_of(ours, ours.arch_parameters(), ("alphas",))  # noqa: E731
        mine = run_nasrepro(ctx, epochs, snapshot)
    assert ref_norms.acting(CLIP) == EPOCHS * STEPS, ref_norms.calls
    # α is clipped before the weights here, after them there: the same norms, in another order
    pairs = zip(sorted(our_norms.calls), sorted(ref_norms.calls), strict=True)
    assert all(m1 == m2 and abs(t1 - t2) <= 1e-9 * t2 for (m1, t1), (m2, t2) in pairs)
    moved = max((a - b).abs().max().item() for a, b in zip(theirs[-1][-2:], theirs[0][-2:], strict=True))
    assert moved > 1e-3  # α moved: the comparison covers the α update
    assert_within(deviation(mine, theirs), 1e-10)


def test_snas_darts_trajectory() -> None:
    """Drop path 0.3 (the command's): the masks come from the same stream on both sides."""
    _trajectory(0.3)


def test_snas_darts_trajectory_without_drop_path() -> None:
    _trajectory(0.0)


def test_snas_darts_resource_cost_tables() -> None:
    """The (size, FLOPs, MAC) every edge's ops record in the reference's first forward equal
    `edge_costs` at the same input side."""
    from nasrepro.methods.snas_darts import edge_costs

    root = checkout("SNAS-Series/SNAS-Series") / "SNAS"
    with reference_modules(root, "model_search") as (ms,), _cuda_is_cpu():
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, CE, _args(0.0), 0, 1)
        ref(torch.randn(2, 3, IMAGE, IMAGE))
        ours = build_space("darts").build_supernet(CLASSES, c=C, layers=LAYERS)
        for cell, costs in zip(ref.cells, edge_costs(ours, IMAGE), strict=True):
            want = torch.stack([cell.op_size, cell.op_flops, cell.op_mac], dim=-1).double()
            assert torch.equal(costs, want)
