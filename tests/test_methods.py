"""Method hooks: DARTS-, RF-DARTS, PC-DARTS, EX-DARTS and fix-α against their definitions."""

import math

import pytest
import torch
from torch import nn

from nasrepro.datasets import build_search_data
from nasrepro.methods.base import MethodHook
from nasrepro.methods.darts_minus import (
    AuxiliaryBranch,
    DartsMinus,
    beta_at,
    cosine_beta,
    linear_beta,
    step_beta,
)
from nasrepro.methods.exchanged_lr import ExchangedLr, exchanged_rates
from nasrepro.methods.fix_alpha import FixAlpha
from nasrepro.methods.pc_darts import PcDarts
from nasrepro.methods.random_features import RandomFeatures, trainable_names
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.suite import SearchSettings

SETTINGS = dict(
    epochs=2,
    batch_size=8,
    lr=0.025,
    lr_min=0.001,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    arch_lr=3e-4,
    arch_weight_decay=1e-3,
    steps_per_epoch=2,
    image_size=8,
)


def _ctx(net, hooks, **overrides) -> SearchContext:
    return SearchContext(
        supernet=net,
        settings=SearchSettings(**{**SETTINGS, **overrides}),
        hooks=hooks,
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )


def _data():
    return build_search_data(
        "synthetic",
        root=None,
        batch_size=SETTINGS["batch_size"],
        seed=0,
        image_size=8,
        options={"n": 48, "num_classes": 3},
    )


def _search(hooks, *, affine=False, **overrides):
    """A tiny seeded NB201 search (c=4, one cell per stage) on the synthetic data."""
    seed_everything(0, deterministic=True)
    data = _data()
    net = Nb201Supernet(data.num_classes, c=4, n=1, affine=affine)
    ctx = _ctx(net, hooks, **overrides)
    history = run_search(ctx, data.loader, data.steps_per_epoch)
    return ctx, history


def _fresh(affine: bool) -> Nb201Supernet:
    """The supernet _search starts from (same seed, same construction order), untrained."""
    seed_everything(0, deterministic=True)
    _data()
    return Nb201Supernet(3, c=4, n=1, affine=affine)


def _init_weights(affine: bool) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in _fresh(affine).named_weight_parameters()}


# --- DARTS-


@pytest.mark.parametrize("beta0", [1.0, 0.7])
def test_linear_beta_is_the_reference_formula_and_never_reaches_zero(beta0):
    # DecayScheduler 'linear', T_max = 50, T_start = 0, stepped at epochs 0..49
    values = [beta_at(e, 50, beta0=beta0, decay="linear") for e in range(50)]
    for e, v in enumerate(values):
        assert v == pytest.approx(beta0 * (50 - e) / 50, rel=1e-12)
    assert values[0] == beta0
    assert values[-1] == pytest.approx(0.02 * beta0) and values[-1] > 0  # paper: "to 0"
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_cosine_and_step_beta():
    for e in range(50):
        assert beta_at(e, 50, beta0=1.0, decay="cosine") == pytest.approx(
            (1 + math.cos(math.pi * e / 50)) / 2, rel=1e-12
        )
    # §4.4 "step decay at epoch 45": default step at 9/10 of the epochs
    steps = [beta_at(e, 50, beta0=1.0, decay="step") for e in range(50)]
    assert steps == [1.0] * 45 + [0.0] * 5
    assert [beta_at(e, 10, beta0=0.5, decay="step", step_epoch=3) for e in range(5)] == [
        0.5,
        0.5,
        0.5,
        0.0,
        0.0,
    ]
    assert step_beta(1.0, 44, 45) == 1.0 and step_beta(1.0, 45, 45) == 0.0
    assert [beta_at(e, 50, beta0=1.0, decay="constant") for e in (0, 25, 49)] == [1.0] * 3


@pytest.mark.parametrize("epochs", [150, 200])
def test_decay_over_the_last_epochs_table8(epochs):
    # Table 8: "we keep β = 1 all the way until for last 50 epochs we decay β to 0"
    start = epochs - 50
    lin = [beta_at(e, epochs, beta0=1.0, decay="linear", decay_epochs=50) for e in range(epochs)]
    assert lin[:start] == [1.0] * start
    for e in range(start, epochs):
        assert lin[e] == pytest.approx((epochs - e) / 50, rel=1e-12)
    assert lin[-1] == pytest.approx(0.02)
    cos = [beta_at(e, epochs, beta0=1.0, decay="cosine", decay_epochs=50) for e in range(epochs)]
    assert cos[:start] == [1.0] * start
    for e in range(start, epochs):
        assert cos[e] == pytest.approx((1 + math.cos(math.pi * (e - start) / 50)) / 2)
    # the pure helpers agree with beta_at
    assert linear_beta(1.0, start + 10, epochs, start) == lin[start + 10]
    assert cosine_beta(1.0, start + 10, epochs, start) == cos[start + 10]


