"""nasrepro against the authors' code of the DARTS-type references, from local checkouts.

Each test skips unless its environment variable names a checkout (`_oracle.CHECKOUT_VARS`):
NASREPRO_REF_DARTS (quark0/darts), NASREPRO_REF_ROBUSTDARTS (automl/RobustDARTS),
NASREPRO_REF_PC_DARTS (yuhuixu1993/PC-DARTS), NASREPRO_REF_DARTS_PT (ruocwang/darts-pt);
P-DARTS' progressive search against NASREPRO_REF_PDARTS (chenxin061/pdarts) is test_pdarts_oracle.py.
NASREPRO_REF_SNAS (SNAS-Series/SNAS-Series) drives tests/oracle/test_snas.py (SNAS' and DSNAS'
DARTS-space searches step by step); NASREPRO_REF_SGAS (lightaime/sgas) test_sgas_oracle.py (SGAS);
NASREPRO_REF_FAIRDARTS (xiaomi-automl/FairDARTS) test_fairdarts_oracle.py (FairDARTS).
NASREPRO_REF_RANDOMNAS (liamcli/randomNAS_release) with NASREPRO_REF_RANDOMNAS_DARTS (liamcli/darts)
drives tests/oracle/test_randomnas.py (RandomNAS' DARTS-space search and selection).
The references hard-code `.cuda()`; it is a no-op while they are imported and built here.
Networks run in float64 on the CPU with the reference's weights and α copied across, so the
forward passes must agree bit for bit (same ops, same summation order).
"""

from __future__ import annotations

import pytest
import torch
from _oracle import checkout, copy_by_structure, reference_modules
from torch import nn

from nasrepro.select.pt import _Selector
from nasrepro.spaces import build_space

LAYERS, C, CLASSES = 3, 4, 10


def _randomise_bn(net: nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


_ARCH = ("alphas_normal", "alphas_reduce", "betas_normal", "betas_reduce")


def _double_alphas(ref) -> None:
    """The references keep α as plain tensors (Variables), which .double() leaves alone."""
    names = [n for n in _ARCH if hasattr(ref, n)]
    for n in names:
        setattr(ref, n, getattr(ref, n).detach().double().requires_grad_())
    ref._arch_parameters = [getattr(ref, n) for n in names]


def _alphas(ref, ours, gen: torch.Generator) -> None:
    """Random α (and β) of the reference, copied into nasrepro's supernet."""
    if ref.arch_parameters()[0].dtype != torch.float64:
        _double_alphas(ref)
    with torch.no_grad():
        for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
            a.copy_(torch.randn(a.shape, generator=gen, dtype=a.dtype))
            b.copy_(a)


def _genotype_pairs(g) -> tuple:
    return tuple((op, int(j)) for op, j in g)


def _compare(ref, ours, x: torch.Tensor, seed: int = 0) -> None:
    ref.train()
    ours.train()
    torch.manual_seed(seed)  # S4's noise: both draw the same samples in the same order
    a = ref(x)
    torch.manual_seed(seed)
    b = ours(x)
    assert torch.equal(a if isinstance(a, torch.Tensor) else a[-1], b)


def test_quark0_darts_supernet_and_genotype() -> None:
    root = checkout("quark0/darts") / "cnn"
    with reference_modules(root, "model_search") as (ms,):
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss()).double()
        full = ms.Network(16, 10, 8, nn.CrossEntropyLoss())
        assert sum(p.numel() for p in full.parameters()) == 1_930_618
        space = build_space("darts")
        ours = space.build_supernet(CLASSES, c=C, layers=LAYERS).double()
        _randomise_bn(ref)
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        gen = torch.Generator().manual_seed(1)
        for _ in range(3):
            _alphas(ref, ours, gen)
            _compare(ref, ours, torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64))
            geno, mine = ref.genotype(), space.derive_argmax(ours)
            assert _genotype_pairs(geno.normal) == mine.normal
            assert _genotype_pairs(geno.reduce) == mine.reduce


