"""DrNAS, β-DARTS and GAEA step by step against their authors' code.

Each test runs nasrepro's `run_search` and the reference's own model and architect in a
copy of its training loop (the scripts parse arguments and open the benchmark file at
import), in float64 on the CPU, on a tiny NB201 supernet (C=4, N=1) with identical
weights, α and batches, for 2-3 epochs of 2 steps with the weight clip acting. Where the
method samples (DrNAS' Dirichlet), both sides draw from the global torch RNG in the same
order from the same seed.

Checkouts (skipped without them, `_oracle.CHECKOUT_VARS`): NASREPRO_REF_DRNAS
(xiangning-chen/DrNAS), NASREPRO_REF_BETA_DARTS (Sunshine-Ye/Beta-DARTS),
NASREPRO_REF_GAEA (liamcli/gaea_release; its NB201 network lives in a fork of AutoDL that
the repository does not include, so the search tests' reference model is xautodl's NB201
search cell mixing with GAEA's α directly, which is what that fork's `forward_edge_weights`
does with the edge weights fixed at 1), and, for GAEA's space without `none`, also
NASREPRO_REF_GAEA_AUTODL (the fork itself, liamcli/AutoDL-Projects).
"""

from __future__ import annotations

import math
import sys
import types

import pytest
import torch
from _oracle import checkout, copy_by_structure, reference_modules, require_xautodl
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.search.engine import SearchContext, run_search
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.suite import SearchSettings

C, N, CLASSES, BATCH = 4, 1, 10, 4
STEPS = 2


def _batches(seed: int = 3) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(STEPS):
        x_w, x_a = (torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64) for _ in "wa")
        y_w, y_a = (torch.randint(0, CLASSES, (BATCH,), generator=g) for _ in "wa")
        out.append((x_w, y_w, x_a, y_a))
    return out


def _settings(**kw) -> SearchSettings:
    base = dict(
        epochs=2,
        batch_size=BATCH,
        order=1,
        lr=0.025,
        lr_min=0.001,
        momentum=0.9,
        nesterov=False,
        weight_decay=3e-4,
        arch_lr=3e-4,
        arch_betas=(0.5, 0.999),
        arch_weight_decay=1e-3,
        grad_clip=0.5,  # acts on every step here (norms ~1-8)
        clip_includes_alpha=True,
        alpha_step="before_weights",
        deterministic=False,
    )
    base.update(kw)
    return SearchSettings(**base)


def _ours(methods, method_args, settings, net, batches, seed):
    ctx = SearchContext(
        supernet=net,
        settings=settings,
        hooks=build_hooks(methods, method_args),
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )
    torch.manual_seed(seed)
    history = run_search(ctx, batches, len(batches))
    return ctx, history


def _randomise_bn(net: nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _cosine(optimizer, epochs: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(epochs), eta_min=0.001)


def _assert_states_close(ref_state: dict, ours_state: dict, rtol: float, atol: float) -> float:
    """Every tensor of the two state dicts (same order) close; returns the largest |Δ|."""
    worst = 0.0
    for (kr, a), (ko, b) in zip(ref_state.items(), ours_state.items(), strict=True):
        assert a.shape == b.shape, (kr, ko)
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=rtol, atol=atol, msg=f"{kr} vs {ko}")
            worst = max(worst, (a - b).abs().max().item())
        else:
            assert torch.equal(a, b), (kr, ko)
    return worst


# ------------------------------------------------------------------------------- DrNAS


def _split_alpha(state: dict, key: str) -> tuple[dict, torch.Tensor]:
    state = dict(state)
    return state, state.pop(key)


