"""DrNAS, β-DARTS and GAEA against their definitions (the authors' code: tests/oracle/
test_baselines.py, with checkouts), and each through the engine on a tiny supernet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasrepro.datasets import build_search_data
from nasrepro.datasets.transforms import describe_transform, train_transform
from nasrepro.methods.base import build_hooks
from nasrepro.methods.beta_darts import beta_decay_loss, beta_lambda
from nasrepro.methods.drnas import concentration, dirichlet_sample, kl_to_uniform
from nasrepro.methods.gaea import edge_step, exponentiated_step, normalize
from nasrepro.methods.idarts import neumann_hypergradient
from nasrepro.methods.snas import gumbel_sample, tau_schedule
from nasrepro.search.engine import SearchContext, run_search
from nasrepro.spaces import build_space
from nasrepro.spaces.darts import node_slices, normalize_edges
from nasrepro.suite import SearchSettings

D = torch.float64


def _settings(**kw) -> SearchSettings:
    base = dict(
        epochs=2, batch_size=4, lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
        arch_lr=3e-4, arch_weight_decay=1e-3, alpha_step="before_weights", deterministic=False,
        steps_per_epoch=2,
    )  # fmt: skip
    base.update(kw)
    return SearchSettings(**base)


def _search(space: str, methods, method_args, settings, **space_args):
    torch.manual_seed(0)
    net = build_space(space).build_supernet(10, c=4, **space_args).double()
    data = build_search_data("synthetic", root=None, batch_size=4, seed=0, image_size=8)
    ctx = SearchContext(
        net, settings, build_hooks(methods, method_args), torch.device("cpu"),
        nn.CrossEntropyLoss(),
    )  # fmt: skip

    class _Double:
        def __iter__(self):
            for batch in data.loader:
                yield tuple(t.double() if t.is_floating_point() else t for t in batch)

    history = run_search(ctx, _Double(), 2)
    return net, history


# ------------------------------------------------------------------------------- DrNAS


def test_dirichlet_kl_to_uniform_is_the_closed_form() -> None:
    """KL(Dir(a) ‖ Dir(1)) = lnΓ(a0) − Σ lnΓ(a_i) − lnΓ(K) + Σ (a_i − 1)(ψ(a_i) − ψ(a0)),
    a = elu(α) + 1, a0 = Σ a_i; summed over rows (hand formula with math.lgamma)."""
    alpha = torch.tensor([[0.3, -0.7, 1.2], [0.0, 0.5, -2.0]], dtype=D)
    total = 0.0
    for row in concentration(alpha):
        a = row.tolist()
        a0 = sum(a)
        psi = torch.special.digamma(torch.tensor(a + [a0], dtype=D)).tolist()
        total += (
            math.lgamma(a0) - sum(math.lgamma(x) for x in a) - math.lgamma(len(a))
            + sum((x - 1) * (psi[i] - psi[-1]) for i, x in enumerate(a))
        )  # fmt: skip
    assert kl_to_uniform(alpha).item() == pytest.approx(total, rel=1e-12)
    assert kl_to_uniform(torch.zeros(2, 3, dtype=D)).item() == pytest.approx(0.0, abs=1e-14)


def test_dirichlet_samples_are_on_the_simplex_with_the_concentration_mean() -> None:
    """elu(α) + 1 > 0 for any α; samples sum to 1 per row; their mean tends to β/Σβ
    (3000 draws: standard error < 0.01)."""
    alpha = torch.tensor([[2.0, -0.5, 0.0, -3.0]], dtype=D)
    beta = concentration(alpha)
    assert (beta > 0).all()
    torch.manual_seed(0)
    draws = torch.stack([dirichlet_sample(alpha) for _ in range(3000)])
    torch.testing.assert_close(draws.sum(-1), torch.ones(3000, 1, dtype=D))
    torch.testing.assert_close(draws.mean(0), beta / beta.sum(), atol=0.03, rtol=0)


def test_drnas_samples_per_step_and_shares_them_across_cells() -> None:
    """Every cell of a type mixes with the same sample; the weight and α steps draw their
    own; the KL variant refuses an Adam weight decay (the code sets it to 0)."""
    (hook,) = build_hooks(["drnas"], {})
    net = build_space("darts").build_supernet(10, c=4, layers=3).double()
    ctx = SearchContext(net, _settings(), [hook], torch.device("cpu"), nn.CrossEntropyLoss())
    torch.manual_seed(1)
    w1 = hook.weight_step_cell_weights(ctx, net.cell_weights())
    w2 = hook.arch_step_cell_weights(ctx, net.cell_weights())
    index = net.cell_alpha_index()
    for k, t in enumerate(index):
        assert w1[k] is w1[index.index(t)]
    assert not torch.equal(w1[0], w2[0])
    (kl,) = build_hooks(["drnas"], {"drnas": {"reg_type": "kl", "reg_scale": 0.1}})
    ctx.hooks = [kl]
    with pytest.raises(ValueError, match="arch_weight_decay 0"):
        kl.on_build(ctx)


# -------------------------------------------------------------------------------- SNAS


def test_snas_temperature_schedule_and_gumbel_softmax() -> None:
    """τ_e = 10 + e·(1 − 10)/E (100 epochs: 10, 9.91, ..., 1.09); a Gumbel-softmax draw is
    softmax((α + G)/τ) with G = −log(Exp(1)) from the same stream, on the simplex."""
    taus = [tau_schedule(10.0, 1.0, e, 100) for e in (0, 1, 99)]
    assert taus == pytest.approx([10.0, 9.91, 1.09], rel=1e-12)
    alpha = torch.tensor([[0.5, -1.0, 2.0]], dtype=D)
    torch.manual_seed(4)
    draw = gumbel_sample(alpha, 0.7)
    torch.manual_seed(4)
    g = -torch.empty(1, 3, dtype=D).exponential_().log()
    torch.testing.assert_close(draw, torch.softmax((alpha + g) / 0.7, -1))


# ---------------------------------------------------------------------------- β-DARTS


def test_beta_decay_term_and_schedule() -> None:
    """mean over rows of logsumexp: rows (0, ln 3) and (ln 2, ln 2) give ln 4 and ln 4;
    its gradient is softmax(α)/rows; λ = 50·epoch/100 (0, 0.5, ..., 24.5 over 50 epochs)."""
    a = torch.tensor([[0.0, math.log(3)], [math.log(2), math.log(2)]], dtype=D, requires_grad=True)
    loss = beta_decay_loss([a])
    assert loss.item() == pytest.approx(math.log(4), rel=1e-15)
    (g,) = torch.autograd.grad(loss, a)
    torch.testing.assert_close(g, torch.softmax(a.detach(), -1) / 2)
    assert [beta_lambda(50, 100, e) for e in (0, 1, 49)] == [0.0, 0.5, 24.5]
    # two α tensors (DARTS space): one mean over the rows of both
    b = torch.zeros(3, 2, dtype=D)
    expected = (2 * math.log(4) + 3 * math.log(2)) / 5
    assert beta_decay_loss([a.detach(), b]).item() == pytest.approx(expected, rel=1e-15)


# ------------------------------------------------------------------------------- GAEA


def test_exponentiated_gradient_step_by_hand() -> None:
    """p = (1/2, 1/2), g = (1, 0), η = ln 2: p·exp(−ηg) = (1/4, 1/2) → (1/3, 2/3). A weight
    driven below 1e-5 is clamped there before the renormalisation."""
    p = torch.tensor([[0.5, 0.5]], dtype=D)
    out = exponentiated_step(p, torch.tensor([[1.0, 0.0]], dtype=D), math.log(2))
    torch.testing.assert_close(out, torch.tensor([[1 / 3, 2 / 3]], dtype=D))
    tiny = exponentiated_step(p, torch.tensor([[100.0, 0.0]], dtype=D), 1.0)
    torch.testing.assert_close(tiny, torch.tensor([[1e-5 / 0.50001, 0.5 / 0.50001]], dtype=D))
    torch.testing.assert_close(normalize(torch.tensor([[0.0, 2.0]], dtype=D)),
                               torch.tensor([[1e-5 / 2.00001, 2 / 2.00001]], dtype=D))  # fmt: skip


def test_edge_step_from_the_beta_gradient_equals_mirror_descent_on_the_edges() -> None:
    """For L = Σ c·e with e the per-node normalised edge weights, ∂L/∂e = c: GAEA's update
    e·exp(−ηc) / node sum, computed here from ∂L/∂β (e = per-node softmax(β))."""
    gen = torch.Generator().manual_seed(0)
    beta = torch.randn(14, generator=gen, dtype=D, requires_grad=True)
    c = torch.randn(14, generator=gen, dtype=D)
    e = normalize_edges(beta)
    (g_beta,) = torch.autograd.grad((c * e).sum(), beta)
    ours = edge_step(beta.detach(), g_beta, 0.3)
    raw = e.detach() * torch.exp(-0.3 * c)
    expected = torch.cat([raw[lo:hi] / raw[lo:hi].sum() for lo, hi in node_slices()])
    torch.testing.assert_close(ours, expected, rtol=1e-13, atol=0)


def test_gaea_keeps_log_p_and_steps_on_the_simplex() -> None:
    """α starts at log(1/|O|) (uniform p); one α step of the hook equals the mirror step
    with ∂L/∂p from autograd on a forward mixing with p."""
    torch.manual_seed(0)
    net = build_space("nb201").build_supernet(10, c=4, n=1).double()
    (hook,) = build_hooks(["gaea"], {})
    ctx = SearchContext(
        net, _settings(arch_lr=0.1, arch_weight_decay=0.0), [hook], torch.device("cpu"),
        nn.CrossEntropyLoss(),
    )  # fmt: skip
    hook.on_build(ctx)
    from nasrepro.search.engine import build_optimizers

    build_optimizers(ctx)
    torch.testing.assert_close(net.alpha_softmax()["cell"], torch.full((6, 5), 0.2, dtype=D))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 8, 8, generator=gen, dtype=D)
    y = torch.randint(0, 10, (4,), generator=gen)
    p = torch.full((6, 5), 0.2, dtype=D, requires_grad=True)
    net.train()
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(net(x, cell_weights=[p for _ in net.cell_alpha_index()]), y), p)
    expected = exponentiated_step(p.detach(), g, 0.1)
    hook.arch_step(ctx, x, y, x, y)
    torch.testing.assert_close(net.alpha_softmax()["cell"], expected, rtol=1e-13, atol=0)


# ------------------------------------------------------------------ through the engine


@pytest.mark.parametrize(
    ("space", "methods", "args", "settings"),
    [
        ("nb201", ["drnas"], {}, {"clip_includes_alpha": True}),
        ("nb201", ["drnas"], {"drnas": {"reg_type": "kl"}}, {"arch_weight_decay": 0.0}),
        ("nb201", ["beta_darts"], {}, {}),
        ("nb201", ["snas"], {}, {"clip_includes_alpha": True}),
        ("nb201", ["idarts"], {}, {}),
        ("nb201", ["gaea"], {"gaea": {"lr_schedule_epochs": 4}}, {"arch_lr": 0.1}),
        ("nb201", ["gaea", "ex"], {}, {"arch_lr": 0.1}),
        ("nb201", ["gaea", "darts_plus"], {"darts_plus": {"sc_k": 2}}, {"arch_lr": 0.1}),
        ("darts", ["beta_darts"], {}, {}),
        (
            "darts", ["pc", "gaea"],
            {"pc": {"k": 2, "alpha_warmup_epochs": 0}, "gaea": {"edge_lr": 0.1}},
            {"arch_lr": 0.1},
        ),
    ],
)  # fmt: skip
def test_methods_search_end_to_end(space, methods, args, settings) -> None:
    space_args = {"n": 1} if space == "nb201" else {"layers": 3}
    if "pc" in methods:
        space_args.update(partial_channels=2, edge_normalization=True)
    net, history = _search(space, methods, args, _settings(**settings), **space_args)
    assert len(history) >= 1
    assert all(math.isfinite(h.train_loss) and math.isfinite(h.valid_loss) for h in history)
    for name, probs in net.alpha_softmax().items():
        if name.startswith("betas"):  # per-node edge weights: each node's inputs sum to 1
            sums = torch.stack([probs[lo:hi].sum() for lo, hi in node_slices()])
        else:
            sums = probs.sum(-1)
        torch.testing.assert_close(sums, torch.ones_like(sums))


def test_methods_that_define_the_alpha_step_refuse_second_order() -> None:
    with pytest.raises(ValueError, match="search.order: 1"):
        _search("nb201", ["beta_darts"], {}, _settings(order=2), n=1)


def test_gaea_edge_lr_goes_with_edge_normalization() -> None:
    with pytest.raises(ValueError, match="edge_lr"):
        _search("nb201", ["gaea"], {"gaea": {"edge_lr": 0.1}}, _settings(arch_lr=0.1), n=1)
    with pytest.raises(ValueError, match="edge_lr"):
        _search(
            "darts", ["pc", "gaea"], {"pc": {"k": 2, "alpha_warmup_epochs": 0}},
            _settings(arch_lr=0.1), layers=3, partial_channels=2, edge_normalization=True,
        )  # fmt: skip


# ------------------------------------------------------------- GAEA-ERM's search data


@pytest.mark.parametrize(
    ("dataset", "protocol"),
    [("cifar10", "nb201-single-level"), ("cifar100", "nb201-single-level"),
     ("cifar10", "darts-single-level")],
)  # fmt: skip
def test_single_level_protocol_reads_the_whole_training_set(
    monkeypatch, tmp_path: Path, dataset: str, protocol: str
) -> None:
    """`nb201-single-level` (GAEA-ERM, which searches CIFAR-10 and CIFAR-100) and
    `darts-single-level` (SNAS, CIFAR-10): weights and α both index all 50,000 training
    images (labels = indices here) and never a test image; each with its own augmentation."""
    import nasrepro.datasets.cifar as cifar

    def fake(tv_name, dataset, root, *, train, download):
        n = 50_000 if train else 10_000
        images = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (n, 32, 32, 3))
        return images, np.arange(n) + (0 if train else 10**7), {}

    monkeypatch.setattr(cifar, "load_cifar", fake)
    data = build_search_data(dataset, root=tmp_path, batch_size=64, seed=0, protocol=protocol)
    style = protocol.split("-")[0]
    assert data.split["augmentation"] == describe_transform(train_transform(dataset, style))
    keys = data.loader.sampler.keys(0)
    assert sorted(k[0] for k in keys) == list(range(50_000))
    assert max(k[1] for k in keys) < 50_000 and len({k[1] for k in keys}) > 25_000
    assert data.split["weights"]["split"] == data.split["arch"]["split"] == "all"
    assert data.steps_per_epoch == math.ceil(50_000 / 64)


def test_single_level_protocol_on_imagenet16_reads_its_training_set(monkeypatch) -> None:
    """ImageNet16-120's `nb201-single-level`: both sides are the training part (read with
    NB201's training transform), never the validation part NB201's α split reads."""
    from nasrepro.datasets.base import get_source

    source = get_source("imagenet16-120")(None)
    asked = []

    def fake(self, part, root=None, *, download=False, augment=False, protocol=None):
        asked.append((part, augment))
        return list(range(300 if part == "train" else 100))

    monkeypatch.setattr(type(source), "dataset", fake)
    parts = source.search_parts(None, protocol="nb201-single-level")
    assert asked == [("train", True)]
    assert parts.weight_indices == parts.arch_indices == list(range(300))
    assert parts.provenance["arch"] == {"part": "train", "split": "all", "single_level": True}


# ------------------------------------------------------------------------------ iDARTS


def _quadratic(seed: int = 0, n: int = 5, m: int = 3):
    """L_train = ½wᵀAw − wᵀBα, L_val = ½‖w − w0‖² + ½αᵀCα: w*(α) = A⁻¹Bα and the exact
    hypergradient at w* is Cα + BᵀA⁻¹(w* − w0) (implicit function theorem)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, n, generator=g, dtype=D)
    a_mat = q @ q.T / n + torch.eye(n, dtype=D)  # eigenvalues in [1, ~5]
    b = torch.randn(n, m, generator=g, dtype=D)
    c = torch.eye(m, dtype=D) * 0.5
    w0 = torch.randn(n, generator=g, dtype=D)
    alpha = torch.randn(m, generator=g, dtype=D, requires_grad=True)
    w_star = torch.linalg.solve(a_mat, b @ alpha.detach()).requires_grad_()
    return a_mat, b, c, w0, alpha, w_star


