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


@contextmanager
def _child_draws_nothing(ms):
    """The reference builds a fresh child network every forward (its initial weights are then
    overwritten from the supernet): its construction must not advance the random stream."""
    saved = ms.NetworkChild

    def build(*args, **kwargs):
        with torch.random.fork_rng():
            return saved(*args, **kwargs)

    ms.NetworkChild = build
    try:
        yield
    finally:
        ms.NetworkChild = saved


@contextmanager
def _module_cuda_is_cpu():
    saved = nn.Module.to

    def to(self, *args, **kwargs):
        args = tuple(
            "cpu" if (isinstance(a, torch.device | str) and str(a).startswith("cuda")) else a
            for a in args
        )
        return saved(self, *args, **kwargs)

    nn.Module.to = to  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.to = saved  # type: ignore[method-assign]


def _dsnas_trajectory(drop: float) -> None:
    root = checkout("SNAS-Series/SNAS-Series") / "SNAS"
    epochs = make_batches(EPOCHS, STEPS, BATCH, IMAGE, CLASSES, seed=6)
    theirs: list = []
    args = _args(drop)
    args.snas, args.dsnas, args.resource_efficient, args.loss = False, True, False, False
    args.add_entropy_loss = args.edge_reward_norm = False
    saved_dtype = torch.get_default_dtype()
    with reference_modules(root, "model_search") as (ms,), _cuda_is_cpu(), _module_cuda_is_cpu():
        torch.set_default_dtype(torch.float64)  # the per-step child is built in float64 too
        try:
            torch.manual_seed(0)
            ref = ms.Network(C, CLASSES, LAYERS, CE, args, 0, 1)
            ref.normal_log_alpha = ref.normal_log_alpha.detach().double().requires_grad_()
            ref.reduce_log_alpha = ref.reduce_log_alpha.detach().double().requires_grad_()
            ref._arch_parameters = [ref.normal_log_alpha, ref.reduce_log_alpha]
            arch = ref._arch_parameters
            for v in [*ref.parameters(), *arch]:  # train_search.py init_model
                v.grad = torch.zeros_like(v)
            ours = build_space("darts").build_supernet(CLASSES, c=C, layers=LAYERS).double()
            copy_by_structure(ref, ours, skip_dst=("alphas",))
            with torch.no_grad():
                for a, b in zip(arch, ours.arch_parameters(), strict=True):
                    b.copy_(a)
            optimizer = torch.optim.SGD(
                ref.parameters(), SETTINGS["lr"], momentum=0.9,
                weight_decay=SETTINGS["weight_decay"],
            )  # fmt: skip
            arch_optimizer = torch.optim.SGD(arch, lr=SETTINGS["arch_lr"])
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, float(EPOCHS), eta_min=SETTINGS["lr_min"]
            )
            torch.manual_seed(11)
            with ClipNorms() as ref_norms, _child_draws_nothing(ms):
                for batches in epochs:
                    ref.train()
                    for x, y, _, _ in batches:
                        ref(x, y, CE)  # the dsnas branch runs its own backward
                        nn.utils.clip_grad_norm_(ref.parameters(), CLIP)
                        nn.utils.clip_grad_norm_(ref.arch_parameters(), 10.0)
                        optimizer.step()
                        arch_optimizer.step()
                        optimizer.zero_grad(set_to_none=False)  # PyTorch 0.4's zero_grad
                        arch_optimizer.zero_grad(set_to_none=False)
                        theirs.append(state_of(ref, arch, leave_out=_bn_stat))
                    scheduler.step()
        finally:
            torch.set_default_dtype(saved_dtype)
    hook = build_hooks(["dsnas"], {"dsnas": {"drop_path_prob": drop}})[0]
    hook.init_alpha = lambda net: None  # α copied from the reference above
    settings = SearchSettings(epochs=EPOCHS, batch_size=BATCH, grad_clip=CLIP, **SETTINGS)
    ctx = SearchContext(ours, settings, [hook], torch.device("cpu"), CE)
    torch.manual_seed(11)
    with ClipNorms() as our_norms:
        snapshot = lambda: state_of(ours, ours.arch_parameters(), ("alphas",), _bn_stat)  # noqa: E731
        mine = run_nasrepro(ctx, epochs, snapshot)
    assert ref_norms.acting(CLIP) >= 1, ref_norms.calls
    return mine, theirs, our_norms, ref_norms


def _bn_stat(name: str) -> bool:
    """BN running statistics: the reference's child is a copy, its supernet's never move."""
    return "running_" in name or "num_batches_tracked" in name


def test_dsnas_trajectory_without_drop_path() -> None:
    """DSNAS from SNAS/train_search.py --dsnas: six steps, the weight clip acting; weights and
    α (BN statistics left out: the reference's child is a copy)."""
    mine, theirs, our_norms, ref_norms = _dsnas_trajectory(0.0)
    assert ref_norms.acting(CLIP) == EPOCHS * STEPS, ref_norms.calls
    # α is clipped before the weights here, after them there: the same norms, in another order
    pairs = zip(sorted(our_norms.calls), sorted(ref_norms.calls), strict=True)
    assert all(m1 == m2 and abs(t1 - t2) <= 1e-9 * t2 for (m1, t1), (m2, t2) in pairs)
    start, end = theirs[0][-2:], theirs[-1][-2:]
    assert max((a - b).abs().max().item() for a, b in zip(end, start, strict=True)) > 1e-4
    assert_within(deviation(mine, theirs), 1e-10)


def test_dsnas_first_step_with_drop_path() -> None:
    """With drop path the reference also runs the whole supernet after the child (its output
    unused by DSNAS), drawing a second set of drop-path masks: the random streams part after
    the first step, which must agree (masks on the child's edges, in edge order)."""
    mine, theirs, _, _ = _dsnas_trajectory(0.3)
    assert_within(deviation(mine[:1], theirs[:1]), 1e-10)
    assert max(deviation(mine, theirs)) > 1e-3  # the streams do part (the test can tell)