@pytest.mark.parametrize("name", ["s1", "s2", "s3", "s4"])
def test_robustdarts_spaces_supernet_and_genotype(name: str) -> None:
    root = checkout("automl/RobustDARTS")
    with reference_modules(root, "src.spaces", "src.search.model_search") as (sp, ms):
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss(), sp.spaces_dict[name])
        ref = ref.double()
        space = build_space(name)
        ours = space.build_supernet(CLASSES, c=C, layers=LAYERS).double()
        for kind, key in (("normal", "primitives_normal"), ("reduce", "primitives_reduct")):
            ops = [tuple(space.edge_op_names(kind, e)) for e in range(14)]
            assert ops == [tuple(o) for o in sp.spaces_dict[name][key]]
        _randomise_bn(ref)
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        gen = torch.Generator().manual_seed(2)
        for _ in range(3):
            _alphas(ref, ours, gen)
            _compare(ref, ours, torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64))
            geno, mine = ref.genotype(), space.derive_argmax(ours)
            assert _genotype_pairs(geno.normal) == mine.normal
            assert _genotype_pairs(geno.reduce) == mine.reduce


def test_pc_darts_search_supernets() -> None:
    root = checkout("yuhuixu1993/PC-DARTS")
    space = build_space("darts")
    with reference_modules(root, "model_search", "model_search_imagenet") as (ms, msi):
        # ImageNet search network: 956,512 weights at C=16, 8 layers, 1000 classes
        full = msi.Network(16, 1000, 8, nn.CrossEntropyLoss())
        ours_full = space.build_supernet(
            1000, stem="imagenet", partial_channels=2, edge_normalization=True
        )
        assert sum(p.numel() for p in full.parameters()) == 956_512
        assert sum(p.numel() for p in ours_full.weight_parameters()) == 956_512
        cases = (
            (ms.Network(8, CLASSES, LAYERS, nn.CrossEntropyLoss()), {}, 4, 8),
            (msi.Network(8, CLASSES, LAYERS, nn.CrossEntropyLoss()), {"stem": "imagenet"}, 2, 32),
        )
        gen = torch.Generator().manual_seed(3)
        for ref, extra, k, size in cases:
            ref = ref.double()
            ours = space.build_supernet(
                CLASSES, c=8, layers=LAYERS, partial_channels=k, edge_normalization=True, **extra
            ).double()
            _randomise_bn(ref)
            copy_by_structure(ref, ours, skip_dst=("alphas", "betas"))
            _alphas(ref, ours, gen)
            x = torch.randn(2, 3, size, size, generator=gen, dtype=torch.float64)
            _compare(ref, ours, x)
            geno, mine = ref.genotype(), space.derive_argmax(ours)
            assert _genotype_pairs(geno.normal) == mine.normal
            assert _genotype_pairs(geno.reduce) == mine.reduce


def _darts_pt_network(root, name: str):
    from types import SimpleNamespace

    args = SimpleNamespace(learning_rate=0.025, momentum=0.9, weight_decay=3e-4, grad_clip=5)
    with reference_modules(root, "sota.cnn.spaces", "sota.cnn.model_search_darts_proj") as (
        sp,
        proj,
    ):
        torch.manual_seed(0)
        return proj.DartsNetworkProj(
            C, CLASSES, LAYERS, nn.CrossEntropyLoss(), sp.spaces_dict[name], args
        )


def _project(ref, sel, ops: dict[int, int], pruned: set[int]) -> None:
    """The same decisions on both sides: op choices, then the two kept inputs per node."""
    for t, kind in enumerate(("normal", "reduce")):
        sel.proj.ops[t] = dict(ops)
        sel.proj.pruned[t] = set(pruned)
        for e, k in ops.items():
            ref.project_op(e, k, kind)
        for nid, eids in ref.nid2eids.items():
            if set(eids) & pruned:
                ref.project_edge(nid, [e for e in eids if e not in pruned], kind)


