"""nasrepro's RobustDARTS family against automl/RobustDARTS, step by step (float64, CPU).

Skipped unless NASREPRO_REF_ROBUSTDARTS names a checkout. The reference is Python-2-era
PyTorch code: it runs here with the default dtype set to float64 (its α are plain tensors and
its unrolled model is built fresh, both in the default dtype), `.cuda()` a no-op and its
`torch.cuda.FloatTensor` (drop-path masks) a CPU float32 tensor.

- the second-order search step (Architect.step, unrolled, then the clipped SGD step) on S1
  and S3, three steps, α and weights;
- the dominant eigenvalue of the α Hessian (Analyzer.compute_Hw + max(eigvals)) against
  DARTS-ES';
- the early-stop decision of utils.EVLocalAvg on 400 random eigenvalue sequences against
  `es_stop_epoch`;
- the search cell's drop path (R-DARTS(DP)): the supernet forward with the same masks;
- DARTS-ADA's `final_iteration` rule.
"""

from __future__ import annotations

import math
import random
import types
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from _oracle import checkout, copy_by_structure, reference_modules
from torch import nn

from nasrepro.methods.robust_darts import DartsAda
from nasrepro.methods.stop_criteria import DartsEs, es_stop_epoch
from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

LAYERS, C, CLASSES = 3, 4, 10
# RobustDARTS src/search/args.py defaults (scripts/DARTS_search.sh: --unrolled)
ARGS = dict(momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_weight_decay=1e-3)
SETTINGS = dict(
    epochs=50, batch_size=2, order=2, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False,
    weight_decay=3e-4, arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3,
    grad_clip=5.0,
)  # fmt: skip


@contextmanager
def _robustdarts(*names: str) -> Iterator[list[types.ModuleType]]:
    root = checkout("automl/RobustDARTS")
    saved_dtype, saved_float = torch.get_default_dtype(), torch.cuda.FloatTensor
    torch.set_default_dtype(torch.float64)
    torch.cuda.FloatTensor = lambda *size: torch.empty(*size, dtype=torch.float32)  # type: ignore[assignment,misc]
    try:
        with reference_modules(root, *names) as mods:
            yield mods
    finally:
        torch.set_default_dtype(saved_dtype)
        torch.cuda.FloatTensor = saved_float  # type: ignore[misc]


def _pair(sp, ms, space_name: str, seed: int):
    torch.manual_seed(seed)
    ref = ms.Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss(), sp.spaces_dict[space_name])
    ours = build_space(space_name).build_supernet(CLASSES, c=C, layers=LAYERS).double()
    copy_by_structure(ref, ours, skip_dst=("alphas",))
    with torch.no_grad():
        for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
            b.copy_(a)
    return ref, ours


@pytest.mark.parametrize("space_name", ["s1", "s3"])
def test_second_order_search_steps_match_robustdarts(space_name: str) -> None:
    with _robustdarts("src.spaces", "src.search.model_search", "src.search.architect") as (
        sp,
        ms,
        ar,
    ):
        ref, ours = _pair(sp, ms, space_name, seed=3)
        architect = ar.Architect(ref, types.SimpleNamespace(**ARGS))
        optimizer = torch.optim.SGD(ref.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
        ctx = SearchContext(
            ours, SearchSettings(**SETTINGS), [], torch.device("cpu"), nn.CrossEntropyLoss()
        )
        build_optimizers(ctx)
        gen = torch.Generator().manual_seed(4)
        for _ in range(3):
            x_w, x_a = (torch.randn(2, 3, 8, 8, generator=gen) for _ in range(2))
            y_w, y_a = (torch.randint(0, CLASSES, (2,), generator=gen) for _ in range(2))
            # train_search.py train(): architect.step, then the weight step
            ref.train()
            architect.step(x_w, y_w, x_a, y_a, 0.025, optimizer, unrolled=True)
            optimizer.zero_grad()
            loss = nn.CrossEntropyLoss()(ref(x_w), y_w)
            loss.backward()
            nn.utils.clip_grad_norm_(ref.parameters(), 5.0)
            optimizer.step()
            arch_step(ctx, x_w, y_w, x_a, y_a)
            weight_step(ctx, x_w, y_w)
        for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
            torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-12, atol=1e-15)
        for a, b in zip(ref.parameters(), ours.weight_parameters(), strict=True):
            torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-12, atol=1e-15)