def test_aux_skip_adds_beta_x_to_every_nb201_edge():
    torch.manual_seed(0)
    net = Nb201Supernet(3, c=4, n=1)
    edges = net.mixed_ops()
    assert len(edges) == 18  # 3 search cells x 6 edges
    weights = torch.softmax(torch.randn(5), dim=-1)
    inputs = {id(m): torch.randn(2, m.ops[2][1].in_channels, 6, 6) for m in edges}
    before = {id(m): m(inputs[id(m)], weights) for m in edges}
    hook = DartsMinus(beta0=1.0, decay="linear")
    ctx = _ctx(net, [hook], epochs=10)
    hook.on_build(ctx)
    ctx.epoch = 3
    hook.on_epoch_start(ctx)
    assert hook.beta == pytest.approx(0.7)  # (10 - 3) / 10
    for m in edges:
        assert len(m.extras) == 1 and isinstance(m.extras[0], AuxiliaryBranch)
        x = inputs[id(m)]
        assert torch.allclose(m(x, weights) - before[id(m)], 0.7 * x, atol=1e-6)


def test_conv1x1_aux_starts_as_identity_and_trains_with_the_weights():
    torch.manual_seed(0)
    hook = DartsMinus(aux="conv1x1", decay="cosine")
    net = Nb201Supernet(3, c=4, n=1)
    edge = net.mixed_ops()[0]
    x, w = torch.randn(2, 4, 6, 6), torch.softmax(torch.randn(5), dim=-1)
    before = edge(x, w)
    ctx = _ctx(net, [hook], epochs=4)
    hook.on_build(ctx)
    conv = edge.extras[0].op
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.bias is None
    assert torch.allclose(edge(x, w) - before, x, atol=1e-6)  # β = β0 = 1 at epoch 0
    ids = {id(p) for p in net.weight_parameters()}
    assert id(conv.weight) in ids  # so build_optimizers (after on_build) trains it


def test_darts_minus_beta_per_epoch_in_a_search():
    hook = DartsMinus(beta0=1.0, decay="linear")
    _, history = _search([hook], epochs=3)
    betas = [h.diagnostics["darts_minus.beta"] for h in history]
    assert betas == pytest.approx([1.0, 2 / 3, 1 / 3])


def test_stride2_aux_is_factorized_reduce_on_darts_edges():
    darts = pytest.importorskip("nasrepro.spaces.darts")
    ops = pytest.importorskip("nasrepro.spaces.darts_ops")
    torch.manual_seed(0)
    for k in (1, 2):  # plain and PC-DARTS partial-channel edges
        net = darts.DartsSupernet(3, c=4, layers=3, partial_channels=k)
        hook = DartsMinus()
        hook.on_build(_ctx(net, [hook], epochs=4))
        reductions = [m for m in net.mixed_ops() if m.stride == 2]
        assert reductions
        for m in reductions:
            aux = m.extras[0].op
            assert isinstance(aux, ops.FactorizedReduce) and not aux.bn.affine
            x = torch.randn(2, m.channels, 8, 8)
            w = torch.softmax(torch.randn(len(m.ops)), dim=-1)
            assert aux(x).shape == m(x, w).shape == (2, m.channels, 4, 4)
        assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


# --- RF-DARTS

# The tiny NB201 supernet (c=4, n=1): search cells 0, 2, 4; ResNet blocks 1, 3.
OUT_BN = [
    "body.stem.1.weight",
    "body.stem.1.bias",
    *[
        f"body.cells.{i}.{s}.2.{p}"
        for i in (1, 3)
        for s in ("conv_a", "conv_b")
        for p in ("weight", "bias")
    ],
    "body.lastact.0.weight",
    "body.lastact.0.bias",
]
OUT_CONV = [
    "body.stem.0.weight",
    *[f"body.cells.{i}.{s}.1.weight" for i in (1, 3) for s in ("conv_a", "conv_b", "downsample")],
]
CLASSIFIER = ["body.classifier.weight", "body.classifier.bias"]
# nor_conv_1x1 (op 2) and nor_conv_3x3 (op 3) = ReLU(0) Conv(1) BN(2) on 6 edges per cell
CELL_CONV = [
    f"body.cells.{c}.edges.{e}.ops.{o}.1.weight"
    for c in (0, 2, 4)
    for e in range(6)
    for o in (2, 3)
]
CELL_BN = [
    f"body.cells.{c}.edges.{e}.ops.{o}.2.{p}"
    for c in (0, 2, 4)
    for e in range(6)
    for o in (2, 3)
    for p in ("weight", "bias")
]
EXPECTED = {
    # option: (cell BN affine, trained names, tensor count)
    "A": (True, OUT_BN + OUT_CONV + CLASSIFIER + CELL_CONV + CELL_BN, 12 + 7 + 2 + 36 + 72),
    "B": (False, OUT_BN + OUT_CONV + CLASSIFIER + CELL_CONV, 12 + 7 + 2 + 36),
    "C": (True, OUT_BN + CELL_BN, 12 + 72),
    "D": (False, OUT_BN, 12),
}