def _drnas_reference_run(reg_type: str, reg_scale: float, epochs: int, species="dirichlet"):
    """(initial nasrepro state, batches, final reference state, final reference α)."""
    root = checkout("xiangning-chen/DrNAS")
    # search_model imports `utils` and `net2wider` from the repository root (the scripts
    # insert '../'); reference_modules restores sys.path and forgets every module of the
    # checkout afterwards.
    with reference_modules(root, "utils", "architect"):
        sys.path.insert(0, str(root / "201-space"))
        import architect as arch_mod
        import cell_operations as ops
        import search_model as sm

        torch.manual_seed(0)
        crit = nn.CrossEntropyLoss()
        ref = sm.TinyNetwork(
            C, N, 4, CLASSES, crit, ops.NAS_BENCH_201, k=1, species=species,
            reg_type=reg_type, reg_scale=reg_scale,
        ).double()
        ref.anchor = torch.distributions.Dirichlet(torch.ones_like(ref._arch_parameters))
        _randomise_bn(ref)
        with torch.no_grad():
            ref._arch_parameters.normal_(0, 0.5)
        ours = Nb201Supernet(CLASSES, c=C, n=N, affine=False, track_running_stats=True).double()
        copy_by_structure(ref, ours, skip=("_arch_parameters",), skip_dst=("arch_alpha",))
        with torch.no_grad():
            ours.arch_alpha.copy_(ref._arch_parameters)
        initial = {k: v.clone() for k, v in ours.state_dict().items()}
        batches = _batches()
        # the loop of 201-space/train_search.py main() and train()
        args = types.SimpleNamespace(
            momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4,
            reg_type=reg_type, reg_scale=reg_scale,
        )
        architect = arch_mod.Architect(ref, args)
        opt = torch.optim.SGD(ref.get_weights(), 0.025, momentum=0.9, weight_decay=3e-4)
        sched = _cosine(opt, epochs)
        tau_step, tau_epoch = (1 - 10) / epochs, 10  # train_search.py: tau_min 1, tau_max 10
        torch.manual_seed(11)
        for _ in range(epochs):
            lr = opt.param_groups[0]["lr"]
            ref.train()
            for x_w, y_w, x_a, y_a in batches:
                architect.step(x_w, y_w, x_a, y_a, lr, opt, unrolled=False)
                opt.zero_grad()
                architect.optimizer.zero_grad()
                loss = crit(ref(x_w), y_w)
                loss.backward()
                nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
                opt.step()
                opt.zero_grad()
                architect.optimizer.zero_grad()
            sched.step()
            if species == "gumbel":
                tau_epoch += tau_step
                ref.set_tau(tau_epoch)
    ref_state, ref_alpha = _split_alpha(ref.state_dict(), "_arch_parameters")
    return initial, batches, ref_state, ref_alpha


def _ours_from(initial: dict, methods, method_args, settings, batches, seed):
    net = Nb201Supernet(CLASSES, c=C, n=N, affine=False, track_running_stats=True).double()
    net.load_state_dict(initial)
    ctx, history = _ours(methods, method_args, settings, net, batches, seed)
    state, alpha = _split_alpha(net.state_dict(), "arch_alpha")
    return state, alpha, history