def test_hessian_eigenvalue_matches_robustdarts_analyzer() -> None:
    with _robustdarts("src.spaces", "src.search.model_search", "src.search.analyze") as (
        sp,
        ms,
        an,
    ):
        ref, ours = _pair(sp, ms, "s2", seed=5)
        gen = torch.Generator().manual_seed(6)
        with torch.no_grad():
            for a, b in zip(ref.arch_parameters(), ours.arch_parameters(), strict=True):
                a.copy_(torch.randn(a.shape, generator=gen))
                b.copy_(a)
        x = torch.randn(4, 3, 8, 8, generator=gen)
        y = torch.randint(0, CLASSES, (4,), generator=gen)
        analyzer = an.Analyzer(types.SimpleNamespace(**ARGS), ref)
        ref.train()
        hessian = analyzer.compute_Hw(x, y, x, y, 0.025, None, False)
        want = float(max(np.linalg.eigvals(hessian.detach().numpy()).real))
    hook = DartsEs()
    ctx = SearchContext(
        ours, SearchSettings(**SETTINGS), [hook], torch.device("cpu"), nn.CrossEntropyLoss()
    )
    hook.after_arch_step(ctx, x, y)
    assert hook.eigenvalue(ctx) == pytest.approx(want, rel=1e-11)


def test_early_stop_decisions_match_ev_local_avg_on_random_sequences() -> None:
    window, ev_freq, epochs, delta, factor, start = 5, 2, 50, 4, 1.3, 10  # args.py defaults
    rng = random.Random(7)
    stops = 0
    with _robustdarts("src.utils") as (ut,):
        for _ in range(400):
            tracker = ut.EVLocalAvg(window, ev_freq, epochs)
            ev_epochs: list[int] = []
            evs: list[float] = []
            ev = rng.uniform(0.05, 0.5)
            growth = rng.uniform(0.9, 1.15)
            for epoch in range(epochs):
                if epoch % ev_freq != 0 and epoch != epochs - 1:
                    continue
                ev *= growth * rng.uniform(0.85, 1.2)
                tracker.update(epoch, ev, f"g{epoch}")
                ev_epochs.append(epoch)
                evs.append(ev)
                if epoch == epochs - 1:
                    break
                tracker.early_stop(epoch, factor, start, delta)
                mine, _ = es_stop_epoch(ev_epochs, evs, window, delta, factor, start)
                if tracker.stop_search:
                    assert mine == tracker.stop_epoch, (ev_epochs, evs)
                    stops += 1
                    break
                assert mine is None, (ev_epochs, evs)
    assert 50 < stops < 350  # both outcomes are exercised


@pytest.mark.parametrize("space_name", ["s1", "s3"])
def test_search_drop_path_matches_robustdarts(space_name: str) -> None:
    with _robustdarts("src.spaces", "src.search.model_search") as (sp, ms):
        ref, ours = _pair(sp, ms, space_name, seed=8)
        ref.drop_path_prob = ours.drop_path_prob = 0.3
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(9))
        ref.train()
        ours.train()
        for seed in (0, 1):
            torch.manual_seed(seed)
            a = ref(x)
            torch.manual_seed(seed)
            b = ours(x)
            assert torch.equal(a, b)
        torch.manual_seed(0)
        dropped = ours(x)
        ours.drop_path_prob = 0.0
        assert not torch.equal(dropped, ours(x))  # the masks act


def test_ada_final_iteration_is_robustdarts_rule() -> None:
    hook = DartsAda(mul_factor=10.0, max_weight_decay=0.03)
    wd, finals = 3e-4, []
    for _ in range(4):
        # train_search.py: round(np.log(args.max_weight_decay) / np.log(args.weight_decay), 1) == 1.
        finals.append(round(float(np.log(0.03) / np.log(wd)), 1) == 1.0)
        assert hook.final_iteration(wd) == finals[-1]
        wd *= 10.0
    assert finals == [False, False, True, False]
    assert math.isclose(3e-4 * 100, 0.03)
