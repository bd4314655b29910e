"""Search trajectories against the authors' code, from local checkouts, step by step.

Each test builds the reference's own network (and architect, and noise) from a checkout named
by its environment variable (`_oracle.CHECKOUT_VARS`) and drives it with a loop written from
the reference's training script; nasrepro runs `run_search` on the same weights, α and
batches. Float64 on the CPU, three epochs of three steps, the state compared after every step
(`_trajectory.deviation`: the largest difference relative to each tensor's magnitude), with a
case where the gradient clip acts on every step. Without the variable a test skips.

What each reference contributes, and the tolerances, are in docs/fidelity.md.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch
from _oracle import checkout, copy_by_structure, reference_modules
from _trajectory import (
    ClipNorms,
    assert_within,
    deviation,
    make_batches,
    run_nasrepro,
    same_norms,
    state_of,
)
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.search.engine import SearchContext
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

EPOCHS, STEPS, BATCH, CLASSES = 3, 3, 4, 10
CE = nn.CrossEntropyLoss()


def _randomise_bn(net: nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _double_alphas(ref, names: tuple[str, ...]) -> list[torch.Tensor]:
    """The DARTS-type references keep α as plain tensors, which .double() leaves alone."""
    names = tuple(n for n in names if hasattr(ref, n))
    for n in names:
        setattr(ref, n, getattr(ref, n).detach().double().requires_grad_())
    ref._arch_parameters = [getattr(ref, n) for n in names]
    return ref._arch_parameters


def _same_alphas(theirs: list[torch.Tensor], ours: list[torch.Tensor], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a, b in zip(theirs, ours, strict=True):
            a.copy_(torch.randn(a.shape, generator=g, dtype=a.dtype))
            b.copy_(a)


def _ctx(net: nn.Module, hooks: list, **settings) -> SearchContext:
    return SearchContext(net, SearchSettings(**settings), hooks, torch.device("cpu"), CE)


def _nasrepro(
    ctx: SearchContext,
    epochs,
    skip: tuple[str, ...] = ("alphas", "betas", "arch_"),
    leave_out=lambda name: False,
):
    net = ctx.supernet
    with ClipNorms() as norms:
        states = run_nasrepro(
            ctx, epochs, lambda: state_of(net, net.arch_parameters(), skip, leave_out)
        )
    return states, norms


def _mixed_op_bn_stats(name: str) -> bool:
    """A BN running statistic inside a mixed op (`_ops.<i>._ops.` there, `edges.<i>.ops.`
    here); the cells' preprocessing BNs (`preprocess0.op.2`) do not match."""
    return "ops." in name and ("running_" in name or "num_batches_tracked" in name)


# -- Λ-DARTS on NAS-Bench-201: Lambda-DARTS NAS-Bench201/exps/algos/DARTS-V1.py ----------------

# The script's own configs/nas-benchmark/algos/DARTS.config (epochs shortened) and
# scripts-search/algos/DARTS-V1.sh (--lambda 0.25 --epsilon_0 0.0001 --arch_learning_rate 1e-4).
LAMBDA_201 = dict(
    lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4,
    arch_lr=1e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, alpha_step="after_weights",
)  # fmt: skip


def _lambda_201_search(cu, opt, ref, epochs, lam: float, clip: float, record) -> None:
    """DARTS-V1.py's main loop and search_func with --corr_regularization (`cu`, `opt`: the
    reference's config_utils and procedures.optimizers)."""
    config = cu.dict2config(
        {
            "optim": "SGD", "LR": LAMBDA_201["lr"], "decay": LAMBDA_201["weight_decay"],
            "momentum": 0.9, "nesterov": False, "scheduler": "cos", "epochs": len(epochs),
            "warmup": 0, "eta_min": LAMBDA_201["lr_min"], "criterion": "Softmax",
        },
        None,
    )  # fmt: skip
    w_optimizer, w_scheduler, criterion = opt.get_optim_scheduler(ref.get_weights(), config)
    a_optimizer = torch.optim.Adam(
        ref.get_alphas(), lr=LAMBDA_201["arch_lr"], betas=(0.5, 0.999), weight_decay=1e-3
    )
    total = len(epochs)
    for epoch, batches in enumerate(epochs):
        w_scheduler.update(epoch, 0.0)
        ref.lambda_ = lam * epoch / (total - 1)
        ref.train()
        for step, (base_inputs, base_targets, arch_inputs, arch_targets) in enumerate(batches):
            w_scheduler.update(None, 1.0 * step / len(batches))
            w_optimizer.zero_grad()
            _, logits = ref(base_inputs)
            criterion(logits, base_targets).backward()
            pert = ref.get_perturbations()
            forward_grads = torch.autograd.grad(
                criterion(ref(base_inputs, pert=pert)[1], base_targets), ref.get_weights()
            )
            backward_grads = torch.autograd.grad(
                criterion(ref(base_inputs, pert=[-p for p in pert])[1], base_targets),
                ref.get_weights(),
            )
            ref.get_full_grads(forward_grads, backward_grads)
            torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
            w_optimizer.step()
            a_optimizer.zero_grad()
            _, logits = ref(arch_inputs)
            criterion(logits, arch_targets).backward()
            a_optimizer.step()
            record()