@pytest.mark.parametrize("option", ["A", "B", "C", "D"])
def test_rf_trainable_sets_per_option(option):
    affine, names, count = EXPECTED[option]
    hook = RandomFeatures(option=option)
    assert hook.configure_space({"c": 4}) == {"c": 4, "affine": affine}
    net = Nb201Supernet(3, c=4, n=1, affine=affine)
    assert len(names) == count
    assert set(trainable_names(net, option)) == set(names)
    chosen = hook.trainable_weights(_ctx(net, [hook]), net.weight_parameters())
    named = dict(net.named_weight_parameters())
    assert {id(p) for p in chosen} == {id(named[n]) for n in names}
    assert {n for n, p in named.items() if p.requires_grad} == set(names)
    if option == "C":
        # BN numel: cells 2·2·6·(4 + 8 + 16) = 672; stem 8, blocks 2·2·8 + 2·2·16 = 96, head 32
        assert hook.n_params == 672 + 8 + 96 + 32 == 808
    if option == "B":  # exactly the DARTS baseline: every weight of the affine=False supernet
        assert len(chosen) == len(net.weight_parameters())


def test_rf_train_classifier_variant():
    net = Nb201Supernet(3, c=4, n=1, affine=True)
    assert set(trainable_names(net, "C", train_classifier=True)) == set(
        OUT_BN + CELL_BN + CLASSIFIER
    )


def test_rf_rejects_contradicting_or_missing_affine():
    with pytest.raises(ValueError, match="method 'rf': option C needs space argument affine=True"):
        RandomFeatures(option="C").configure_space({"affine": False})
    hook = RandomFeatures(option="A")
    net = Nb201Supernet(3, c=4, n=1, affine=False)
    with pytest.raises(ValueError, match="needs BN affine weights"):
        hook.trainable_weights(_ctx(net, [hook]), net.weight_parameters())


def test_rf_search_keeps_convolutions_at_init():
    ctx, history = _search([RandomFeatures(option="C")], affine=True)
    net = ctx.supernet
    fresh = _init_weights(affine=True)
    names = set(OUT_BN + CELL_BN)
    moved = {n for n, p in net.named_weight_parameters() if not torch.equal(p, fresh[n])}
    assert moved and moved <= names  # only BN affine weights changed
    assert history[-1].diagnostics["rf.trainable_tensors"] == 84


# --- PC-DARTS


def test_pc_configures_the_space():
    assert PcDarts().configure_space({"c": 16}) == {
        "c": 16,
        "partial_channels": 4,
        "edge_normalization": True,
        "channel_shuffle": True,
    }
    assert PcDarts(k=2, edge_normalization=False, shuffle=False).configure_space({}) == {
        "partial_channels": 2,
        "edge_normalization": False,
        "channel_shuffle": False,
    }
    with pytest.raises(ValueError, match="method 'pc': space argument partial_channels=2"):
        PcDarts(k=4).configure_space({"partial_channels": 2})


def test_pc_freezes_alpha_during_warmup():
    init = torch.softmax(_fresh(affine=False).arch_alpha, dim=-1).tolist()
    _, history = _search([PcDarts(alpha_warmup_epochs=1)])
    assert history[0].alpha["cell"] == init  # epoch 0: α untouched
    assert history[1].alpha["cell"] != init  # epoch 1: α updated
    assert [h.diagnostics["pc.alpha_frozen"] for h in history] == [1.0, 0.0]
    assert math.isnan(history[0].valid_loss) and not math.isnan(history[1].valid_loss)


def test_pc_warmup_must_leave_alpha_updates():
    hook = PcDarts(alpha_warmup_epochs=2)
    with pytest.raises(ValueError, match="method 'pc': alpha_warmup_epochs=2 leaves no"):
        hook.on_build(_ctx(Nb201Supernet(3, c=4, n=1), [hook], epochs=2))


# --- EX-DARTS


class LrProbe(MethodHook):
    """Records the optimizers' learning rates at every epoch end."""

    name = "lr_probe"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, float]] = []

    def on_epoch_end(self, ctx):
        w, a = ctx.w_optimizer.param_groups[0]["lr"], ctx.a_optimizer.param_groups[0]["lr"]
        self.seen.append((w, a))
        return {}