def _hyper(a_mat, b, c, w0, alpha, w, gamma, k):
    val = 0.5 * ((w - w0) ** 2).sum() + 0.5 * alpha @ c @ alpha
    gw, ga = torch.autograd.grad(val, [w, alpha])
    train = lambda: 0.5 * w @ a_mat @ w - w @ (b @ alpha)  # noqa: E731
    return neumann_hypergradient(train, [gw], [ga], [w], [alpha], gamma, k)[0]


def test_idarts_hypergradient_converges_to_the_implicit_function_gradient() -> None:
    """At w*, the Neumann hypergradient with many terms is the exact IFT gradient (to 1e-10);
    with K terms it is the closed form Cα + γ·Bᵀ·Σ_{j≤K}(I − γA)^j (w* − w0); K = 0 is the
    one-step (DARTS-like) term Cα + γBᵀ(w* − w0)."""
    a_mat, b, c, w0, alpha, w = _quadratic()
    exact = c @ alpha.detach() + b.T @ torch.linalg.solve(a_mat, w.detach() - w0)
    gamma = 0.15  # ‖I − γA‖ < 1 for eigenvalues of A in (0, 2/γ)
    torch.testing.assert_close(_hyper(a_mat, b, c, w0, alpha, w, gamma, 400), exact, rtol=1e-10, atol=1e-12)
    v = w.detach() - w0
    for k in (0, 1, 2, 5):
        series = sum(torch.linalg.matrix_power(torch.eye(5, dtype=D) - gamma * a_mat, j) for j in range(k + 1))
        expected = c @ alpha.detach() + gamma * b.T @ series @ v
        torch.testing.assert_close(_hyper(a_mat, b, c, w0, alpha, w, gamma, k), expected, rtol=1e-12, atol=1e-14)
    err = [(_hyper(a_mat, b, c, w0, alpha, w, gamma, k) - exact).norm().item() for k in (0, 2, 10, 50)]
    assert err[0] > err[1] > err[2] > err[3]