def _lambda_201(clip: float, includes_alpha: bool = True):
    from nasrepro.spaces.nb201 import OPS, Nb201Supernet

    root = checkout("dr-faustus/Lambda-DARTS") / "NAS-Bench201" / "lib"
    lam, eps0 = 0.25, 1e-4
    torch.manual_seed(0)
    modules = ("models.cell_searchs.search_model_darts_v1", "config_utils", "procedures.optimizers")
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=2)
    theirs: list = []
    with reference_modules(root, *modules) as (ms, cu, opt), ClipNorms() as ref_norms:
        torch.manual_seed(0)
        ref = ms.TinyNetworkDartsV1(4, 1, 4, CLASSES, list(OPS)).double()
        ref.epsilon_0 = eps0
        ours = Nb201Supernet(CLASSES, c=4, n=1, track_running_stats=True).double()
        copy_by_structure(ref, ours, skip=("arch_parameters",), skip_dst=("arch_alpha",))
        _same_alphas([ref.arch_parameters], [ours.arch_alpha], seed=1)
        _lambda_201_search(
            cu, opt, ref, epochs, lam, clip,
            lambda: theirs.append(state_of(ref, [ref.arch_parameters], ("arch_parameters",))),
        )  # fmt: skip
    hooks = build_hooks(["lambda"], {"lambda": {"lambda_": lam, "eps0": eps0, "cells": "all"}})
    ctx = _ctx(
        ours, hooks, epochs=EPOCHS, batch_size=BATCH, grad_clip=clip,
        clip_includes_alpha=includes_alpha, **LAMBDA_201,
    )  # fmt: skip
    mine, our_norms = _nasrepro(ctx, epochs, skip=("arch_alpha",))
    return deviation(mine, theirs), our_norms, ref_norms


@pytest.mark.parametrize("clip", [1000.0, 3.0])
def test_lambda_darts_nb201_trajectory(clip: float) -> None:
    """Λ-DARTS' NB201 loop (AutoDL's DARTS-V1 with the Λ term), λ_t = 0, 0.125, 0.25 over the
    three epochs, ε0 = 1e-4; clip idle (1000) and acting on every step (3). Its clip counts
    α's gradient, including the weight loss' α gradient that reaches α through each cell's
    `alphas.clone()`; nasrepro sends its leaf copies' gradients back to α for the norm
    (`clip_includes_alpha`). The extra passes move the BN running statistics on both sides
    (compared: track_running_stats is on), at epoch 0 too. The Λ term divides a gradient
    difference by 2ε (ε ≈ 1e-5 here): rounding of ~1e-16 in the two gradients becomes
    ~1e-11 in the term; measured ≤ 5e-12 over the 9 steps."""
    dev, ours, theirs = _lambda_201(clip)
    same_norms(ours, theirs, rtol=1e-9)
    assert theirs.acting(clip) == (EPOCHS * STEPS if clip == 3.0 else 0), theirs.calls
    assert_within(dev, 1e-10)


def test_lambda_darts_nb201_needs_the_weight_loss_alpha_gradient_in_the_norm() -> None:
    """The oracle can fail: without α in the clip norm the clipped steps scale differently."""
    dev, _, _ = _lambda_201(3.0, includes_alpha=False)
    assert max(dev) > 1e-2, dev


# -- DARTS-space loops (quark0's structure: α are not model parameters, α step first) ---------