@pytest.mark.parametrize(("reg_type", "reg_scale"), [("l2", 1e-3), ("kl", 0.5)])
def test_drnas_nb201_search_matches_the_reference(reg_type: str, reg_scale: float) -> None:
    """Dirichlet samples row by row from the global RNG in the reference's order (α step's
    forward, then the weight step's), pathwise gradients, Adam on α with weight decay
    (l2) or the KL term to Dir(1) (kl, scale 0.5 so that it matters), clip over weights and
    α: after 2 epochs of 2 steps every weight, BN statistic and α agrees. The clip norms are
    summed in another order, so the last bits may differ (float64: rtol 1e-9 leaves ~1e6
    ulp of margin for 4 steps of amplification). Controls: plain DARTS (softmax(α)) from
    the same start, and the other regulariser, end measurably elsewhere."""
    epochs = 2
    initial, batches, ref_state, ref_alpha = _drnas_reference_run(reg_type, reg_scale, epochs)
    decay = reg_scale if reg_type == "l2" else 0.0
    settings = _settings(epochs=epochs, arch_weight_decay=decay)
    args = {"drnas": {"reg_type": reg_type, "reg_scale": reg_scale}}
    state, alpha, _ = _ours_from(initial, ["drnas"], args, settings, batches, seed=11)
    _assert_states_close(ref_state, state, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(alpha, ref_alpha, rtol=1e-9, atol=1e-12)
    _, darts_alpha, _ = _ours_from(initial, ["darts"], {}, settings, batches, seed=11)
    assert (darts_alpha - ref_alpha).abs().max().item() > 1e-6
    if reg_type == "kl":
        l2 = _settings(epochs=epochs, arch_weight_decay=reg_scale)
        l2_args = {"drnas": {"reg_type": "l2", "reg_scale": reg_scale}}
        _, l2_alpha, _ = _ours_from(initial, ["drnas"], l2_args, l2, batches, seed=11)
        assert (l2_alpha - ref_alpha).abs().max().item() > 1e-6


def test_snas_nb201_search_matches_drnas_gumbel_code() -> None:
    """DrNAS' `--method snas`: F.gumbel_softmax(α_row, τ) row by row from the global RNG,
    τ = 10 at the first epoch and 10 − 9/epochs less after each (3 epochs: 10, 7, 4), the
    rest DrNAS' loop. Control: a constant τ ends elsewhere."""
    epochs = 3
    initial, batches, ref_state, ref_alpha = _drnas_reference_run("l2", 1e-3, epochs, "gumbel")
    settings = _settings(epochs=epochs)
    state, alpha, history = _ours_from(initial, ["snas"], {}, settings, batches, seed=11)
    assert [h.diagnostics["snas.tau"] for h in history] == [10.0, 7.0, 4.0]
    _assert_states_close(ref_state, state, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(alpha, ref_alpha, rtol=1e-9, atol=1e-12)
    fixed = {"snas": {"tau_max": 10.0, "tau_min": 10.0}}
    _, fixed_alpha, _ = _ours_from(initial, ["snas"], fixed, settings, batches, seed=11)
    assert (fixed_alpha - ref_alpha).abs().max().item() > 1e-7


# ---------------------------------------------------------------------------- β-DARTS


def test_beta_darts_nb201_search_matches_the_reference() -> None:
    """optimizers/darts/architect.py: L_val + (50·epoch/100)·mean logsumexp(α) before the
    Adam step; 3 epochs so that λ takes 0, 0.5 and 1.0. nasbench201/train_search.py's loop:
    α step, then the weight step with the clip over model.parameters() (α included).
    Control: without the term (lambda_max 0) α ends elsewhere."""
    root = checkout("Sunshine-Ye/Beta-DARTS")
    epochs = 3
    with reference_modules(root, "nasbench201.model", "optimizers.darts.architect") as (
        model_mod,
        arch_mod,
    ):
        torch.manual_seed(0)
        crit = nn.CrossEntropyLoss()
        ref = model_mod.Network(C, N, 4, CLASSES, crit).double()
        _randomise_bn(ref)
        with torch.no_grad():
            ref._arch_parameters.normal_(0, 0.5)
        ours = Nb201Supernet(CLASSES, c=C, n=N, affine=False, track_running_stats=True).double()
        copy_by_structure(ref, ours, skip=("_arch_parameters",), skip_dst=("arch_alpha",))
        with torch.no_grad():
            ours.arch_alpha.copy_(ref._arch_parameters)
        initial = {k: v.clone() for k, v in ours.state_dict().items()}
        args = types.SimpleNamespace(
            momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_weight_decay=1e-3
        )
        architect = arch_mod.Architect(ref, args)
        opt = torch.optim.SGD(ref.get_weights(), 0.025, momentum=0.9, weight_decay=3e-4)
        sched = _cosine(opt, epochs)
        batches = _batches()
        for epoch in range(epochs):
            lr = opt.param_groups[0]["lr"]
            ref.train()
            for x_w, y_w, x_a, y_a in batches:
                architect.step(x_w, y_w, x_a, y_a, lr, opt, epoch, unrolled=False)
                opt.zero_grad()
                architect.optimizer.zero_grad()
                loss = crit(ref(x_w), y_w)
                loss.backward()
                nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
                opt.step()
            sched.step()
    ref_state, ref_alpha = _split_alpha(ref.state_dict(), "_arch_parameters")
    settings = _settings(epochs=epochs)
    state, alpha, history = _ours_from(initial, ["beta_darts"], {}, settings, batches, seed=0)
    assert [h.diagnostics["beta_darts.lambda"] for h in history] == [0.0, 0.5, 1.0]
    _assert_states_close(ref_state, state, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(alpha, ref_alpha, rtol=1e-9, atol=1e-12)
    off = {"beta_darts": {"lambda_max": 0.0}}
    _, plain_alpha, _ = _ours_from(initial, ["beta_darts"], off, settings, batches, seed=0)
    assert (plain_alpha - ref_alpha).abs().max().item() > 1e-6


# ------------------------------------------------------------------------------- GAEA


def _gaea_args(lr: float, decay: float, clip: float | None, learn_edges: bool, edge_lr: float):
    search = types.SimpleNamespace(
        learn_edges=learn_edges, trace_norm=None, arch_learning_rate=lr,
        edge_learning_rate=edge_lr, arch_grad_clip=clip, adapt_lr=False,
        arch_weight_decay=decay, gd=False,
    )  # fmt: skip
    return types.SimpleNamespace(search=search)


_WRITER = types.SimpleNamespace(add_scalar=lambda *a, **k: None)


def _double_architect(architect, normalize) -> None:
    """The architect builds α (and edges) in float32 (`.cuda()` is a no-op here): the same
    initial values in float64."""
    for ct in architect.cell_types:
        a = architect.alphas[ct]
        architect.alphas[ct] = normalize(torch.ones(a.shape, dtype=torch.float64), -1)
        architect.alphas[ct].requires_grad_()
        e = architect.edges[ct]
        if e.requires_grad:  # learn_edges: get_edge_scaling's 1/n_inputs per node, in float64
            n_in = [2 + i for i in range(architect.n_nodes) for _ in range(2 + i)]
            e = torch.tensor([1.0 / n for n in n_in], dtype=torch.float64)
            architect.edges[ct] = e.requires_grad_()
        else:
            architect.edges[ct] = e.detach().double()
    architect._arch_parameters = [architect.alphas[ct] for ct in architect.cell_types]
    architect.set_model_alphas()
    architect.set_model_edge_weights()


def _gaea_loop(model, architect, opt, sched, batches, epochs, clip):
    """cnn/train_search.py main() and train() (bilevel): α step, then the weight step with
    the clip over model.parameters() (GAEA's α are not module parameters)."""
    crit = nn.CrossEntropyLoss()
    for _ in range(epochs):
        lr = sched.get_last_lr()[0]
        for x_w, y_w, x_a, y_a in batches:
            model.train()
            architect.step(
                x_w, y_w, x_a, y_a, eta=lr, network_optimizer=opt, unrolled=False,
                update_weights=True,
            )  # fmt: skip
            opt.zero_grad()
            architect.zero_arch_var_grad()
            architect.set_model_alphas()
            architect.set_model_edge_weights()
            logits, _ = model(x_w)
            crit(logits, y_w).backward()
            nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], clip)
            opt.step()
        sched.step()


class _GaeaNb201(nn.Module):
    """GAEA's NASBENCH201Network (search_spaces/nasbench_201/model_search.py) over xautodl's
    NB201 search cells: the cells mix with α itself; edge weights are 1 (learn_edges off)."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__()
        self.tiny = tiny
        self.search_reduce_cell = False
        self.op_names = list(tiny.op_names)
        self._nodes, self._num_ops, self.n_inputs = 3, len(self.op_names), 1

    def set_alphas(self, alphas) -> None:
        self.alphas = alphas

    def set_edge_weights(self, edges) -> None:
        self.edges = edges

    def forward(self, x, discrete=False):
        t = self.tiny
        feature = t.stem(x)
        for cell in t.cells:
            if hasattr(cell, "edge2index"):
                feature = cell(feature, self.alphas["normal"])
            else:
                feature = cell(feature)
        out = t.global_pooling(t.lastact(feature)).flatten(1)
        return t.classifier(out), None

    def _loss(self, x, y, discrete=False):
        return nn.functional.cross_entropy(self(x)[0], y)

    def genotype(self, weights):
        return None


@pytest.mark.parametrize(("decay", "clip"), [(0.0, None), (0.2, 0.05)])
def test_gaea_nb201_bilevel_search_matches_the_reference(decay: float, clip: float | None):
    """ArchitectEDARTS.step (exponentiated gradient, clamp at 1e-5, per-row renormalisation,
    the entropic term and the α-gradient clip when set) against the `gaea` hook, with the
    cosine horizon of CosinePowerAnnealing at 4 epochs over a 2-epoch run
    (`lr_schedule_epochs`). nasrepro keeps α = log p: p agrees to rounding (rtol 1e-9)."""
    require_xautodl()
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    root = checkout("liamcli/gaea_release") / "cnn"
    epochs, horizon = 2, 4
    with reference_modules(root, "architect.architect_edarts", "lr_schedulers") as (ae, lrs):
        torch.manual_seed(0)
        tiny = TinyNetworkDarts(C, N, 4, CLASSES, ["none", "skip_connect", "nor_conv_1x1",
                                "nor_conv_3x3", "avg_pool_3x3"], False, True).double()  # fmt: skip
        with torch.no_grad():
            for m in tiny.modules():
                if isinstance(m, nn.Conv2d) and m.bias is not None:
                    m.bias.zero_()
                    m.bias.requires_grad_(False)
        _randomise_bn(tiny)
        ref = _GaeaNb201(tiny)
        ours = Nb201Supernet(CLASSES, c=C, n=N, affine=False, track_running_stats=True).double()
        biases = tuple(
            f"{n}.bias" for n, m in tiny.named_modules() if isinstance(m, nn.Conv2d) and m.bias is not None
        )
        copy_by_structure(tiny, ours, skip=("arch_parameters", *biases), skip_dst=("arch_alpha",))
        initial = {k: v.clone() for k, v in ours.state_dict().items()}
        architect = ae.ArchitectEDARTS(ref, _gaea_args(0.1, decay, clip, False, 0.0), _WRITER)
        _double_architect(architect, ae.normalize)
        opt = torch.optim.SGD(tiny.get_weights(), 0.025, momentum=0.9, weight_decay=3e-4)
        sched = lrs.CosinePowerAnnealing(opt, 1, 1, 0.001, horizon)
        batches = _batches()
        _gaea_loop(ref, architect, opt, sched, batches, epochs, 0.5)
        ref_p = architect.alphas["normal"].detach()
    ref_state = {
        k: v for k, v in tiny.state_dict().items() if k != "arch_parameters" and k not in biases
    }
    settings = _settings(
        epochs=epochs, arch_lr=0.1, arch_weight_decay=decay, clip_includes_alpha=False
    )
    args = {"gaea": {"lr_schedule_epochs": horizon, "arch_grad_clip": clip}}
    state, alpha, history = _ours_from(initial, ["gaea"], args, settings, batches, seed=0)
    _assert_states_close(ref_state, state, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(torch.softmax(alpha, -1), ref_p, rtol=1e-9, atol=1e-15)
    assert torch.equal(torch.tensor(history[-1].alpha["cell"], dtype=torch.float64),
                       torch.softmax(alpha, -1))  # fmt: skip
    # controls: Adam's DARTS step from the uniform start, and the run's own cosine horizon
    _, darts_alpha, _ = _ours_from(
        {**initial, "arch_alpha": torch.full_like(alpha, math.log(0.2))}, ["darts"], {},
        settings, batches, seed=0,
    )  # fmt: skip
    assert (torch.softmax(darts_alpha, -1) - ref_p).abs().max().item() > 1e-4
    short = {"gaea": {"arch_grad_clip": clip}}
    state2, _, _ = _ours_from(initial, ["gaea"], short, settings, batches, seed=0)
    assert max((state2[k] - state[k]).abs().max().item() for k in state
               if state[k].is_floating_point()) > 1e-7  # fmt: skip


def test_gaea_pc_darts_search_with_learned_edges_matches_the_reference() -> None:
    """GAEA PC-DARTS (configs eedarts/method_eedarts_space_pcdarts.yaml: learn_edges, edge
    lr 0.1): search_spaces/pc_darts/model_search.py with ArchitectEDARTS updating α and the
    per-node edge weights by mirror descent, against `methods: [pc, gaea]` on the DARTS
    space with partial channels K=4 and edge normalization (whose per-node softmax of
    β = log e is GAEA's e). C=8, 3 cells, 8x8 inputs."""
    from nasrepro.spaces import build_space

    root = checkout("liamcli/gaea_release") / "cnn"
    epochs = 2
    with reference_modules(
        root, "search_spaces.pc_darts.model_search", "architect.architect_edarts", "lr_schedulers"
    ) as (ms, ae, lrs):
        torch.manual_seed(0)
        ref = ms.PCDARTSNetwork(8, CLASSES, 4, 3, nn.CrossEntropyLoss(), "pcdarts").double()
        _randomise_bn(ref)
        ours = build_space("darts").build_supernet(
            CLASSES, c=8, layers=3, partial_channels=4, edge_normalization=True
        ).double()
        copy_by_structure(ref, ours, skip_dst=("alphas", "betas"))
        initial = {k: v.clone() for k, v in ours.state_dict().items()}
        architect = ae.ArchitectEDARTS(ref, _gaea_args(0.1, 0.0, None, True, 0.1), _WRITER)
        _double_architect(architect, ae.normalize)
        opt = torch.optim.SGD(ref.parameters(), 0.1, momentum=0.9, weight_decay=3e-4)
        sched = lrs.CosinePowerAnnealing(opt, 1, 1, 0.0, epochs)
        batches = _batches()
        # the edge step divides by node sums kept in a `torch.zeros` buffer, float32 by
        # default: float64 here so that the comparison is not of float32 rounding
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            _gaea_loop(ref, architect, opt, sched, batches, epochs, 0.5)
        finally:
            torch.set_default_dtype(default)
        ref_p = [architect.alphas[ct].detach() for ct in ("normal", "reduce")]
        ref_e = [architect.edges[ct].detach() for ct in ("normal", "reduce")]
        ref_state = dict(ref.state_dict())
    settings = _settings(
        epochs=epochs, lr=0.1, lr_min=0.0, arch_lr=0.1, arch_weight_decay=0.0,
        clip_includes_alpha=False,
    )  # fmt: skip
    args = {
        "pc": {"k": 4, "edge_normalization": True, "alpha_warmup_epochs": 0},
        "gaea": {"edge_lr": 0.1},
    }
    net = build_space("darts").build_supernet(
        CLASSES, c=8, layers=3, partial_channels=4, edge_normalization=True
    ).double()
    net.load_state_dict(initial)
    _ours(["pc", "gaea"], args, settings, net, batches, seed=0)
    state = {k: v for k, v in net.state_dict().items() if "alphas" not in k and "betas" not in k}
    _assert_states_close(ref_state, state, rtol=1e-9, atol=1e-12)
    probs = net.alpha_softmax()
    for kind, p, e in zip(("normal", "reduce"), ref_p, ref_e, strict=True):
        torch.testing.assert_close(probs[kind], p, rtol=1e-9, atol=1e-15)
        torch.testing.assert_close(probs[f"betas_{kind}"].squeeze(-1), e, rtol=1e-9, atol=1e-15)
        assert (e - e[0]).abs().max().item() > 1e-6  # the edges moved from uniform


def test_gaea_nb201_space_without_none_matches_the_reference(monkeypatch) -> None:
    """GAEA's NB201 protocol (README: `search.exclude_zero=true`): NASBENCH201Network with
    the fork's `nas-bench-201-nozero` op list against `space_args: {drop_ops: [none]}`: the
    op list and its order, the genotype of random p (model.genotype, argmax over the four
    ops) as the same NB201 arch string and table index, and the supernet forward mixing
    with p, bit for bit (float64, C=4, N=1, identical weights)."""
    root = checkout("liamcli/gaea_release") / "cnn"
    fork = checkout("liamcli/AutoDL-Projects")
    monkeypatch.syspath_prepend(str(fork / "lib"))  # lib/models imports `config_utils`
    monkeypatch.syspath_prepend(str(fork))  # model_search imports `lib.models`
    from nasrepro.evaluate.nb201 import Nb201Table
    from nasrepro.spaces import build_space

    with reference_modules(root, "search_spaces.nasbench_201.model_search") as (ms,):
        torch.manual_seed(0)
        ref = ms.NASBENCH201Network(
            C, CLASSES, 3, N, nn.CrossEntropyLoss(), exclude_zero=True, affine=False,
            track_running_stats=True,
        ).double()  # fmt: skip
        _randomise_bn(ref)
        space = build_space("nb201")
        ours = space.build_supernet(
            CLASSES, c=C, n=N, affine=False, track_running_stats=True, drop_ops=["none"]
        ).double()
        assert list(ref.op_names) == list(space.edge_op_names("cell", 0)) == list(ours.op_names)
        assert "none" not in ours.op_names and ours.arch_alpha.shape == (6, 4)
        copy_by_structure(ref, ours, skip_dst=("arch_alpha",))
        table = Nb201Table.load()
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
        seen = set()
        for _ in range(20):
            p = torch.softmax(3 * torch.randn(6, 4, generator=gen, dtype=torch.float64), -1)
            ref_arch = ref.genotype({"normal": p}).tostr()
            with torch.no_grad():
                ours.arch_alpha.copy_(p.log())
            arch = space.format_genotype(space.derive_argmax(ours))
            assert arch == ref_arch
            assert table.index_of(arch) == space.derive_argmax(ours).index()
            seen.add(arch)
        assert len(seen) > 10  # the draws reach many cells, not one
        ref.alphas, ref.edges = {"normal": p}, {"normal": torch.ones(6, dtype=torch.float64)}
        ref.train()
        ours.train()
        out = ours(x, cell_weights=[p] * ours.num_search_cells)
        assert torch.equal(ref(x)[0], out)
        # control: the five-op space's α cannot take GAEA's p
        five = space.build_supernet(CLASSES, c=C, n=N, affine=False, track_running_stats=True)
        assert five.arch_alpha.shape == (6, 5) and space.edge_op_names("cell", 0)[0] == "none"