def test_ex_exchanges_the_learning_rates():
    assert exchanged_rates(0.025, 3e-4) == (3e-4, 0.025)  # Exp.5: 0.025→0.0003, 0.0003→0.025
    probe = LrProbe()
    _, history = _search([ExchangedLr(), probe])
    assert probe.seen == [(3e-4, 0.025), (3e-4, 0.025)]  # constant, every epoch
    assert history[-1].diagnostics == {"ex.weight_lr": 3e-4, "ex.arch_lr": 0.025}
    plain = LrProbe()
    _search([plain])
    assert plain.seen[0] == (0.025, 3e-4) and plain.seen[1][0] < 0.025  # S.1, cosine


# --- fix-α


def test_fix_alpha_keeps_alpha_zero():
    ctx, history = _search([FixAlpha()])
    assert torch.count_nonzero(ctx.supernet.arch_alpha) == 0
    assert [h.diagnostics["fix_alpha.alpha_abs_max"] for h in history] == [0.0, 0.0]
    fresh = _init_weights(affine=False)
    assert any(not torch.equal(p, fresh[n]) for n, p in ctx.supernet.named_weight_parameters())


def test_fix_alpha_init_variant_keeps_the_random_init():
    init = _fresh(affine=False).arch_alpha.detach()
    ctx, _ = _search([FixAlpha(value="init")])
    assert torch.equal(ctx.supernet.arch_alpha.detach(), init) and init.abs().max() > 0


# --- all


def test_methods_compose_and_log_their_diagnostics():
    hooks = [
        DartsMinus(aux="conv1x1"),
        RandomFeatures(option="C"),
        PcDarts(alpha_warmup_epochs=1),
        ExchangedLr(),
        FixAlpha(),
    ]
    _, history = _search(hooks, affine=True)
    keys = {
        "darts_minus.beta",
        "rf.trainable_tensors",
        "rf.trainable_params",
        "pc.alpha_frozen",
        "ex.weight_lr",
        "ex.arch_lr",
        "fix_alpha.alpha_abs_max",
    }
    for log in history:
        assert keys <= set(log.diagnostics)
    # rf (after darts_minus' on_build) also froze the auxiliary 1x1 convolutions
    assert history[0].diagnostics["rf.trainable_tensors"] == 84


def test_methods_are_registered():
    from nasrepro import catalog

    for name, cls in [
        ("darts_minus", DartsMinus),
        ("rf", RandomFeatures),
        ("pc", PcDarts),
        ("ex", ExchangedLr),
        ("fix_alpha", FixAlpha),
    ]:
        assert catalog.get("method", name) is cls


@pytest.mark.parametrize(
    "cls, args, message",
    [
        (DartsMinus, {"beta0": -1.0}, "method 'darts_minus': beta0"),
        (DartsMinus, {"beta0": "1"}, "method 'darts_minus': beta0"),
        (DartsMinus, {"decay": "exp"}, "method 'darts_minus': decay"),
        (DartsMinus, {"aux": "conv3x3"}, "method 'darts_minus': aux"),
        (DartsMinus, {"decay_epochs": 0}, "method 'darts_minus': decay_epochs"),
        (DartsMinus, {"decay": "step", "decay_epochs": 5}, "method 'darts_minus': decay_epochs"),
        (DartsMinus, {"step_epoch": 5}, "method 'darts_minus': step_epoch"),
        (RandomFeatures, {"option": "E"}, "method 'rf': option"),
        (RandomFeatures, {"train_classifier": 1}, "method 'rf': train_classifier"),
        (PcDarts, {"k": 0}, "method 'pc': k"),
        (PcDarts, {"edge_normalization": "yes"}, "method 'pc': edge_normalization"),
        (PcDarts, {"alpha_warmup_epochs": -1}, "method 'pc': alpha_warmup_epochs"),
        (ExchangedLr, {"lr": 0.1}, "method 'ex' takes no arguments"),
        (DartsMinus, {"beta_0": 1.0}, "method 'darts_minus': unknown argument"),
        (PcDarts, {"K": 2}, "method 'pc': unknown argument"),
        (RandomFeatures, {"options": "A"}, "method 'rf': unknown argument"),
        (FixAlpha, {"alpha": 0}, "method 'fix_alpha': unknown argument"),
        (FixAlpha, {"value": "one"}, "method 'fix_alpha': value"),
    ],
)
def test_invalid_args_raise(cls, args, message):
    with pytest.raises(ValueError, match=message):
        cls(**args)


def test_darts_minus_epoch_args_checked_against_the_search():
    hook = DartsMinus(decay_epochs=5)
    with pytest.raises(ValueError, match="decay_epochs=5 exceeds the 4 search epochs"):
        hook.on_build(_ctx(Nb201Supernet(3, c=4, n=1), [hook], epochs=4))
    hook = DartsMinus(decay="step", step_epoch=4)
    with pytest.raises(ValueError, match="step_epoch=4 must be below the 4 search epochs"):
        hook.on_build(_ctx(Nb201Supernet(3, c=4, n=1), [hook], epochs=4))