# Each reference's argparse defaults for the DARTS-space search (train_search.py).
DARTS_DEFAULTS = dict(
    lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4, arch_lr=3e-4,
    arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, alpha_step="before_weights",
)  # fmt: skip


def _args(settings: dict, clip: float, **extra) -> SimpleNamespace:
    """The argparse namespace the references' Architect reads."""
    return SimpleNamespace(
        momentum=settings["momentum"], weight_decay=settings["weight_decay"],
        arch_learning_rate=settings["arch_lr"], arch_weight_decay=settings["arch_weight_decay"],
        grad_clip=clip, unrolled=False, **extra,
    )  # fmt: skip


def _sgd_and_cosine(ref: nn.Module, settings: dict, epochs: int):
    """train_search.py's optimizer and scheduler (quark0's)."""
    optimizer = torch.optim.SGD(
        ref.parameters(), settings["lr"], momentum=settings["momentum"],
        weight_decay=settings["weight_decay"],
    )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, float(epochs), eta_min=settings["lr_min"]
    )
    return optimizer, scheduler


def _darts_pair(ref: nn.Module, arch: tuple[str, ...], space: str = "", ours=None, **space_args):
    """nasrepro's supernet (`ours`, or one of `space`) with the reference's weights and the
    same random α (float64)."""
    ref = ref.double()
    ref_arch = _double_alphas(ref, arch)
    if ours is None:
        ours = build_space(space).build_supernet(CLASSES, **space_args)
    ours = ours.double()
    _randomise_bn(ref)
    copy_by_structure(ref, ours, skip_dst=("alphas", "betas"))
    _same_alphas(ref_arch, ours.arch_parameters(), seed=3)
    return ref, ref_arch, ours


# -- Λ-DARTS on the DARTS space: Lambda-DARTS sota/cnn/train_search.py ---------------------------


def test_lambda_darts_darts_space_trajectory() -> None:
    """Λ-DARTS on the DARTS space (S2: the sota/cnn code of every Λ DARTS-type experiment; two
    ops keep it fast), Λ on the normal cells (2 of 4), λ 0.25, ε0 1e-4,
    clip acting on every step (over the weights: α are not model parameters). The loop:
    architect step, softmax_arch_parameters, weight loss, Λ passes at P ∓ u, reg grads,
    clip, SGD step, restore; CosineAnnealingLR stepped after each epoch (cosine(e)). The
    BN running statistics move in all three passes on both sides."""
    root = checkout("dr-faustus/Lambda-DARTS")
    lam, eps0, clip = 0.25, 1e-4, 0.5
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=4)
    names = ("sota.cnn.spaces", "sota.cnn.model_search", "sota.cnn.architect")
    theirs: list = []
    with reference_modules(root, *names) as (sp, ms, arch), ClipNorms() as ref_norms:
        torch.manual_seed(0)
        net = ms.Network(
            4, CLASSES, 4, CE, sp.spaces_dict["s2"], epsilon_0=eps0, lambda_=lam, corr_type="corr"
        )
        ref, ref_arch, ours = _darts_pair(net, ("alphas_normal", "alphas_reduce"), "s2", c=4, layers=4)
        args = _args(DARTS_DEFAULTS, clip)
        optimizer, scheduler = _sgd_and_cosine(ref, DARTS_DEFAULTS, len(epochs))
        architect = arch.Architect(ref, args)
        for epoch, batches in enumerate(epochs):
            ref.lambda_ = lam * epoch / (len(epochs) - 1)
            for x_w, y_w, x_a, y_a in batches:
                ref.train()
                architect.step(x_w, y_w, x_a, y_a, None, optimizer, unrolled=False)
                optimizer.zero_grad()
                architect.optimizer.zero_grad()
                ref.softmax_arch_parameters()
                CE(ref(x_w, updateType="weight"), y_w).backward()
                u = ref.get_perturbations()
                forward_grads = torch.autograd.grad(
                    CE(ref(x_w, pert=u, updateType="weight"), y_w), ref.parameters()
                )
                backward_grads = torch.autograd.grad(
                    CE(ref(x_w, pert=[-v for v in u], updateType="weight"), y_w), ref.parameters()
                )
                ref.get_reg_grads(forward_grads, backward_grads)
                nn.utils.clip_grad_norm_(ref.parameters(), args.grad_clip)
                optimizer.step()
                ref.restore_arch_parameters()
                theirs.append(state_of(ref, ref_arch))
            scheduler.step()
    hooks = build_hooks(["lambda"], {"lambda": {"lambda_": lam, "eps0": eps0, "cells": "normal"}})
    ctx = _ctx(ours, hooks, epochs=EPOCHS, batch_size=BATCH, grad_clip=clip, **DARTS_DEFAULTS)
    mine, our_norms = _nasrepro(ctx, epochs)
    dev = deviation(mine, theirs)
    same_norms(our_norms, ref_norms, rtol=1e-9)
    assert ref_norms.acting(clip) == EPOCHS * STEPS, ref_norms.calls
    assert_within(dev, 1e-10)