def _pt_pair(root):
    ref = _darts_pt_network(root, "s3")
    space = build_space("s3")
    ours = space.build_supernet(CLASSES, c=C, layers=LAYERS)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(4)
        for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
            a.copy_(torch.randn(a.shape, generator=gen))
            b.copy_(a)
    from nasrepro.datasets import build_search_data

    data = build_search_data("synthetic", root=None, batch_size=4, seed=0, image_size=8)
    from nasrepro.search.engine import SearchContext
    from nasrepro.suite import SearchSettings

    settings = SearchSettings(
        epochs=1, batch_size=4, lr=0.025, lr_min=0.0, momentum=0.9, weight_decay=3e-4,
        arch_lr=3e-4, arch_weight_decay=1e-3,
    )  # fmt: skip
    ctx = SearchContext(ours, settings, [], torch.device("cpu"), nn.CrossEntropyLoss())
    sel = _Selector(space, ctx, data, "magnitude", "ordered", None, 0)
    return ref, space, sel


def test_darts_pt_projected_weights_and_genotype() -> None:
    root = checkout("ruocwang/darts-pt")
    ref, space, sel = _pt_pair(root)
    _project(ref, sel, {0: 1, 1: 2, 5: 2, 6: 1, 8: 1, 10: 2}, {7, 8})  # node 2 keeps 5, 6
    mine = sel.genotype(space)
    for t, kind in enumerate(("normal", "reduce")):
        assert torch.equal(ref.get_projected_weights(kind).detach(), sel.final_weights()[t])
    geno = ref.genotype()
    assert _genotype_pairs(geno.normal) == mine.normal
    assert _genotype_pairs(geno.reduce) == mine.reduce


def test_darts_pt_can_rank_a_pruned_edge_into_its_genotype() -> None:
    """The S3 corner case nasrepro departs from: PT chose `none` on kept edge 3; pruned
    edge 2 ties with it at 0 outside `none` and darts-pt's stable sort takes edge 2."""
    root = checkout("ruocwang/darts-pt")
    ref, space, sel = _pt_pair(root)
    _project(ref, sel, {**{e: 2 for e in range(14)}, 3: 0}, {2, 7, 8, 9, 10, 11})
    theirs = [j for _, j in ref.genotype().normal[2:4]]
    mine = [j for _, j in sel.genotype(space).normal[2:4]]
    assert 0 in theirs  # edge 2 = input 0 of node 1: pruned, yet in darts-pt's genotype
    assert sorted(mine) == [1, 2]  # nasrepro: the two edges PT kept


@pytest.mark.parametrize("epoch", [0, 30])
def test_darts_minus_supernet_with_auxiliary_skip(epoch: int, tmp_path) -> None:
    """DARTS- MixedOp: Σ softmax(α)·op(x) + β·aux(x), aux = identity or FactorizedReduce on
    stride-2 edges, β from DecayScheduler('linear') stepped at the epoch (T_max 50)."""
    import sys

    from nasrepro.methods.base import build_hooks
    from nasrepro.search.engine import SearchContext
    from nasrepro.suite import SearchSettings

    root = checkout("Meituan-AutoML/DARTS-")
    argv = sys.argv
    # DARTS-' args module parses the command line and creates its --save folder at import
    sys.argv = ["train_search.py", "--auxiliary_skip", "--decay", "linear", "--save", str(tmp_path)]
    try:
        with reference_modules(
            root, "src.spaces", "src.search.args", "src.search.model_search"
        ) as (
            sp,
            args,
            ms,
        ):
            args.beta_decay_scheduler.step(epoch)
            beta = args.beta_decay_scheduler.decay_rate
            torch.manual_seed(0)
            ref = ms.Network(
                C, CLASSES, LAYERS, nn.CrossEntropyLoss(), sp.spaces_dict["s3"], args=args.args
            )
            ref = ref.double()
            space = build_space("s3")
            ours = space.build_supernet(CLASSES, c=C, layers=LAYERS).double()
            (hook,) = build_hooks(
                ["darts_minus"], {"darts_minus": {"beta0": 1.0, "decay": "linear"}}
            )
            settings = SearchSettings(
                epochs=50, batch_size=2, lr=0.025, lr_min=0.001, momentum=0.9,
                weight_decay=3e-4, arch_lr=3e-4, arch_weight_decay=1e-3,
            )  # fmt: skip
            ctx = SearchContext(ours, settings, [hook], torch.device("cpu"), nn.CrossEntropyLoss())
            hook.on_build(ctx)
            ctx.epoch = epoch
            hook.on_epoch_start(ctx)
            assert hook.beta == beta == pytest.approx(1.0 * (50 - epoch) / 50)
            ours.double()
            _randomise_bn(ref)
            copy_by_structure(ref, ours, skip_dst=("alphas",))
            gen = torch.Generator().manual_seed(5)
            _alphas(ref, ours, gen)
            _compare(ref, ours, torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64))
    finally:
        sys.argv = argv


