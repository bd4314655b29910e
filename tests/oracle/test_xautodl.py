"""NAS-Bench-201 against AutoDL-Projects (xautodl 1.0.0) itself.

Both sides run in float64 on the CPU with weights copied across, so the comparisons are
exact where both sides do the same arithmetic in the same order: the supernet forward, the
derived genotype and the discrete networks. The DARTS step compares to a tolerance (see
`test_one_darts_v1_step_matches`).
"""

from __future__ import annotations

import pytest
import torch
from _oracle import copy_by_structure, require_xautodl
from torch import nn

from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
from nasrepro.spaces.nb201 import OPS, Nb201Genotype, Nb201Network, Nb201Supernet
from nasrepro.spaces.nb201 import derive_argmax as nb201_argmax
from nasrepro.suite import SearchSettings

require_xautodl()

from xautodl.models.cell_infers.tiny_network import TinyNetwork  # noqa: E402
from xautodl.models.cell_searchs.genotypes import Structure  # noqa: E402
from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts  # noqa: E402

C, N, CLASSES = 4, 1, 10


def _pair(affine: bool, track: bool = False, seed: int = 0):
    """(xautodl supernet, nasrepro supernet) with the same weights, α and float64 dtype.

    The AutoDL search-cell convs carry a bias when BN is not affine (`bias=not affine`);
    held at zero (no gradient) it adds exactly nothing, and behind batch norm a bias has no
    effect anyway (its gradient is 0 up to rounding).
    """
    torch.manual_seed(seed)
    ref = TinyNetworkDarts(C, N, 4, CLASSES, list(OPS), affine, track).double()
    ours = Nb201Supernet(CLASSES, c=C, n=N, affine=affine, track_running_stats=track).double()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.zero_()
                m.bias.requires_grad_(False)  # stays zero: the bias-free network exactly
        # randomise BN affine parameters too, so that a swapped weight/bias would show
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        ref.arch_parameters.normal_(0, 1)
    copy_by_structure(
        ref, ours, skip=("arch_parameters", *_bias_keys(ref)), skip_dst=("arch_alpha",)
    )
    with torch.no_grad():
        ours.arch_alpha.copy_(ref.arch_parameters)
    return ref, ours


def _bias_keys(ref: nn.Module) -> tuple[str, ...]:
    return tuple(
        f"{name}.bias"
        for name, m in ref.named_modules()
        if isinstance(m, nn.Conv2d) and m.bias is not None
    )


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_supernet_forward_is_bit_identical(affine: bool, train: bool) -> None:
    ref, ours = _pair(affine, track=not train)
    ref.train(train)
    ours.train(train)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    _, logits_ref = ref(x)
    assert torch.equal(ours(x), logits_ref)


def test_supernet_parameter_counts() -> None:
    # AutoDL's current code: search-cell convs have a bias when BN is not affine; darts-pt's
    # copy of the NB201 code (and nasrepro) has none: 1,692,826 vs 1,686,106 at C=16, N=5.
    ref = TinyNetworkDarts(16, 5, 4, 10, list(OPS), False, False)
    ours = Nb201Supernet(10)
    n_ref = sum(p.numel() for p in ref.get_weights())
    n_ours = sum(p.numel() for p in ours.weight_parameters())
    biases = sum(
        p.numel() for n, p in ref.named_parameters() if n.endswith(".bias") and ".edges." in n
    )
    assert (n_ref, n_ours) == (1_692_826, 1_686_106) and n_ref - n_ours == biases
    # with affine BN the convs lose the bias and gain γ/β of the same size: equal counts
    ref_affine = TinyNetworkDarts(16, 5, 4, 10, list(OPS), True, False)
    ours_affine = Nb201Supernet(10, affine=True)
    assert sum(p.numel() for p in ref_affine.get_weights()) == sum(
        p.numel() for p in ours_affine.weight_parameters()
    )


def test_derived_genotype_matches() -> None:
    for seed in range(5):
        ref, ours = _pair(False, seed=seed)
        assert nb201_argmax(ours.arch_alpha).to_arch_str() == ref.genotype().tostr()