# -- DARTS-: Meituan-AutoML/DARTS- src/search/train_search.py -----------------------------------


def test_darts_minus_trajectory(tmp_path) -> None:
    """DARTS- on S3 with the auxiliary skip, β decayed linearly over the 3 epochs
    (DecayScheduler stepped at each epoch start; --decay_max_epoch 3), first order, α step
    first; CosineAnnealingLR.step(epoch) at each epoch start (closed form: cosine(e)); clip
    over the weights, acting. train_search.py itself does not import (`async=True`): the
    loop is built from its modules."""
    root = checkout("Meituan-AutoML/DARTS-")
    clip = 0.5
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=6)
    argv = sys.argv
    # DARTS-' args module parses the command line (and makes its --save folder) at import.
    sys.argv = [
        "train_search.py", "--auxiliary_skip", "--auxiliary_operation", "skip", "--decay",
        "linear", "--decay_max_epoch", str(EPOCHS), "--decay_stop_epoch", str(EPOCHS),
        "--save", str(tmp_path), "--grad_clip", str(clip),
    ]  # fmt: skip
    theirs: list = []
    try:
        names = ("src.spaces", "src.search.args", "src.search.model_search", "src.search.architect")
        with reference_modules(root, *names) as (sp, a, ms, arch), ClipNorms() as ref_norms:
            args = a.args
            torch.manual_seed(0)
            net = ms.Network(4, CLASSES, 3, CE, sp.spaces_dict["s3"], steps=4, args=args)
            ours = build_space("s3").build_supernet(CLASSES, c=4, layers=3)
            # The auxiliary branches exist once the hook is built on the supernet: copy the
            # reference's weights into them too, and build them only once.
            (hook,) = build_hooks(["darts_minus"], {"darts_minus": {"beta0": 1.0, "decay": "linear"}})
            settings = dict(epochs=EPOCHS, batch_size=BATCH, grad_clip=clip, **DARTS_DEFAULTS)
            hook.on_build(_ctx(ours, [hook], **settings))
            hook.on_build = lambda ctx: None
            ref, ref_arch, ours = _darts_pair(
                net, ("alphas_normal", "alphas_reduce"), ours=ours
            )
            optimizer, scheduler = _sgd_and_cosine(ref, DARTS_DEFAULTS, len(epochs))
            architect = arch.Architect(ref, args)
            for epoch, batches in enumerate(epochs):
                a.beta_decay_scheduler.step(epoch)
                scheduler.step(epoch)
                lr = scheduler.get_last_lr()[0]
                for x_w, y_w, x_a, y_a in batches:
                    ref.train()
                    architect.step(x_w, y_w, x_a, y_a, lr, optimizer, unrolled=args.unrolled)
                    optimizer.zero_grad()
                    CE(ref(x_w), y_w).backward()
                    nn.utils.clip_grad_norm(ref.parameters(), args.grad_clip)
                    optimizer.step()
                    theirs.append(state_of(ref, ref_arch))
    finally:
        sys.argv = argv
    mine, our_norms = _nasrepro(_ctx(ours.double(), [hook], **settings), epochs)
    dev = deviation(mine, theirs)
    same_norms(our_norms, ref_norms, rtol=1e-12)
    assert ref_norms.acting(clip) == EPOCHS * STEPS, ref_norms.calls
    assert_within(dev, 1e-12)


# -- PC-DARTS: yuhuixu1993/PC-DARTS train_search.py and train_search_imagenet.py ----------------