def test_lambda_darts_regularized_weight_gradient(tmp_path) -> None:
    """One Λ-DARTS weight step (Lambda-DARTS sota/cnn/train_search.py, corr type `corr`):
    backward at softmax(α), perturbation u = ε·Δ of the normal cells, gradients at P ∓ u,
    grad += λ·(∇L(P−u) − ∇L(P+u))/(2ε). nasrepro's `lambda` hook must leave the same
    weight gradients. Both sides round differently (Δ by another formula, then divided by
    ε = ε0/‖Δ‖ = 1e-6/‖Δ‖): float64 rounding of two gradients of size |g| divided by 2ε gives
    ~1e-16·|g|·‖Δ‖/1e-6; rtol 1e-6 leaves a wide margin."""
    from nasrepro.methods.lambda_darts import LambdaDarts
    from nasrepro.search.engine import SearchContext, build_optimizers
    from nasrepro.suite import SearchSettings

    root = checkout("dr-faustus/Lambda-DARTS")
    lam, eps0 = 0.25, 1e-6
    with reference_modules(root, "sota.cnn.spaces", "sota.cnn.model_search") as (sp, ms):
        torch.manual_seed(0)
        ref = ms.Network(
            C, CLASSES, 5, nn.CrossEntropyLoss(), sp.spaces_dict["s2"],
            epsilon_0=eps0, lambda_=lam, corr_type="corr",
        ).double()  # fmt: skip
        space = build_space("s2")
        ours = space.build_supernet(CLASSES, c=C, layers=5).double()
        _randomise_bn(ref)
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        gen = torch.Generator().manual_seed(6)
        _alphas(ref, ours, gen)
        x = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
        y = torch.randint(0, CLASSES, (4,), generator=gen)
        crit = nn.CrossEntropyLoss()
        # the reference's loop body, up to (not including) its clip and SGD step
        ref.train()
        ref.softmax_arch_parameters()
        for p in ref.parameters():
            p.grad = None
        crit(ref(x, updateType="weight"), y).backward()
        u = ref.get_perturbations()
        fwd = torch.autograd.grad(crit(ref(x, pert=u, updateType="weight"), y), ref.parameters())
        bwd = torch.autograd.grad(
            crit(ref(x, pert=[-v for v in u], updateType="weight"), y), ref.parameters()
        )
        ref.get_reg_grads(fwd, bwd)
        want = [p.grad.detach().clone() for p in ref.parameters()]
    hook = LambdaDarts(lambda_=lam, eps0=eps0)
    settings = SearchSettings(
        epochs=3, batch_size=4, lr=0.025, lr_min=0.001, momentum=0.9,
        weight_decay=3e-4, arch_lr=3e-4, arch_weight_decay=1e-3,
    )  # fmt: skip
    ctx = SearchContext(ours, settings, [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    hook.on_build(ctx)
    build_optimizers(ctx)
    ctx.epoch = 2  # λ_t = λ·2/(3 − 1) = λ
    hook.on_epoch_start(ctx)
    assert hook.lambda_t == lam
    ours.train()
    weights = hook.weight_step_cell_weights(ctx, ours.cell_weights())
    crit(ours(x, cell_weights=weights), y).backward()
    plain = [p.grad.detach().clone() for p in ours.weight_parameters()]
    hook.after_weight_backward(ctx, x, y)
    assert hook.eps == pytest.approx(ref.epsilon, rel=1e-12)
    got = [p.grad for p in ours.weight_parameters()]
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    added = torch.cat([(a - p).reshape(-1) for a, p in zip(got, plain, strict=True)])
    assert added.norm() > 1e-3 * torch.cat([p.reshape(-1) for p in plain]).norm()  # not vacuous
