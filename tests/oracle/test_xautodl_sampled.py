"""GDAS, SETN and RSPS on NAS-Bench-201 against AutoDL-Projects (xautodl 1.0.0), step by step.

The reference supernets (TinyNetworkGDAS, TinyNetworkSETN, TinyNetworkRANDOM) run in float64
on the CPU with nasrepro's weights and α copied in; their loop bodies are those of
exps/NAS-Bench-201-algos/{GDAS,SETN,RANDOM-NAS}.py `search_func` (the scripts are not in the
package: re-enacted line by line below). Both sides draw from the same seeded global streams
(torch's for GDAS' Gumbel noise, Python's `random` for the uniform paths), so the weights, the
BN statistics and α must agree bit for bit; so must the candidates and the choice of SETN's
`get_best_arch` and RANDOM-NAS' `search_find_best`.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from _oracle import copy_by_structure, require_xautodl
from torch import nn

from nasrepro.methods.sampled_paths import Gdas, Rsps, Setn, tau_schedule
from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
from nasrepro.select.sampled_best import alpha_top, score_candidates
from nasrepro.spaces.nb201 import OPS, Nb201Supernet
from nasrepro.suite import SearchSettings

require_xautodl()

from xautodl.models.cell_searchs.search_model_gdas import TinyNetworkGDAS  # noqa: E402
from xautodl.models.cell_searchs.search_model_random import TinyNetworkRANDOM  # noqa: E402
from xautodl.models.cell_searchs.search_model_setn import TinyNetworkSETN  # noqa: E402

C, N, CLASSES = 4, 1, 10
# configs/nas-benchmark/algos/{GDAS,SETN,RANDOM}.config; α: --arch_learning_rate 3e-4,
# --arch_weight_decay 1e-3, Adam betas (0.5, 0.999)
BASE = dict(
    epochs=250, batch_size=4, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=True,
    weight_decay=5e-4, arch_lr=3e-4, arch_weight_decay=1e-3,
)  # fmt: skip


def _pair(cls, seed: int, track: bool = False):
    torch.manual_seed(seed)
    ref = cls(C, N, 4, CLASSES, list(OPS), False, track).double()
    ours = Nb201Supernet(CLASSES, c=C, n=N, track_running_stats=track).double()
    biases = []
    with torch.no_grad():
        for name, m in ref.named_modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:  # AutoDL: bias=not affine
                m.bias.zero_()
                m.bias.requires_grad_(False)
                biases.append(f"{name}.bias")
        if hasattr(ref, "arch_parameters"):
            ref.arch_parameters.normal_(0, 1)
    copy_by_structure(ref, ours, skip=("arch_parameters", *biases), skip_dst=("arch_alpha",))
    if hasattr(ref, "arch_parameters"):
        with torch.no_grad():
            ours.arch_alpha.copy_(ref.arch_parameters)
    return ref, ours, set(biases)


def _batches(n: int, seed: int, size: int = 4):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, 3, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, CLASSES, (size,), generator=g),
        )
        for _ in range(n)
    ]


def _ctx(ours, hook, **settings):
    ctx = SearchContext(
        ours, SearchSettings(**{**BASE, **settings}), [hook], torch.device("cpu"),
        nn.CrossEntropyLoss(),
    )  # fmt: skip
    build_optimizers(ctx)
    hook.on_build(ctx)
    return ctx


def _ref_optimizers(ref):
    # RANDOM-NAS.py optimizes search_model.parameters() (no α); GDAS/SETN get_weights()
    weights = ref.get_weights() if hasattr(ref, "get_weights") else ref.parameters()
    w = torch.optim.SGD(weights, 0.025, momentum=0.9, weight_decay=5e-4, nesterov=True)
    a = (
        torch.optim.Adam(ref.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        if hasattr(ref, "get_alphas")
        else None
    )
    return w, a


def _same(ref, ours, biases) -> None:
    ref_state = {k: v for k, v in ref.state_dict().items() if k not in biases}
    ref_vals = [v for k, v in ref_state.items() if k != "arch_parameters"]
    our_vals = [v for k, v in ours.state_dict().items() if k != "arch_alpha"]
    assert len(ref_vals) == len(our_vals)
    for a, b in zip(ref_vals, our_vals, strict=True):
        assert torch.equal(a, b)
    if "arch_parameters" in ref_state:
        assert torch.equal(ref.arch_parameters, ours.arch_alpha)


def test_gdas_steps_match_xautodl() -> None:
    ref, ours, biases = _pair(TinyNetworkGDAS, seed=1)
    steps = _batches(6, seed=2)
    w_opt, a_opt = _ref_optimizers(ref)
    crit = nn.CrossEntropyLoss()
    tau = tau_schedule(10, 0.1, 3, 250)  # GDAS.py: tau_max - (tau_max - tau_min)·epoch/(total - 1)
    assert tau == pytest.approx(10 - 9.9 * 3 / 249)
    ref.set_tau(tau)
    torch.manual_seed(7)
    ref.train()
    for (x_w, y_w), (x_a, y_a) in zip(steps[::2], steps[1::2], strict=True):
        # GDAS.py search_func
        w_opt.zero_grad()
        _, logits = ref(x_w)
        crit(logits, y_w).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 5)
        w_opt.step()
        a_opt.zero_grad()
        _, logits = ref(x_a)
        crit(logits, y_a).backward()
        a_opt.step()
    hook = Gdas()
    ctx = _ctx(ours, hook, grad_clip=5.0, clip_includes_alpha=True)
    ctx.epoch = 3
    hook.on_epoch_start(ctx)
    assert hook.tau == tau
    torch.manual_seed(7)
    ours.train()
    for (x_w, y_w), (x_a, y_a) in zip(steps[::2], steps[1::2], strict=True):
        weight_step(ctx, x_w, y_w)
        arch_step(ctx, x_w, y_w, x_a, y_a)
    _same(ref, ours, biases)


def test_setn_steps_and_candidate_choice_match_xautodl() -> None:
    ref, ours, biases = _pair(TinyNetworkSETN, seed=3)
    steps = _batches(6, seed=4)
    w_opt, a_opt = _ref_optimizers(ref)
    crit = nn.CrossEntropyLoss()
    random.seed(11)
    ref.train()
    for (x_w, y_w), (x_a, y_a) in zip(steps[::2], steps[1::2], strict=True):
        # SETN.py search_func: a uniform architecture for the weights (no clipping), then the
        # α step on the softmax-mixed supernet
        sampled_arch = ref.dync_genotype(True)
        ref.set_cal_mode("dynamic", sampled_arch)
        ref.zero_grad()
        _, logits = ref(x_w)
        crit(logits, y_w).backward()
        w_opt.step()
        ref.set_cal_mode("joint")
        ref.zero_grad()
        _, logits = ref(x_a)
        crit(logits, y_a).backward()
        a_opt.step()
    hook = Setn()
    ctx = _ctx(ours, hook, grad_clip=None)
    random.seed(11)
    ours.train()
    for (x_w, y_w), (x_a, y_a) in zip(steps[::2], steps[1::2], strict=True):
        weight_step(ctx, x_w, y_w)
        arch_step(ctx, x_w, y_w, x_a, y_a)
    _same(ref, ours, biases)
    # get_best_arch: return_topK(n) scored on successive validation batches, first argmax
    n = 12
    top = alpha_top(ours.arch_alpha, n)
    ref_top = ref.return_topK(n)
    assert top == [tuple(OPS.index(op) for node in a.nodes for op, _ in node) for a in ref_top]
    valid = _batches(5, seed=5, size=6)
    ref.eval()
    accs = []
    with torch.no_grad():
        for i, arch in enumerate(ref_top):
            ref.set_cal_mode("dynamic", arch)
            _, logits = ref(valid[i % len(valid)][0])
            accs.append(float((logits.argmax(1) == valid[i % len(valid)][1]).double().mean()) * 100)
    mine = score_candidates(ours, top, iter(valid * 3), torch.device("cpu"))
    assert mine == accs and int(np.argmax(mine)) == int(np.argmax(accs))
    assert len(set(accs)) > 1


def test_rsps_steps_and_random_candidates_match_xautodl() -> None:
    ref, ours, biases = _pair(TinyNetworkRANDOM, seed=6)
    steps = _batches(3, seed=7)
    w_opt, _ = _ref_optimizers(ref)
    crit = nn.CrossEntropyLoss()
    random.seed(13)
    ref.train()
    for x_w, y_w in steps:  # RANDOM-NAS.py search_func: weights only, clipped at 5
        ref.random_genotype(True)
        w_opt.zero_grad()
        _, logits = ref(x_w)
        crit(logits, y_w).backward()
        nn.utils.clip_grad_norm_(ref.parameters(), 5)
        w_opt.step()
    hook = Rsps()
    ctx = _ctx(ours, hook, grad_clip=5.0)
    assert hook.update_alpha(ctx) is False
    random.seed(13)
    ours.train()
    for x_w, y_w in steps:
        weight_step(ctx, x_w, y_w)
    _same(ref, ours, biases)
    # search_find_best: n random cells, one validation batch each, first argmax
    random.seed(17)
    archs = [ref.random_genotype(True) for _ in range(8)]
    random.seed(17)
    from nasrepro.methods.sampled_paths import uniform_path

    cells = [tuple(uniform_path(6, 5).index.tolist()) for _ in range(8)]
    assert cells == [tuple(OPS.index(op) for node in a.nodes for op, _ in node) for a in archs]