# train_search.py's argparse defaults (CIFAR-10): batch 256, lr 0.1 -> 0, arch lr 6e-4.
PC_CIFAR = dict(
    lr=0.1, lr_min=0.0, momentum=0.9, nesterov=False, weight_decay=3e-4, arch_lr=6e-4,
    arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, alpha_step="before_weights",
)  # fmt: skip
PC_ARCH = ("alphas_normal", "alphas_reduce", "betas_normal", "betas_reduce")


def _patch_pc_darts(ms, k: int, shuffle: bool) -> None:
    """The reference hard-codes K = 4 (`self.k = 4` in MixedOp.__init__) and always shuffles:
    make `k` a class property that ignores the assignment, and channel_shuffle the identity."""
    if k != 4:
        ms.MixedOp.k = property(lambda self: k, lambda self, value: None)
    if not shuffle:
        ms.channel_shuffle = lambda x, groups: x


@pytest.mark.parametrize(
    ("k", "shuffle", "ours_shuffle"),
    [(4, True, True), (2, True, True), (2, False, False), (4, True, False)],
    ids=["k4", "k2", "k2-noshuffle", "broken-shuffle"],
)
def test_pc_darts_cifar_trajectory(k: int, shuffle: bool, ours_shuffle: bool) -> None:
    """PC-DARTS' CIFAR search (train_search.py: not importable, `async=True`; the loop is built
    from model_search and architect): partial channels 1/K with channel shuffle, edge
    normalization, α frozen for the first epoch (`--begin`, 15 in the script), α step first,
    clip over the weights acting. The script's `scheduler.step()` at the epoch start ran under
    torch 0.3 (`loss.data[0]`), where it gives cosine(e): `scheduler.step(epoch)` here.
    K = 2 and no-shuffle (darts_minus Table 5) run against the reference patched to them; the
    last case breaks nasrepro's shuffle on purpose, and the comparison must fail."""
    root = checkout("yuhuixu1993/PC-DARTS")
    clip, begin = 0.5, 1
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=7)
    theirs: list = []
    with reference_modules(root, "model_search", "architect") as (ms, arch), ClipNorms() as ref_norms:
        _patch_pc_darts(ms, k, shuffle)
        torch.manual_seed(0)
        ref, ref_arch, ours = _darts_pair(
            ms.Network(8, CLASSES, 3, CE), PC_ARCH, "darts", c=8, layers=3, partial_channels=k,
            edge_normalization=True, channel_shuffle=ours_shuffle,
        )  # fmt: skip
        args = _args(PC_CIFAR, clip)
        optimizer, scheduler = _sgd_and_cosine(ref, PC_CIFAR, len(epochs))
        architect = arch.Architect(ref, args)
        for epoch, batches in enumerate(epochs):
            scheduler.step(epoch)
            lr = scheduler.get_last_lr()[0]
            for x_w, y_w, x_a, y_a in batches:
                ref.train()
                if epoch >= begin:
                    architect.step(x_w, y_w, x_a, y_a, lr, optimizer, unrolled=args.unrolled)
                optimizer.zero_grad()
                CE(ref(x_w), y_w).backward()
                nn.utils.clip_grad_norm(ref.parameters(), args.grad_clip)
                optimizer.step()
                theirs.append(state_of(ref, ref_arch))
    hooks = build_hooks(
        ["pc"], {"pc": {"k": k, "edge_normalization": True, "alpha_warmup_epochs": begin,
                        "shuffle": ours_shuffle}},
    )  # fmt: skip
    ctx = _ctx(ours, hooks, epochs=EPOCHS, batch_size=BATCH, grad_clip=clip, **PC_CIFAR)
    mine, our_norms = _nasrepro(ctx, epochs)
    dev = deviation(mine, theirs)
    if ours_shuffle != shuffle:
        assert max(dev) > 1e-3, dev
        return
    same_norms(our_norms, ref_norms, rtol=1e-12)
    assert ref_norms.acting(clip) == EPOCHS * STEPS, ref_norms.calls
    assert_within(dev, 1e-12)


# train_search_imagenet.py's argparse defaults: batch 1024, lr 0.5 -> 0 with a 5-epoch warm-up
# (batch > 256), arch lr 6e-3, α (and β) clipped at --grad_clip before their Adam step.
PC_IMAGENET = dict(
    lr=0.5, lr_min=0.0, momentum=0.9, nesterov=False, weight_decay=3e-4, arch_lr=6e-3,
    arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, alpha_step="before_weights",
    lr_warmup_epochs=5,
)  # fmt: skip


