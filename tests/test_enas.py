"""ENAS on NAS-Bench-201 against its definitions (tests/oracle/test_xautodl_enas.py compares it
with AutoDL-Projects step by step): the controller's log-probability and entropy re-derived by
teacher forcing, the epoch baseline rule, the lr's T_max, an exact resume after a kill, and one
trial end to end at the smoke budget of ex_ss_darts (digits, scored in the embedded NB201
table: not a result)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import nasrepro.api as nr
from nasrepro.methods.enas import Controller, Enas
from nasrepro.search.schedule import cosine_lr

ROOT = Path(__file__).resolve().parents[1]


def test_controller_sample_log_prob_and_entropy_by_teacher_forcing():
    torch.manual_seed(0)
    ctl = Controller(6, 5).double()
    torch.manual_seed(1)
    log_prob, entropy, cell = ctl()
    assert len(cell) == 6 and all(0 <= op < 5 for op in cell)
    x, state, lp, h = ctl.input_vars, None, 0.0, 0.0
    for op in cell:
        out, state = ctl.lstm(x, state)
        logits = 2.5 * torch.tanh(ctl.head(out).view(-1) / 5.0)  # tanh_constant·tanh(·/T)
        assert logits.abs().max() <= 2.5
        logp = torch.log_softmax(logits, 0)
        lp += logp[op].item()
        h -= (logp.exp() * logp).sum().item()
        x = ctl.embedding(torch.tensor([[op]]))
    assert log_prob.item() == pytest.approx(lp, abs=1e-12)
    assert entropy.item() == pytest.approx(h, abs=1e-12)
    log_prob.backward()  # the REINFORCE gradient reaches every weight but the last layer's unused
    assert ctl.head.weight.grad is not None and ctl.input_vars.grad is not None


class _Supernet(nn.Module):
    """A stand-in scored by the controller: a fixed batch accuracy per call."""

    num_search_cells = 1

    def __init__(self, accs):
        super().__init__()
        self.accs = iter(accs)

    def forward(self, x, cell_weights):
        right = next(self.accs)  # how many of the 4 labels (all 0) are predicted
        logits = torch.zeros(4, 2, dtype=torch.float64)
        logits[:right, 0] = 1.0
        logits[right:, 1] = 1.0
        return logits


def test_baseline_of_an_epoch_starts_from_the_last_epochs_and_moves_towards_the_reward():
    hook = Enas(train_steps=1, num_aggregate=3, entropy_weight=0.0, bl_dec=0.9)
    hook.controller = Controller(6, 5).double()
    hook.optimizer = torch.optim.Adam(hook.controller.parameters(), lr=1e-3)
    batch = (torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    hook.train_controller(_Supernet([1, 2, 3]), iter([batch] * 3), torch.device("cpu"))
    assert hook.baseline == 0.75  # first epoch: the baseline is the last batch's accuracy
    logs = hook.train_controller(_Supernet([4, 0, 2]), iter([batch] * 3), torch.device("cpu"))
    # ENAS.py: every step restarts from the epoch's baseline b: b - (1 - 0.9)(b - r)
    assert hook.baseline == pytest.approx(0.75 - 0.1 * (0.75 - 0.5))
    assert logs["enas.valid_acc"] == pytest.approx(50.0)


def test_weight_lr_follows_autodl_cosine_with_t_max_10():
    from types import SimpleNamespace

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    settings = SimpleNamespace(lr=0.05, lr_min=0.0005, lr_schedule="cosine", lr_warmup_epochs=0)
    hook = Enas()
    lrs = []
    for epoch in (0, 10, 20, 25):
        ctx = SimpleNamespace(settings=settings, w_optimizer=opt, epoch=epoch)
        hook.on_epoch_start(ctx)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == lrs[2] == 0.05 and lrs[1] == pytest.approx(0.0005)  # a period of 20
    assert lrs[3] == cosine_lr(0.05, 0.0005, 25, 10)
    assert lrs[3] == pytest.approx(0.0005 + 0.0495 * (1 + math.cos(math.pi * 2.5)) / 2)


def test_a_killed_enas_search_resumes_identically():
    from nasrepro.datasets import build_search_data
    from nasrepro.methods.base import build_hooks
    from nasrepro.search.engine import SearchContext, run_search, seed_everything
    from nasrepro.spaces.nb201 import Nb201Supernet
    from nasrepro.suite import SearchSettings

    settings = SearchSettings(
        epochs=3, batch_size=16, lr=0.05, lr_min=0.0005, momentum=0.9, nesterov=True,
        weight_decay=2.5e-4, arch_lr=3e-4, arch_weight_decay=1e-3, steps_per_epoch=2,
        image_size=8, grad_clip=5.0,
    )  # fmt: skip

    def make():
        seed_everything(5, True)
        data = build_search_data(
            "synthetic", root=None, batch_size=16, seed=5, image_size=8,
            options={"n": 64, "num_classes": 3},
        )  # fmt: skip
        ctx = SearchContext(
            supernet=Nb201Supernet(3, c=4, n=1),
            settings=settings,
            hooks=build_hooks(["enas"], {"enas": {"train_steps": 2, "num_aggregate": 2}}),
            device=torch.device("cpu"),
            criterion=nn.CrossEntropyLoss(),
        )
        ctx.valid_batches = data.loader.arch_pass
        return ctx, data

    ctx, data = make()
    full = run_search(ctx, data.loader, data.steps_per_epoch)
    saved = {}

    class Killed(Exception):
        pass

    def checkpoint(state):
        if state["epoch"] == 2:
            buf = io.BytesIO()
            torch.save(state, buf)
            saved["state"] = buf.getvalue()
            raise Killed

    ctx2, data2 = make()
    with pytest.raises(Killed):
        run_search(ctx2, data2.loader, data2.steps_per_epoch, checkpoint=checkpoint)
    ctx3, data3 = make()
    state = torch.load(io.BytesIO(saved["state"]), weights_only=True)
    resumed = run_search(ctx3, data3.loader, data3.steps_per_epoch, resume=state)
    assert [h.train_loss for h in resumed] == [h.train_loss for h in full]
    assert [h.diagnostics for h in resumed] == [h.diagnostics for h in full]
    one, two = ctx.hooks[0], ctx3.hooks[0]
    assert one.baseline == two.baseline
    for a, b in zip(one.controller.state_dict().values(), two.controller.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(ctx.supernet.state_dict().values(), ctx3.supernet.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_enas_trial_at_the_smoke_budget_of_ex_ss_darts():
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import execute_trial

    (trial,) = [
        t
        for t in nr.plan(str(ROOT / "suites" / "ex_ss_darts.yaml"), budget="smoke")
        if t.experiment == "nb201-enas-bn"
    ]
    rec = execute_trial(
        trial, tracker=NullTracker(), experiment_id="x", parent_run_id="p", data_root=None,
        device="cpu",
    )  # fmt: skip
    sel = rec["search"]["selection"]
    assert sel["candidates"] == "controller" and sel["augment"] is True and sel["n"] == 4
    assert rec["genotype"] == sel["genotype"] and "argmax_genotype" not in sel
    assert rec["config"]["method_args"]["enas"]["train_steps"] == 2
    last = rec["search"]["history"][-1]["diagnostics"]
    assert 0.0 <= last["enas.valid_acc"] <= 100.0 and math.isfinite(last["enas.epoch_baseline"])
    assert math.isfinite(rec["metrics"]["cifar10"]["test_acc"]) and rec["budget"] == "smoke"
