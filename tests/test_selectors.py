"""DARTS-PT / PT-Mag, SS-DARTS selective stop, DARTS+ and DARTS-ES against known answers."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from nasrepro.datasets import build_search_data
from nasrepro.methods.stop_criteria import (
    DartsEs,
    DartsPlus,
    es_stop_epoch,
    full_hessian,
    full_hessian_max_eigenvalue,
    hessian_max_eigenvalue,
    learnable_ranking,
    local_averages,
    skip_count,
)
from nasrepro.search.engine import EpochLog, SearchContext
from nasrepro.select.pt import (
    HeldOutBatches,
    Projection,
    _drop_edge,
    _mask_op,
    _Selector,
    alpha_op_names,
    cell_nodes,
    darts_nodes,
    decision_epochs,
    default_tune_epochs,
    derive_cell,
    heldout_accuracy,
    pt,
    pt_mag,
)
from nasrepro.select.selective_stop import operation_magnitude, selective_stop, stop_epoch
from nasrepro.spaces import build_space
from nasrepro.spaces.darts import DartsGenotype, derive_argmax, node_slices
from nasrepro.spaces.nb201 import OPS, Nb201Genotype, Nb201Supernet
from nasrepro.spaces.nb201 import derive_argmax as nb201_argmax
from nasrepro.suite import SearchSettings

SETTINGS = dict(
    epochs=2,
    batch_size=16,
    lr=0.05,
    lr_min=0.001,
    momentum=0.9,
    weight_decay=3e-4,
    arch_lr=3e-4,
    arch_weight_decay=1e-3,
    steps_per_epoch=1,
    image_size=8,
)
SKIP, NONE, CONV3 = OPS.index("skip_connect"), OPS.index("none"), OPS.index("nor_conv_3x3")


def _data(seed: int = 0, n: int = 96):
    return build_search_data(
        "synthetic",
        root=None,
        batch_size=16,
        seed=seed,
        image_size=8,
        options={"n": n, "num_classes": 3},
    )


def _ctx(net, hooks=(), **overrides):
    return SearchContext(
        supernet=net,
        settings=SearchSettings(**{**SETTINGS, **overrides}),
        hooks=list(hooks),
        device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )


def _nb201(seed: int = 0, c: int = 2) -> Nb201Supernet:
    torch.manual_seed(seed)
    net = Nb201Supernet(3, c=c, n=1)
    with torch.no_grad():
        net.arch_alpha.normal_(0, 1)
    return net


# --------------------------------------------------------------------------- DARTS-PT


def _skip_chain(net: Nb201Supernet) -> None:
    """Only 1<-0 and 3<-1 carry signal (skip); every other edge is `none`."""
    with torch.no_grad():
        net.arch_alpha.fill_(-30.0)
        for e in range(6):
            net.arch_alpha[e, SKIP if e in (0, 4) else NONE] = 10.0


def _pretrain(net, data, epochs: int = 6) -> None:
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    net.train()
    for _ in range(epochs):
        for x, y, _, _ in data.loader:
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()


def test_pt_keeps_the_op_whose_removal_destroys_accuracy():
    data = _data()
    torch.manual_seed(0)
    net = Nb201Supernet(3, c=4, n=1)
    _skip_chain(net)
    _pretrain(net, data)
    ctx = _ctx(net)
    base, _ = heldout_accuracy(ctx, HeldOutBatches(data, 16, 0, ctx.device), net.cell_weights())
    assert base > 60.0  # the chain has learned something: removing it must show

    geno = pt(build_space("nb201"), net, ctx=ctx, data=data, history=[], proj_interval=1)
    expected = ("skip_connect", "none", "none", "none", "skip_connect", "none")
    assert geno == Nb201Genotype(expected)
    sel = ctx.state["selection"]
    assert sel["genotype"] == geno.to_arch_str() and sel["heldout_items"] == 48
    json.dumps(sel)  # goes into the registry record as it is
    for d in sel["decisions"]:
        accs = d["accuracy_without"]
        if d["edge"] in (0, 4):  # removing skip cuts the only path: accuracy collapses
            assert accs["skip_connect"] < 45.0 < base - 15.0
            assert all(accs[o] == accs["none"] for o in OPS if o != "skip_connect")
        else:  # dead edge: nothing changes, the first op wins the tie (darts-pt strict `<`)
            assert len(set(accs.values())) == 1


def test_pt_bookkeeping_schedule_and_seeded_edge_order():
    space = build_space("nb201")

    def run(seed, **kw):
        net = _nb201(3)
        ctx = _ctx(net)
        data = _data()  # fresh: the loader's epoch counter moves on with every tuning epoch
        geno = pt(space, net, ctx=ctx, data=data, history=[], eval_batches=1, seed=seed, **kw)
        return net, ctx.state["selection"], geno

    net, sel, geno = run(5)
    # darts-pt NB201: 25 tuning epochs, a projection every 5 epochs and at the last one
    assert sel["tune_epochs"] == 25 and len(sel["tuning"]) == 25
    assert sel["decision_epochs"] == [0, 5, 10, 15, 20, 24]
    assert [d["epoch"] for d in sel["decisions"]] == [0, 5, 10, 15, 20, 24]
    order = [d["edge"] for d in sel["decisions"]]
    assert sorted(order) == list(range(6)) and all(d["kind"] == "op" for d in sel["decisions"])
    assert tuple(d["op"] for d in sorted(sel["decisions"], key=lambda d: d["edge"])) == geno.ops
    assert sel["lr"] == pytest.approx(0.005)  # lr / 10, constant
    assert [t["lr"] for t in sel["tuning"]] == pytest.approx([0.005] * 25)

    _, sel_again, geno_again = run(5)
    assert [d["edge"] for d in sel_again["decisions"]] == order and geno_again == geno
    _, sel_other, _ = run(6, proj_interval=1)
    assert [d["edge"] for d in sel_other["decisions"]] != order
    _, sel_ordered, _ = run(5, edge_selection="ordered", proj_interval=1)
    assert [d["edge"] for d in sel_ordered["decisions"]] == list(range(6))


def test_fix_alpha_freezes_alpha_and_default_trains_it():
    data = _data()
    space = build_space("nb201")
    for fix, moved in ((True, False), (False, True)):
        net = _nb201(1)
        before = net.arch_alpha.detach().clone()
        pt(
            space,
            net,
            ctx=_ctx(net),
            data=data,
            history=[],
            proj_interval=1,
            eval_batches=1,
            fix_alpha=fix,
        )
        assert (not torch.equal(before, net.arch_alpha)) == moved


def test_pt_mag_picks_the_largest_alpha():
    data = _data()
    net = _nb201(2)
    alpha = net.arch_alpha.detach().clone()
    ctx = _ctx(net)
    geno = pt_mag(
        build_space("nb201"), net, ctx=ctx, data=data, history=[], proj_interval=1, fix_alpha=True
    )
    assert geno == nb201_argmax(alpha)
    for d in ctx.state["selection"]["decisions"]:
        assert d["op"] == OPS[int(alpha[d["edge"]].argmax())]
        assert "accuracy_without" not in d


def test_projection_weights():
    net = _nb201(0)
    proj = Projection(1)
    proj.ops[0][2] = CONV3
    w = proj.cell_weights(net)
    assert len(w) == net.num_search_cells and all(x is w[0] for x in w)
    assert torch.equal(w[0][2], torch.eye(5)[CONV3])
    soft = torch.softmax(net.arch_alpha, -1)
    assert torch.allclose(w[0][[0, 1, 3, 4, 5]], soft[[0, 1, 3, 4, 5]])
    # decided edges pass no gradient to α; the others do
    w[0].sum(dim=None).backward()
    masked = proj.cell_weights(net, perturb=(0, _mask_op(1, 4)))[0]
    assert masked[1, 4] == 0 and torch.allclose(masked[1, :4], soft[1, :4])  # no renormalising
    proj.pruned[0].add(2)
    dropped = proj.cell_weights(net, perturb=(0, _drop_edge(5)))[0]
    assert torch.equal(dropped[2], torch.zeros(5)) and torch.equal(dropped[5], torch.zeros(5))


def test_decision_schedule_matches_darts_pt():
    # NB201: tune_epochs = proj_intv·(edges − 1) (nasbench201/projection.py)
    assert default_tune_epochs(6, 5, has_topology=False) == 25
    # DARTS: 14 op rounds + 3 node rounds, tune_epochs = proj_intv·16 + 1 (sota/cnn/projection.py)
    assert default_tune_epochs(17, 5, has_topology=True) == 81
    epochs = decision_epochs(17, 81, 5)
    ref = [e for e in range(81) if e % 5 == 0 or e == 80]  # darts-pt's condition
    assert epochs == ref and len(epochs) == 17
    assert decision_epochs(6, 3, 1) == [0, 1, 2, 2, 2, 2]  # rounds past the end happen there


def test_darts_cell_structure_helpers():
    assert darts_nodes(14) == [list(range(a, b)) for a, b in node_slices()]
    with pytest.raises(ValueError):
        darts_nodes(13)
    space = build_space("darts")
    torch.manual_seed(0)
    net = space.build_supernet(3, c=2, layers=3, in_channels=3)
    names = alpha_op_names(net)
    assert names[0][0] == space.edge_op_names("normal", 0) and len(names[1]) == 14
    nodes = cell_nodes(net)
    for _ in range(5):
        with torch.no_grad():
            net.alphas_normal.normal_(0, 1)
            net.alphas_reduce.normal_(0, 1)
        geno = derive_argmax(net)
        probs = net.alpha_softmax()
        for t, kind in ((0, "normal"), (1, "reduce")):
            cell = derive_cell(probs[kind], names[t], nodes[t])
            starts = [a for a, _ in node_slices()]
            got = [(op, e - starts[k // 2]) for k, (e, op) in enumerate(cell)]
            assert tuple(got) == getattr(geno, kind)
            assert skip_count(probs[kind], names[t], nodes[t]) == sum(
                op == "skip_connect" for op, _ in getattr(geno, kind)
            )


def test_pt_on_the_darts_space_decides_ops_then_nodes():
    data = _data(n=64)
    space = build_space("s2")  # {skip_connect, sep_conv_3x3} on every edge: cheap
    torch.manual_seed(0)
    net = space.build_supernet(3, c=2, layers=3, in_channels=3)
    ctx = _ctx(net)
    geno = pt(space, net, ctx=ctx, data=data, history=[], proj_interval=1, eval_batches=1)
    sel = ctx.state["selection"]
    json.dumps(sel)
    assert sel["tune_epochs"] == 17 and sel["decision_epochs"] == list(range(17))
    ops = [d for d in sel["decisions"] if d["kind"] == "op"]
    node = [d for d in sel["decisions"] if d["kind"] == "node"]
    assert len(ops) == 28 and len(node) == 6  # 14 rounds x 2 cell types, then 3 x 2
    assert all(d["epoch"] < 14 for d in ops) and all(d["epoch"] >= 14 for d in node)
    chosen = {(d["alpha"], d["edge"]): d["op"] for d in ops}
    assert len(chosen) == 28
    parsed = space.parse_genotype(space.format_genotype(geno))
    assert isinstance(parsed, DartsGenotype)
    starts = [a for a, _ in node_slices()]
    for kind in ("normal", "reduce"):
        kept = {d["node"]: d["kept"] for d in node if d["alpha"] == kind}
        assert sorted(kept) == [1, 2, 3]
        for d in node:
            if d["alpha"] == kind:  # n − 2 removal rounds, dropping the best-when-removed edge
                assert len(d["rounds"]) == len(darts_nodes(14)[d["node"]]) - 2
                for r in d["rounds"]:
                    accs = r["accuracy_without"]
                    assert accs[r["dropped"]] == max(accs.values())
        for k, (op, j) in enumerate(getattr(geno, kind)):
            n, e = k // 2, starts[k // 2] + j
            assert op == chosen[(kind, e)]
            assert n == 0 or e in kept[n]


def test_node_decision_drops_the_edge_whose_removal_hurts_least():
    space = build_space("s2")
    torch.manual_seed(0)
    net = space.build_supernet(3, c=2, layers=3, in_channels=3)
    ctx = _ctx(net)
    sel = _Selector(space, ctx, _data(n=32), "magnitude", "ordered", None, 0)
    sel.by = "perturbation"
    # Accuracy without edge e: 90 for 10 (the worst edge), 70 for 11 and 12 (a tie), 50 else.
    table = {10: 90.0, 11: 70.0, 12: 70.0}
    sel._accuracy = lambda t, fn: table.get(int(_removed_edge(fn)), 50.0)
    sel.decide_node(0, 0)  # `ordered`: node 1 (edges 2, 3, 4) first
    sel.node_queue[0] = [3]
    sel.decide_node(0, 1)  # node 3: edges 9..13
    first, last = sel.decisions
    assert first["node"] == 1 and first["kept"] == [2, 3]  # all tie: the last one is dropped
    # node 3: drop 10, then the tie 11/12 goes to the later edge, then 11
    assert [r["dropped"] for r in last["rounds"]] == [10, 12, 11]
    assert last["kept"] == [9, 13] and sel.proj.pruned[0] == {4, 10, 11, 12}


def _removed_edge(fn):
    w = fn(torch.ones(14, 2))
    return int((w.sum(dim=1) == 0).nonzero()[0])


# --------------------------------------------------------------------------- SS-DARTS


def _history(rows_per_epoch):
    """EpochLogs whose NB201 α is given per epoch as (edges 0-2 row, edges 3-5 row)."""
    logs = []
    for t, (a, b) in enumerate(rows_per_epoch):
        alpha = {"cell": [list(a)] * 3 + [list(b)] * 3}
        logs.append(EpochLog(t, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, alpha))
    return logs


#        none  skip  conv1 conv3 pool
ROWS = [
    ((0.20, 0.20, 0.20, 0.20, 0.20), (0.20, 0.20, 0.20, 0.20, 0.20)),
    ((0.10, 0.20, 0.20, 0.40, 0.10), (0.10, 0.10, 0.20, 0.20, 0.40)),
    ((0.05, 0.15, 0.20, 0.50, 0.10), (0.05, 0.20, 0.15, 0.45, 0.15)),
    ((0.05, 0.50, 0.10, 0.30, 0.05), (0.05, 0.60, 0.10, 0.20, 0.05)),
]


def test_operation_magnitude_is_eq11():
    hist = _history(ROWS)
    names = [OPS] * 6
    ops, m = operation_magnitude([h.alpha["cell"] for h in hist], names)
    assert ops == list(OPS)
    # m(t, o) = (1/6)·(3·a_o + 3·b_o) = (a_o + b_o)/2
    assert m[1, CONV3] == pytest.approx(0.30)
    assert m[2, CONV3] == pytest.approx(0.475)
    assert m[3, SKIP] == pytest.approx(0.55)
    assert np.allclose(m.sum(axis=1), 1.0)


def test_stop_points_eq12_eq13_by_hand():
    # Eq. 12: argmax_t m(t, o); Eq. 13: argmax_t Σ_{j≠i} (m(t, o_i) − m(t, o_j)).
    m = np.array([[0.5, 0.1, 0.1], [0.4, 0.0, 0.0], [0.45, 0.3, 0.3]])
    assert stop_epoch(m, 0, "eq12") == 0
    # Eq. 13 scores: 0.8, 0.8, 0.3 -> the earliest of the tie
    assert stop_epoch(m, 0, "eq13") == 0
    m2 = np.array([[0.5, 0.1, 0.3], [0.4, 0.0, 0.0], [0.45, 0.3, 0.3]])
    assert stop_epoch(m2, 0, "eq12") == 0 and stop_epoch(m2, 0, "eq13") == 1  # 0.6 < 0.8
    assert stop_epoch(m2, 2, "eq13") == 0  # 0.3−0.5 + 0.3−0.1 = 0.0 vs −0.4, −0.15
    with pytest.raises(ValueError):
        stop_epoch(m, 0, "eq14")


def test_selective_stop_rolls_back_to_the_alpha_of_the_peak():
    hist = _history(ROWS)
    net = _nb201(0)
    live = net.arch_alpha.detach().clone()
    ctx = SimpleNamespace(state={})
    space = build_space("nb201")
    geno = selective_stop(space, net, ctx=ctx, data=None, history=hist)
    # conv3 magnitudes by epoch: 0.2, 0.3, 0.475, 0.25 -> epoch 2 under both equations
    a, b = ROWS[2]
    expected = nb201_argmax(torch.tensor([a] * 3 + [b] * 3))
    assert geno == expected == Nb201Genotype(("nor_conv_3x3",) * 6)
    assert torch.equal(net.arch_alpha, live)  # the live α is untouched
    sel = ctx.state["selection"]
    json.dumps(sel)
    assert sel["epoch"] == 2 and sel["o"] == "nor_conv_3x3" and sel["criterion"] == "eq13"
    assert sel["magnitude"]["nor_conv_3x3"] == pytest.approx([0.2, 0.3, 0.475, 0.25])
    # Algorithm 2: one stop point per operation from the same run
    skip = sel["points"]["eq12"]["skip_connect"]
    assert skip["epoch"] == 3
    assert skip["genotype"] == Nb201Genotype(("skip_connect",) * 6).to_arch_str()
    assert sel["points"]["eq13"]["avg_pool_3x3"]["epoch"] == 1
    geno_skip = selective_stop(space, net, ctx=None, data=None, history=hist, o="skip_connect")
    assert geno_skip.ops == ("skip_connect",) * 6
    with pytest.raises(ValueError):
        selective_stop(space, net, ctx=None, data=None, history=hist, o="sep_conv_3x3")


# --------------------------------------------------------------------------- DARTS-ES


def _quadratic(eigenvalues, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    p1 = torch.randn(2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    p2 = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    z = torch.cat([p1.flatten(), p2])
    return 0.5 * z @ a @ z + z.sum() ** 3 * 0, [p1, p2], a


@pytest.mark.parametrize(
    "eigenvalues",
    [
        [5.0, 2.0, 1.0, 0.5, -1.0, -2.0],  # dominant eigenvalue positive
        [1.5, 0.5, 0.2, -0.3, -1.0, -6.0],  # largest |λ| negative: the shifted run
    ],
)
def test_power_iteration_matches_eigvalsh(eigenvalues):
    loss, params, a = _quadratic(eigenvalues)
    wd = 1e-3
    got = hessian_max_eigenvalue(loss, params, iters=300, weight_decay=wd)
    want = torch.linalg.eigvalsh(a + wd * torch.eye(6, dtype=torch.float64)).max().item()
    assert got == pytest.approx(want, rel=1e-6)


def test_full_hessian_is_robustdarts_hessian_and_power_iteration_can_be_low():
    # close top eigenvalues: 50 power steps converge slowly ((0.97)^100 ≈ 5%)
    loss, params, a = _quadratic([1.0, 0.97, 0.5, 0.2, -0.1, -0.3], seed=1)
    wd = 1e-3
    want_h = a + wd * torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(full_hessian(loss, params, wd), want_h, rtol=1e-12, atol=1e-12)
    want = torch.linalg.eigvalsh(want_h).max().item()
    assert full_hessian_max_eigenvalue(loss, params, wd) == pytest.approx(want, rel=1e-12)
    power = hessian_max_eigenvalue(loss, params, iters=50, weight_decay=wd, seed=3)
    assert power < want and power != pytest.approx(want, rel=1e-4)


def test_darts_es_eigenvalue_of_the_validation_loss_hessian():
    net = _nb201(4).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 4, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=gen)
    hook = DartsEs()  # hessian "full", as RobustDARTS
    power = DartsEs(hessian="power", power_iters=60)
    ctx = _ctx(net, [hook], epochs=10)
    ctx.epoch = 0
    with pytest.raises(RuntimeError, match="after_arch_step"):
        hook.on_epoch_end(ctx)
    hook.after_arch_step(ctx, x, y)
    diag = hook.on_epoch_end(ctx)
    alpha = net.arch_alpha.detach()

    def loss(a):
        return nn.functional.cross_entropy(functional_call(net, {"arch_alpha": a}, (x,)), y)

    h = torch.autograd.functional.hessian(loss, alpha).reshape(30, 30)
    want = torch.linalg.eigvalsh(h + 1e-3 * torch.eye(30, dtype=torch.float64)).max().item()
    assert diag["darts_es.eigenvalue"] == pytest.approx(want, rel=1e-10)
    power.after_arch_step(ctx, x, y)
    assert power.eigenvalue(ctx) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="hessian"):
        DartsEs(hessian="lanczos")
    ctx.epoch = 1  # ev_freq 2: nothing at odd epochs
    assert hook.on_epoch_end(ctx) == {}


def test_darts_es_local_average_and_stop_rule_by_hand():
    assert local_averages([1, 2, 3], 5) == [2.0]  # centred at 0: mean(ev[0:3])
    assert local_averages([1, 2, 3, 4, 5, 6], 5) == [2.0, 2.5, 3.0, 4.0]
    # eigenvalues every 2 epochs, flat at 1 then growing from epoch 20 on
    epochs = list(range(0, 40, 2))
    ev = [1.0] * 10 + [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]
    stop = None
    for n in range(1, len(ev) + 1):
        stop, ratio = es_stop_epoch(epochs[:n], ev[:n], 5, 4, 1.3, 10)
        if stop is not None:
            break
    # n = 13 (epoch 24): local averages centred at epoch 20 (ev[8:13] = 1,1,1.5,2,2.5 -> 1.6)
    # and at epoch 12 (ev[4:9] -> 1.0): ratio 1.6 > 1.3 -> roll back to epoch 12
    assert n == 13 and stop == 12 and ratio == pytest.approx(1.6)
    # the earlier average must be centred at or after es_start_epoch
    assert es_stop_epoch(epochs[:13], ev[:13], 5, 4, 1.3, 14) == (None, None)


def test_darts_es_stops_and_rolls_back_alpha():
    net = _nb201(0)
    hook = DartsEs(ev_freq=1, window=1, delta=1, factor=1.3, es_start_epoch=0, power_iters=1)
    ctx = _ctx(net, [hook], epochs=10)
    values = iter([1.0, 1.1, 2.0])
    hook.eigenvalue = lambda ctx: next(values)
    alphas = []
    for epoch in range(3):
        ctx.epoch = epoch
        with torch.no_grad():
            net.arch_alpha.add_(1.0)
        alphas.append(net.arch_alpha.detach().clone())
        diag = hook.on_epoch_end(ctx)
        stopped = hook.should_stop(ctx, [])
        assert stopped == (epoch == 2)
    assert diag["darts_es.stop_epoch"] == 1 and diag["darts_es.ratio"] == pytest.approx(2 / 1.1)
    assert torch.equal(net.arch_alpha, alphas[1])
    assert ctx.state["darts_es"] == {"stop_epoch": 1, "triggered_at_epoch": 2, "rolled_back": True}


# --------------------------------------------------------------------------- DARTS+


def test_darts_plus_sc_k_counts_skips_of_the_derived_cell():
    net = _nb201(0)
    hook = DartsPlus(sc_k=2)
    ctx = _ctx(net, [hook])
    with torch.no_grad():
        net.arch_alpha.zero_()
        net.arch_alpha[:, CONV3] = 1.0
        net.arch_alpha[1, SKIP] = 2.0  # one skip edge
    diag = hook.on_epoch_end(ctx)
    assert diag["darts_plus.skip_count"] == 1 and not hook.should_stop(ctx, [])
    with torch.no_grad():
        net.arch_alpha[4, SKIP] = 2.0  # a second one
    assert hook.on_epoch_end(ctx)["darts_plus.skip_count"] == 2 and hook.should_stop(ctx, [])
    assert ctx.state["darts_plus"]["criteria"] == ["sc_2"]


def test_darts_plus_sc_k_on_the_darts_rule_counts_only_kept_edges():
    names = [("none", "skip_connect", "sep_conv_3x3")] * 5  # a 2-node cell: edges 0-1, 2-4
    nodes = darts_nodes(5)
    w = torch.tensor(
        [
            [0.0, 0.9, 0.1],  # node 0: skip (kept)
            [0.0, 0.2, 0.8],
            [0.9, 0.05, 0.05],  # `none` does not count: weakest edge of node 1, dropped
            [0.0, 0.6, 0.4],  # skip (kept)
            [0.0, 0.3, 0.7],
        ]
    )
    assert derive_cell(w, names, nodes) == [  # per node, strongest edge first (quark0)
        (0, "skip_connect"),
        (1, "sep_conv_3x3"),
        (4, "sep_conv_3x3"),
        (3, "skip_connect"),
    ]
    assert skip_count(w, names, nodes) == 2


def test_darts_plus_rt_k_waits_for_k_stable_epochs():
    net = _nb201(0)
    hook = DartsPlus(sc_k=None, rt_k=2)
    ctx = _ctx(net, [hook])
    conv1 = OPS.index("nor_conv_1x1")
    stops = []
    for flip in (False, True, True, True, False):
        with torch.no_grad():
            net.arch_alpha.zero_()
            net.arch_alpha[0, conv1 if flip else CONV3] = 1.0
        diag = hook.on_epoch_end(ctx)
        stops.append((diag["darts_plus.stable_epochs"], hook.should_stop(ctx, [])))
    assert stops == [(0, False), (0, False), (1, False), (2, True), (0, False)]
    ranking = learnable_ranking([torch.softmax(net.arch_alpha, -1)], [[OPS] * 6])
    assert ranking[0] == ("nor_conv_3x3", "nor_conv_1x1")
    with pytest.raises(ValueError):
        DartsPlus(sc_k=None, rt_k=None)


def test_registered():
    from nasrepro import catalog

    assert {"pt", "pt_mag", "selective_stop"} <= set(catalog.names("selector"))
    assert {"darts_plus", "darts_es"} <= set(catalog.names("method"))


def _darts_pt_parse(weights, names):
    """darts-pt model_search_darts_proj.genotype()._parse, restated for a uniform op set:
    edges ranked by their largest non-`none` weight (stable sort), op = first largest
    non-`none` weight (strict >)."""
    gene, start = [], 0
    for i in range(4):
        rows = weights[start : start + i + 2]
        none = names.index("none") if "none" in names else None
        cand = [k for k in range(len(names)) if k != none]
        edges = sorted(range(i + 2), key=lambda x: -max(rows[x][k] for k in cand))[:2]
        for j in edges:
            k_best = None
            for k in cand:
                if k_best is None or rows[j][k] > rows[j][k_best]:
                    k_best = k
            gene.append((names[k_best], j))
        start += i + 2
    return tuple(gene)


def _s3_selector():
    space = build_space("s3")  # {none, skip_connect, sep_conv_3x3}
    torch.manual_seed(0)
    net = space.build_supernet(3, c=2, layers=3, in_channels=3)
    sel = _Selector(space, _ctx(net), _data(n=32), "magnitude", "ordered", None, 0)
    return space, net, sel


def test_pt_genotype_never_takes_a_pruned_edge():
    # S3 corner case: node 1 (edges 2, 3, 4) kept edges 3 and 4, and PT chose `none` on
    # edge 3. Edge 2 is pruned (all zero): it ties with edge 3 at 0 outside `none`.
    space, net, sel = _s3_selector()
    for t in (0, 1):
        sel.proj.ops[t] = {e: 2 for e in range(14)}  # sep_conv_3x3 everywhere ...
        sel.proj.ops[t][3] = 0  # ... but `none` on edge 3
        sel.proj.pruned[t] = {2, 7, 8, 9, 10, 11}  # node 1 keeps 3, 4; node 2: 5, 6; node 3: 12, 13
    geno = sel.genotype(space)
    for kind in ("normal", "reduce"):
        gene = getattr(geno, kind)
        node1 = sorted(j for _, j in gene[2:4])
        assert node1 == [1, 2]  # edges 3 and 4, never the pruned edge 2 (input 0)
        assert dict((j, op) for op, j in gene[2:4]) == {1: "skip_connect", 2: "sep_conv_3x3"}
        assert sorted(j for _, j in gene[4:6]) == [0, 1] and sorted(j for _, j in gene[6:]) == [
            3,
            4,
        ]
    assert sel.kept_none_edges() == [{"alpha": "normal", "edge": 3}, {"alpha": "reduce", "edge": 3}]
    # the old round trip through log-weights made pruned rows uniform, stronger than `none`
    from nasrepro.select.selective_stop import derive_from_weights

    old = derive_from_weights(space, net, sel.final_weights())
    assert 0 in [j for _, j in old.normal[2:4]]


def test_pt_genotype_matches_darts_pt_parse_of_projected_weights():
    # Away from the tie, the genotype is darts-pt's _parse of its projected weights: some
    # edges decided (one-hot), some pruned (zero), the rest softmax(α).
    space, net, sel = _s3_selector()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn(a.shape, generator=gen))
    for t in (0, 1):
        sel.proj.ops[t] = {0: 1, 1: 2, 5: 2, 6: 1, 8: 1}
        sel.proj.pruned[t] = {7, 8}  # node 2 (edges 5..8) keeps 5 and 6
    geno = sel.genotype(space)
    names = list(space.edge_op_names("normal", 0))
    for t, kind in enumerate(("normal", "reduce")):
        w = sel.final_weights()[t]
        assert (w[7] == 0).all() and (w[8] == 0).all() and w[1].tolist() == [0.0, 0.0, 1.0]
        assert getattr(geno, kind) == _darts_pt_parse(w.tolist(), names)


def test_best_valid_selector_derives_from_the_best_validation_epoch():
    from nasrepro.select.best_valid import best_valid, best_valid_epoch

    logs = _history(ROWS)
    for log, acc in zip(logs, (float("nan"), 40.0, 55.0, 55.0), strict=True):
        log.valid_acc = acc  # epoch 0 had no α step; epochs 2 and 3 tie: the earlier wins
    assert best_valid_epoch(logs) == 2
    net = _nb201()
    ctx = SimpleNamespace(state={})
    geno = best_valid(build_space("nb201"), net, ctx=ctx, data=None, history=logs)
    # epoch 2: edges 0-2 conv3 (0.50), edges 3-5 conv3 (0.45)
    assert geno == Nb201Genotype(("nor_conv_3x3",) * 6)
    sel = ctx.state["selection"]
    assert sel["epoch"] == 2 and sel["valid_acc"] == 55.0 and sel["last_epoch"] == 3
    assert torch.equal(net.arch_alpha, _nb201().arch_alpha)  # the live α is left alone
    for log in logs:
        log.valid_acc = float("nan")
    with pytest.raises(ValueError, match="no epoch"):
        best_valid_epoch(logs)