def test_pc_darts_imagenet_trajectory() -> None:
    """PC-DARTS' ImageNet search (train_search_imagenet.py): K = 2, three stride-2 stem convs,
    the α step from `--begin` (35; 2 here) with `clip_grad_norm_(arch_parameters, grad_clip)`,
    the weight lr warmed up as lr·(epoch + 1)/5 for epochs 0-4 (the script's condition
    `batch_size > 256` holds for its 1024; the batches here are tiny), cosine after. Seven
    epochs of two steps: the warm-up and two cosine epochs. The scheduler ran under torch 1.0
    (V100_python1.0, "pytorch1.0+"): `scheduler.step()` at the epoch start = cosine(e). Both
    clips act on every step they run.

    Bit for bit until the first α step; from there the two sides' α gradients differ by
    rounding (~1e-17), and Adam's first steps (update ≈ lr·g/√v) turn an entry that is zero
    up to rounding into an lr-sized move: measured ≤ 6e-11 after 14 steps (1e-9 asserted),
    clip norms ≤ 1.1e-8 apart. The reference's Cell.forward calls every mixed op twice (once
    only for `.device`), so its mixed ops' BN running statistics move twice per forward:
    train-mode BN never reads them and nasrepro runs no eval-mode pass of the supernet; they
    are left out of the comparison (docs/fidelity.md)."""
    root = checkout("yuhuixu1993/PC-DARTS")
    clip, begin, script_batch = 0.05, 2, 1024
    epochs = make_batches(7, 2, 2, 32, CLASSES, seed=8)
    theirs: list = []
    with reference_modules(root, "model_search_imagenet") as (msi,), ClipNorms() as ref_norms:
        torch.manual_seed(0)
        ref, ref_arch, ours = _darts_pair(
            msi.Network(4, CLASSES, 3, CE), PC_ARCH, "darts", c=4, layers=3, stem="imagenet",
            partial_channels=2, edge_normalization=True,
        )  # fmt: skip
        optimizer, scheduler = _sgd_and_cosine(ref, PC_IMAGENET, len(epochs))
        optimizer_a = torch.optim.Adam(
            ref.arch_parameters(), lr=PC_IMAGENET["arch_lr"], betas=(0.5, 0.999),
            weight_decay=PC_IMAGENET["arch_weight_decay"],
        )  # fmt: skip
        lr = PC_IMAGENET["lr"]
        for epoch, batches in enumerate(epochs):
            scheduler.step(epoch)
            if epoch < 5 and script_batch > 256:
                for param_group in optimizer.param_groups:
                    param_group["lr"] = lr * (epoch + 1) / 5.0
            for x_w, y_w, x_a, y_a in batches:
                ref.train()
                if epoch >= begin:
                    optimizer_a.zero_grad()
                    CE(ref(x_a), y_a).sum().backward()
                    nn.utils.clip_grad_norm_(ref.arch_parameters(), clip)
                    optimizer_a.step()
                optimizer.zero_grad()
                CE(ref(x_w), y_w).backward()
                nn.utils.clip_grad_norm_(ref.parameters(), clip)
                optimizer.step()
                theirs.append(state_of(ref, ref_arch, leave_out=_mixed_op_bn_stats))
    hooks = build_hooks(
        ["pc"], {"pc": {"k": 2, "edge_normalization": True, "alpha_warmup_epochs": begin}}
    )
    ctx = _ctx(
        ours, hooks, epochs=len(epochs), batch_size=2, grad_clip=clip, arch_grad_clip=clip,
        **PC_IMAGENET,
    )  # fmt: skip
    mine, our_norms = _nasrepro(ctx, epochs, leave_out=_mixed_op_bn_stats)
    dev = deviation(mine, theirs)
    assert max(dev[: 2 * begin]) == 0.0, dev  # before the first α step: bit for bit
    same_norms(our_norms, ref_norms, rtol=1e-6)
    n_alpha = (len(epochs) - begin) * 2
    assert ref_norms.acting(clip) == len(epochs) * 2 + n_alpha, ref_norms.calls
    assert_within(dev, 1e-9)


# -- SDARTS-RS: xiangning-chen/SmoothDARTS sota/cnn/train_search.py --perturb_alpha random --------


