"""The progressive search (search/stages.py) and P-DARTS' genotype (select/pdarts.py)
against their definitions on hand-computed cases; the authors' code: tests/oracle/test_pdarts_oracle.py."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch import nn

from nasrepro.search.engine import SearchContext
from nasrepro.search.stages import prune_edges, run_stages, skip_dropout_rate
from nasrepro.select.pdarts import pdarts_cells
from nasrepro.spaces import build_space
from nasrepro.spaces.darts import SkipDropout
from nasrepro.suite import SearchSettings


def test_skip_dropout_schedule_hand_computed() -> None:
    # P-DARTS' last CIFAR-10 stage: p0 = 0.7, 25 epochs, α frozen for 10
    assert skip_dropout_rate(0.7, 0, 25, 10) == pytest.approx(0.7 * 24 / 25)  # 0.672
    assert skip_dropout_rate(0.7, 9, 25, 10) == pytest.approx(0.42)
    assert skip_dropout_rate(0.7, 10, 25, 10) == pytest.approx(0.7)  # jumps back up
    assert skip_dropout_rate(0.7, 15, 25, 10) == pytest.approx(0.7 / math.e)
    assert skip_dropout_rate(0.0, 3, 25, 10) == 0.0


def test_prune_drops_smallest_first_index_on_ties() -> None:
    ops = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
           "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")  # fmt: skip
    probs = torch.tensor([[0.1, 0.3, 0.05, 0.2, 0.05, 0.1, 0.15, 0.05],
                          [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.15]])  # fmt: skip
    kept = prune_edges(probs, [ops, ops], 5)
    # row 0: the three 0.05 go; row 1: 0.05, then the first two of the five 0.1
    assert kept[0] == ("none", "max_pool_3x3", "skip_connect", "sep_conv_5x5", "dil_conv_3x3")
    assert kept[1] == ("none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_5x5")
    assert prune_edges(probs[:1, :3], [ops[:3]], 3) == (ops[:3],)
    with pytest.raises(ValueError, match="cannot keep 4"):
        prune_edges(probs[:1, :3], [ops[:3]], 4)


SK, S3, D3 = "skip_connect", "sep_conv_3x3", "dil_conv_3x3"


def _hand_case() -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """Normal cell: ops (skip, sep3, dil3) everywhere, four skips won; reduce cell: `none`
    the strongest everywhere, every other edge tied."""
    rows = {0: [0.6, 0.3, 0.1], 1: [0.5, 0.2, 0.3], 2: [0.7, 0.2, 0.1], 3: [0.1, 0.8, 0.1],
            4: [0.2, 0.3, 0.5], 5: [0.1, 0.85, 0.05], 9: [0.9, 0.05, 0.05],
            10: [0.05, 0.05, 0.9]}  # fmt: skip
    normal = [rows.get(e, [0.1, 0.1, 0.8] if e < 9 else [0.4, 0.3, 0.3]) for e in range(14)]
    reduce = [[0.7, 0.1, 0.2]] * 14
    return (torch.tensor(normal, dtype=torch.float64), torch.tensor(reduce, dtype=torch.float64),
            [(SK, S3, D3)] * 14, [("none", "max_pool_3x3", S3)] * 14)  # fmt: skip


def test_pdarts_genotype_hand_computed() -> None:
    n, r, n_ops, r_ops = _hand_case()
    free, before = pdarts_cells(n, r, n_ops, r_ops, None)
    assert before == 0  # no limit: nothing counted
    # per node the two strongest edges (later edge on ties), in edge order
    assert free.normal == ((SK, 0), (SK, 1), (SK, 0), (S3, 1), (S3, 0), (D3, 3), (SK, 0), (D3, 1))
    # none never chosen; all kept ops tie at 0.2: the last two edges of each node
    assert free.reduce == ((S3, 0), (S3, 1), (S3, 1), (S3, 2), (S3, 2), (S3, 3), (S3, 3), (S3, 4))
    two, before = pdarts_cells(n, r, n_ops, r_ops, 2)
    assert before == 4
    # the weakest skips go first: edge 1 (0.5) -> dil3, then edge 0 (0.6) -> sep3
    assert two.normal == ((S3, 0), (D3, 1), (SK, 0), (S3, 1), (S3, 0), (D3, 3), (SK, 0), (D3, 1))
    assert two.reduce == free.reduce  # the limit is the normal cell's only
    one, _ = pdarts_cells(n, r, n_ops, r_ops, 1)
    # edge 2 (0.7) loses its skip: sep3 at 0.2, so node 3 keeps edges 3 and 4 instead
    assert one.normal == ((S3, 0), (D3, 1), (S3, 1), (D3, 2), (S3, 0), (D3, 3), (SK, 0), (D3, 1))


def _settings(**extra: Any) -> SearchSettings:
    stages = [{"layers": 3, "skip_dropout": 0.5, "frozen_epochs": 1},
              {"layers": 4, "ops_per_edge": 3, "skip_dropout": 0.3, "frozen_epochs": 1}]
    return SearchSettings(
        epochs=2, batch_size=4, lr=0.05, lr_min=0.0, momentum=0.9, weight_decay=3e-4,
        arch_lr=0.05, arch_weight_decay=1e-3, alpha_step="before_weights", deterministic=False,
        stages=stages, **extra,
    )  # fmt: skip


def _search(resume: dict | None = None, saves: list | None = None, seed: int = 0) -> tuple:
    torch.manual_seed(seed)
    space = build_space("darts")
    gen = torch.Generator().manual_seed(1)
    batches = [tuple(t for _ in range(2) for t in (
        torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64),
        torch.randint(0, 10, (4,), generator=gen))) for _ in range(2)]  # fmt: skip
    built: list = []

    def build(args: dict[str, Any]) -> Any:
        built.append(space.build_supernet(10, c=4, **args).double())
        return built[-1]

    ctx = SearchContext(
        supernet=space.build_supernet(10, c=4, layers=3).double(), settings=_settings(),
        hooks=[], device=torch.device("cpu"), criterion=nn.CrossEntropyLoss(),
    )  # fmt: skip
    save = None if saves is None else (lambda s: saves.append(copy.deepcopy(s)))
    history = run_stages(ctx, build, batches, 2, checkpoint=save, resume=resume)
    return history, built, ctx


def test_stages_freeze_alpha_prune_and_set_dropout() -> None:
    history, built, ctx = _search()
    assert [len(n.cells) for n in built] == [3, 4] and ctx.supernet is built[-1]
    assert [h.epoch for h in history] == [0, 1, 2, 3]
    assert [h.diagnostics["stage"] for h in history] == [0, 0, 1, 1]
    assert [h.diagnostics["skip_dropout"] for h in history] == pytest.approx(
        [0.5 * 1 / 2, 0.5, 0.3 * 1 / 2, 0.3]
    )
    assert all(math.isnan(history[i].valid_loss) for i in (0, 2))  # α frozen: no α step
    assert not math.isnan(history[1].valid_loss)
    # stage 2 mixes, per edge, stage 1's three ops of largest final softmax(α), in order
    last = {k: torch.tensor(v) for k, v in history[1].alpha.items()}
    full = build_space("darts").build_supernet(10, c=4, layers=3).cell_ops
    for name in ("normal", "reduce"):
        expect = prune_edges(last[name], full.of(name == "reduce"), 3)
        assert built[1].cell_ops.of(name == "reduce") == expect
        # the history keeps the full op list: pruned ops at 0
        for e, row in enumerate(history[3].alpha[name]):
            zeros = [op for op, p in zip(full.of(False)[e], row, strict=True) if p == 0.0]
            assert len(zeros) == 5 and not set(zeros) & set(expect[e])
    rates = {m.p for m in built[1].modules() if isinstance(m, SkipDropout)}
    assert rates == {0.3}
    assert not any(isinstance(m, SkipDropout) for m in build_space("darts").build_supernet(
        10, c=4, layers=3).modules())  # fmt: skip


@pytest.mark.parametrize("at", [1, 2])  # after stage 1 ended; inside stage 2
def test_stages_resume_from_checkpoint(at: int) -> None:
    saves: list = []
    history, _, ctx = _search(saves=saves)
    assert [s["stage"] for s in saves] == [0, 0, 1, 1]
    assert [s["finished"] for s in saves] == [False, False, False, True]
    again, _, ctx2 = _search(resume=saves[at], seed=99)  # another process's RNG
    assert [h.alpha for h in again] == [h.alpha for h in history]
    for a, b in zip(ctx.supernet.arch_parameters(), ctx2.supernet.arch_parameters(), strict=True):
        assert torch.equal(a, b)
    done, _, _ = _search(resume=saves[-1], seed=5)  # a finished search is not run again
    assert [h.alpha for h in done] == [h.alpha for h in history]


def test_stage_settings_validated() -> None:
    with pytest.raises(ValueError, match="frozen_epochs"):
        SearchSettings(**{**_settings().model_dump(), "stages": [{"frozen_epochs": 2}]})
    with pytest.raises(ValueError, match="first stage"):
        SearchSettings(**{**_settings().model_dump(), "stages": [{"ops_per_edge": 3}]})
    assert _settings().total_epochs() == 4
