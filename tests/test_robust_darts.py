"""RobustDARTS' robustified searches against their definitions (tests/oracle/test_robustdarts.py
compares the shared mechanisms with the authors' code): R-DARTS' grid of searches kept by
validation, the drop-path and cutout schedules of R-DARTS(DP), DARTS-ADA's rollback with a
larger weight decay, and the selection score DARTS-ES and the grids record (the supernet's
eval-mode accuracy on the whole validation split, as RobustDARTS' infer())."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nasrepro.methods.base import MethodHook, build_hooks
from nasrepro.methods.robust_darts import DartsAda, cutout, ramp
from nasrepro.methods.stop_criteria import DartsEs
from nasrepro.report.records import search_valid_acc
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.search.infer import infer
from nasrepro.spaces import build_space
from nasrepro.spaces.darts import search_drop_path
from nasrepro.suite import SearchSettings

CLASSES = 3


class Batches:
    """A tiny search loader: each iter() is the next epoch, batches a function of the epoch."""

    def __init__(self, steps: int = 2, n: int = 4) -> None:
        self.epoch, self.steps, self.n = 0, steps, n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        gen = torch.Generator().manual_seed(100 + self.epoch)
        self.epoch += 1
        for _ in range(self.steps):
            x = torch.randn(self.n, 3, 8, 8, generator=gen, dtype=torch.float64)
            y = torch.randint(0, CLASSES, (self.n,), generator=gen)
            yield x, y, x.flip(0), y.flip(0)


def valid_batches(epoch: int):
    gen = torch.Generator().manual_seed(7)
    return [
        (
            torch.randn(5, 3, 8, 8, generator=gen, dtype=torch.float64),
            torch.randint(0, CLASSES, (5,), generator=gen),
        )
        for _ in range(2)
    ]


def _search(hooks, epochs=2, seed=0, wd=3e-4, resume=None, checkpoint=None):
    seed_everything(seed, True)
    net = build_space("s1").build_supernet(CLASSES, c=2, layers=3).double()
    settings = SearchSettings(
        epochs=epochs, batch_size=4, lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=wd,
        arch_lr=3e-3, arch_weight_decay=1e-3,
    )  # fmt: skip
    ctx = SearchContext(net, settings, hooks, torch.device("cpu"), nn.CrossEntropyLoss())
    ctx.valid_batches = valid_batches
    history = run_search(ctx, Batches(), 2, checkpoint=checkpoint, resume=resume)
    return ctx, history


# --------------------------------------------------------------------------- infer()


def test_infer_is_eval_mode_accuracy_over_the_whole_split_and_leaves_state_alone():
    ctx, _ = _search([], epochs=1)
    net = ctx.supernet
    rng = torch.get_rng_state()
    acc, loss = infer(ctx)
    net.eval()
    with torch.no_grad():
        batches = valid_batches(0)
        logits = torch.cat([net(x) for x, _ in batches])
        y = torch.cat([y for _, y in batches])
    net.train()
    assert acc == pytest.approx(100.0 * float((logits.argmax(1) == y).double().mean()))
    assert loss == pytest.approx(float(nn.functional.cross_entropy(logits, y)))
    assert net.training and torch.equal(torch.get_rng_state(), rng)
    ctx.valid_batches = None
    assert infer(ctx) is None


def test_record_prefers_the_methods_selection_score():
    hist = [{"valid_acc": 40.0}, {"valid_acc": 55.0}]
    assert search_valid_acc({"search": {"history": hist}}) == 55.0
    rec = {"search": {"history": hist, "valid_acc": {"value": 61.5, "epoch": 0}}}
    assert search_valid_acc(rec) == 61.5


# ------------------------------------------------------------------ cutout and drop path


def test_cutout_zeroes_the_clipped_square_around_drawn_centres():
    x = torch.ones(6, 2, 10, 10, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    out = cutout(x, 4, 0.5, gen)
    # the same draws, in the same order: apply ~ U < p, then the y and x centres
    gen = torch.Generator().manual_seed(1)
    apply = torch.rand(6, generator=gen) < 0.5
    ys, xs = torch.randint(0, 10, (6,), generator=gen), torch.randint(0, 10, (6,), generator=gen)
    for i in range(6):
        want = torch.ones(10, 10, dtype=torch.float64)
        if apply[i]:
            y1, y2 = max(int(ys[i]) - 2, 0), min(int(ys[i]) + 2, 10)
            x1, x2 = max(int(xs[i]) - 2, 0), min(int(xs[i]) + 2, 10)
            want[y1:y2, x1:x2] = 0
        assert torch.equal(out[i, 0], want) and torch.equal(out[i, 1], want)
    assert 0 < int(apply.sum()) < 6
    assert torch.equal(cutout(x, 16, 0.0, gen), x)
    # the schedules: value·e/(epochs − 1)
    assert [ramp(0.6, e, 4) for e in range(4)] == pytest.approx([0, 0.2, 0.4, 0.6])


def test_search_drop_path_scales_kept_samples_and_acts_only_in_training():
    x = torch.randn(64, 2, 3, 3, dtype=torch.float64)
    torch.manual_seed(1)
    out = search_drop_path(x, 0.25)
    torch.manual_seed(1)
    mask = torch.empty(64, 1, 1, 1).bernoulli_(0.75).double()
    assert torch.equal(out, x / 0.75 * mask) and 0 < int(mask.sum()) < 64
    net = build_space("s1").build_supernet(CLASSES, c=2, layers=3).double()
    net.drop_path_prob = 0.5
    xs = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    net.eval()
    a = net(xs)
    net.drop_path_prob = 0.0
    assert torch.equal(a, net(xs))  # eval mode: no drop path whatever the probability


# ------------------------------------------------------------------------ R-DARTS grids


def test_l2_grid_runs_are_independent_searches_and_the_best_validation_run_is_kept():
    (hook,) = build_hooks(["rdarts"], {"rdarts": {"weight_decays": [3e-4, 0.5]}})
    ctx, history = _search([hook])
    runs = ctx.state["rdarts"]["runs"]
    assert [r["weight_decay"] for r in runs] == [3e-4, 0.5]
    assert len(history) == 2  # the last run's epochs
    finals = []
    for wd in (3e-4, 0.5):  # each grid point = a plain search at that weight decay
        plain, _ = _search([], wd=wd)
        finals.append([a.detach().clone() for a in plain.supernet.arch_parameters()])
        assert infer(plain)[0] == pytest.approx(runs[len(finals) - 1]["valid_acc"])
    assert not torch.equal(finals[0][0], finals[1][0])
    best = max(range(2), key=lambda k: (runs[k]["valid_acc"], -k))
    assert ctx.state["rdarts"]["selected_run"] == best
    for a, b in zip(ctx.supernet.arch_parameters(), finals[best], strict=True):
        assert torch.equal(a.detach(), b)
    assert ctx.state["search_valid_acc"]["value"] == runs[best]["valid_acc"]


def test_grid_resumes_mid_way_to_the_same_result():
    states = []
    (hook,) = build_hooks(["rdarts"], {"rdarts": {"weight_decays": [3e-4, 3e-3, 3e-2]}})
    ctx, _ = _search([hook], checkpoint=lambda s: states.append(copy.deepcopy(s)))
    assert len(states) == 6 and all("initial" in s for s in states)
    (again,) = build_hooks(["rdarts"], {"rdarts": {"weight_decays": [3e-4, 3e-3, 3e-2]}})
    resumed, _ = _search([again], resume=states[3])  # after run 1's first epoch
    assert resumed.state["rdarts"] == ctx.state["rdarts"]
    for a, b in zip(resumed.supernet.arch_parameters(), ctx.supernet.arch_parameters(), strict=True):
        assert torch.equal(a, b)


class Spy(MethodHook):
    name = "spy"

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_epoch_start(self, ctx):
        self.seen.append(
            {
                "drop": ctx.supernet.drop_path_prob,
                "wd": ctx.w_optimizer.param_groups[0]["weight_decay"],
            }
        )


def test_drop_path_grid_follows_robustdarts_schedules():
    (hook,) = build_hooks(["rdarts"], {"rdarts": {"drop_path_probs": [0.0, 0.4]}})
    spy = Spy()
    ctx, history = _search([hook, spy], epochs=3)
    # run 0 (p = 0): no drop path, no cutout; run 1: p·e/2 and cutout 1.0·e/2
    assert [s["drop"] for s in spy.seen] == pytest.approx([0, 0, 0, 0, 0.2, 0.4])
    cut = [h.diagnostics["rdarts.cutout_prob"] for h in history]
    assert cut == pytest.approx([0, 0.5, 1.0])
    assert {s["wd"] for s in spy.seen} == {3e-4}  # the search's own weight decay
    assert len(ctx.state["rdarts"]["runs"]) == 2


def test_rdarts_arguments_are_checked():
    with pytest.raises(ValueError, match="weight_decays"):
        build_hooks(["rdarts"], {"rdarts": {}})
    with pytest.raises(ValueError, match="drop_path_probs"):
        build_hooks(["rdarts"], {"rdarts": {"drop_path_probs": [1.2]}})


# ------------------------------------------------------------------ DARTS-ES and -ADA


def _scripted(monkeypatch, cls, values):
    """The hook's eigenvalue follows `values` (one per call), not the network."""
    calls = iter(values)
    monkeypatch.setattr(cls, "eigenvalue", lambda self, ctx: next(calls))