@pytest.mark.parametrize("space", ["s5", "s1"])
def test_sdarts_rs_trajectory(space: str) -> None:
    """SDARTS-RS on the DARTS space (s5, 7 ops) and on S1: α step first, then α's data
    replaced by softmax(α), `Random_alpha` (U(−ε, ε) per α tensor, clip() per row) and the
    weight step on those probabilities, α restored; ε = 0.03 + (0.3 − 0.03)·epoch/epochs; clip
    over the weights, acting. The uniform draws are replayed on both sides: the reference's
    `Random_alpha` draws from the global generator, set here to the state of nasrepro's noise
    generator for the run's seed and advanced as it draws. The schedule is the script's as it
    runs: `scheduler.step()` at the epoch start under torch >= 1.1, epoch e at cosine(e + 1);
    nasrepro's `lr_schedule: cosine_shifted`. With plain `cosine` the comparison fails."""
    from nasrepro.methods.sdarts import noise_generator

    root = checkout("xiangning-chen/SmoothDARTS")
    clip, seed, eps_max = 0.5, 11, 0.3
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=9)
    theirs: list = []
    replay = noise_generator(seed)
    names = ("sota.cnn.spaces", "sota.cnn.model_search", "optimizers.darts.architect",
             "attacker.perturb")  # fmt: skip
    with reference_modules(root, *names) as (sp, ms, arch, perturb), ClipNorms() as ref_norms:
        torch.manual_seed(0)
        net = ms.Network(4, CLASSES, 3, CE, sp.spaces_dict[space])
        extra = {"include_none": False} if space == "s5" else {}
        ref, ref_arch, ours = _darts_pair(
            net, ("alphas_normal", "alphas_reduce"), "darts" if space == "s5" else space,
            c=4, layers=3, **extra,
        )  # fmt: skip
        args = _args(DARTS_DEFAULTS, clip)
        optimizer, scheduler = _sgd_and_cosine(ref, DARTS_DEFAULTS, len(epochs))
        architect = arch.Architect(ref, args)
        for epoch, batches in enumerate(epochs):
            scheduler.step()
            epsilon_alpha = 0.03 + (eps_max - 0.03) * epoch / len(epochs)
            for x_w, y_w, x_a, y_a in batches:
                ref.train()
                architect.step(x_w, y_w, x_a, y_a, None, optimizer, unrolled=args.unrolled)
                optimizer.zero_grad()
                architect.optimizer.zero_grad()
                ref.softmax_arch_parameters()
                saved = torch.get_rng_state()
                torch.set_rng_state(replay.get_state())
                perturb.Random_alpha(ref, x_w, y_w, epsilon_alpha)
                replay.set_state(torch.get_rng_state())
                torch.set_rng_state(saved)
                optimizer.zero_grad()
                architect.optimizer.zero_grad()
                CE(ref(x_w, updateType="weight"), y_w).backward()
                nn.utils.clip_grad_norm_(ref.parameters(), args.grad_clip)
                optimizer.step()
                ref.restore_arch_parameters()
                theirs.append(state_of(ref, ref_arch))
    initial = [t.clone() for t in ours.state_dict().values()]
    devs = {}
    for schedule in ("cosine_shifted", "cosine"):
        with torch.no_grad():
            for t, v in zip(ours.state_dict().values(), initial, strict=True):
                t.copy_(v)
        hooks = build_hooks(["sdarts_rs"], {"sdarts_rs": {"epsilon_min": 0.03, "epsilon_max": eps_max}})
        ctx = _ctx(
            ours, hooks, epochs=EPOCHS, batch_size=BATCH, grad_clip=clip, lr_schedule=schedule,
            **DARTS_DEFAULTS,
        )  # fmt: skip
        torch.manual_seed(seed)  # the hook seeds its noise from the run's seed
        mine, our_norms = _nasrepro(ctx, epochs)
        devs[schedule] = deviation(mine, theirs)
        if schedule == "cosine_shifted":
            same_norms(our_norms, ref_norms, rtol=1e-12)
    assert ref_norms.acting(clip) == EPOCHS * STEPS, ref_norms.calls
    assert_within(devs["cosine_shifted"], 1e-12)
    assert max(devs["cosine"]) > 1e-3, devs["cosine"]