@pytest.mark.parametrize(
    "arch",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_discrete_network_is_bit_identical(arch: str, train: bool) -> None:
    torch.manual_seed(1)
    ref = TinyNetwork(C, N, Structure.str2structure(arch), CLASSES).double()
    ours = Nb201Network(Nb201Genotype.from_arch_str(arch), CLASSES, c=C, n=N).double()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    copy_by_structure(ref, ours)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    ref.train(train)
    ours.train(train)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    assert torch.equal(ours(x), ref(x)[1])


def _settings(**kw) -> SearchSettings:
    # AutoDL configs/nas-benchmark/algos/DARTS.config: SGD 0.025 momentum 0.9 Nesterov
    # wd 5e-4, clip 5; α Adam 3e-4, betas (0.5, 0.999), wd 1e-3; DARTS-V1: weights, then α.
    base = dict(
        epochs=1, batch_size=4, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=True,
        weight_decay=5e-4, arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3,
        grad_clip=5.0, alpha_step="after_weights",
    )  # fmt: skip
    return SearchSettings(**{**base, **kw})


def _autodl_v1_step(ref, x_w, y_w, x_a, y_a, clip: float):
    """One step of AutoDL's DARTS-V1 search_func (exps/NAS-Bench-201-algos/DARTS-V1.py):
    weight loss backward, clip_grad_norm_ over network.parameters() (α included), SGD step;
    then α loss backward, Adam step. Optimizers as get_optim_scheduler / DARTS.config."""
    crit = nn.CrossEntropyLoss()
    w_opt = torch.optim.SGD(
        ref.get_weights(), 0.025, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    a_opt = torch.optim.Adam(ref.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ref.train()
    w_opt.zero_grad()
    _, logits = ref(x_w)
    crit(logits, y_w).backward()
    nn.utils.clip_grad_norm_(ref.parameters(), clip)
    w_opt.step()
    a_opt.zero_grad()
    _, logits = ref(x_a)
    crit(logits, y_a).backward()
    a_opt.step()


def _one_step(clip: float, includes_alpha: bool):
    ref, ours = _pair(False, seed=2)
    g = torch.Generator().manual_seed(5)
    x_w, x_a = (torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64) for _ in range(2))
    y_w, y_a = (torch.randint(0, CLASSES, (4,), generator=g) for _ in range(2))
    _autodl_v1_step(ref, x_w, y_w, x_a, y_a, clip)
    ctx = SearchContext(
        supernet=ours,
        settings=_settings(grad_clip=clip, clip_includes_alpha=includes_alpha),
        hooks=[],
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )
    build_optimizers(ctx)
    ours.train()
    weight_step(ctx, x_w, y_w)
    arch_step(ctx, x_w, y_w, x_a, y_a)
    skip = {"arch_parameters", *_bias_keys(ref)}
    ref_w = [v for k, v in ref.state_dict().items() if k not in skip] + [ref.arch_parameters]
    our_w = [v for k, v in ours.state_dict().items() if k != "arch_alpha"] + [ours.arch_alpha]
    return ref_w, our_w


def test_one_darts_v1_step_is_bit_identical_below_the_clip() -> None:
    """Weights then α, as AutoDL's DARTS-V1 loop; this step's gradient norm is 7.97, so a
    clip at 100 does nothing and every weight, BN statistic and α agrees bit for bit."""
    for a, b in zip(*_one_step(100.0, includes_alpha=True), strict=True):
        assert torch.equal(a, b)


def test_one_darts_v1_step_with_clipping_needs_alpha_in_the_norm() -> None:
    """With the clip acting (5 < 7.97), AutoDL's norm also counts α's gradient from the
    weight loss: `search.clip_includes_alpha` reproduces it. The norms are summed in
    another order, so the clip factor may differ in its last bits: |Δw| ≤ a few ulp·|w| (float64: rtol 1e-13, atol
    1e-15 leaves ~100x margin). Without α in the norm the factor differs by far more."""
    ref_w, our_w = _one_step(5.0, includes_alpha=True)
    for a, b in zip(ref_w, our_w, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-15)
    ref_w, our_w = _one_step(5.0, includes_alpha=False)
    worst = max(
        (a - b).abs().max().item()
        for a, b in zip(ref_w, our_w, strict=True)
        if a.is_floating_point()
    )
    assert worst > 1e-8