ES_ARGS = dict(ev_freq=1, window=1, delta=1, factor=1.3, es_start_epoch=0)


def test_darts_es_scores_the_epoch_it_rolls_back_to(monkeypatch):
    _scripted(monkeypatch, DartsEs, [1.0, 1.0, 2.0, 9.0, 9.0])
    hook = DartsEs(**ES_ARGS)
    ctx, history = _search([hook], epochs=5)
    assert ctx.state["darts_es"]["stop_epoch"] == 1 and len(history) == 3
    score = ctx.state["search_valid_acc"]
    assert score["epoch"] == 1 and score["value"] == hook._valid[1]
    # that is infer() of the supernet as it was at the end of epoch 1
    plain, _ = _search([], epochs=2)
    assert infer(plain)[0] == pytest.approx(score["value"])


def test_darts_ada_rolls_back_with_ten_times_the_weight_decay(monkeypatch):
    # stop at epoch 2 (ratio 2 > 1.3 names epoch 1); after the rollback the values are flat
    _scripted(monkeypatch, DartsEs, [1.0, 1.0, 2.0] + [1.0] * 10)

    class Keep(MethodHook):
        name = "keep"

        def __init__(self):
            self.ends, self.starts = {}, []

        def on_epoch_end(self, ctx):
            self.ends.setdefault(ctx.epoch, copy.deepcopy(ctx.supernet.state_dict()))
            return {}

        def on_epoch_start(self, ctx):
            self.starts.append((ctx.epoch, copy.deepcopy(ctx.supernet.state_dict())))

    ada = DartsAda(**ES_ARGS)
    keep = Keep()
    ctx, history = _search([ada, keep], epochs=5)
    (event,) = ctx.state["darts_ada"]["rollbacks"]
    assert event == {
        "stop_epoch": 1, "triggered_at_epoch": 2, "weight_decay": pytest.approx(3e-3),
        "valid_acc": ada._valid[1] if 1 in ada._valid else None,
    }  # fmt: skip
    assert [h.epoch for h in history] == [0, 1, 2, 3, 4]
    assert [e for e, _ in keep.starts] == [0, 1, 2, 2, 3, 4]
    restarted = keep.starts[3][1]  # epoch 2 again starts from the end of epoch 1
    for k, v in keep.ends[1].items():
        assert torch.equal(restarted[k], v), k
    assert ctx.w_optimizer.param_groups[0]["weight_decay"] == pytest.approx(3e-3)
    assert ctx.state["search_valid_acc"]["epoch"] == 4


def test_darts_ada_stops_raising_at_the_maximum(monkeypatch):
    _scripted(monkeypatch, DartsEs, [1.0 * 2**k for k in range(40)])  # fires at every check
    ada = DartsAda(**ES_ARGS)
    ctx, history = _search([ada], epochs=4)
    events = ctx.state["darts_ada"]["rollbacks"]
    assert [e["weight_decay"] for e in events] == pytest.approx([3e-3, 3e-2])
    assert [h.epoch for h in history] == [0, 1, 2, 3]
    assert "stopped_by" not in ctx.state
