"""SGAS (Li et al., CVPR 2020) against its definitions: the criteria on hand-computed cases,
the decision schedule and order, node pruning, α of decided edges held, the forced genotype,
and SGAS+PT's op choice. The step-by-step comparison with lightaime/sgas is
tests/oracle/test_sgas_oracle.py."""

import copy
import math

import pytest
import torch
from torch import nn

from nasrepro.datasets import build_search_data
from nasrepro.methods.base import build_hooks
from nasrepro.methods.sgas import (
    certainty,
    edge_scores,
    forced_cell,
    is_decision_epoch,
    normalize,
    prune_full_nodes,
    sgas_epochs,
    sgas_selector,
    stability,
)
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.select.pt import _mask_op, heldout_accuracy
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

NAMES = ("none", "a", "b")
# softmax rows of three edges: (importance, p) = (0.5, [.5, .5]), (0.8, [1, 0]), (0.9, [2/3, 1/3])
W = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.8, 0.0], [0.1, 0.6, 0.3]], dtype=torch.float64)


def test_normalize_and_certainty_by_hand() -> None:
    assert normalize(torch.tensor([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalize(torch.tensor([2.0, 2.0])).tolist() == [0.0, 0.0]  # utils.normalize
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [2 / 3, 1 / 3]], dtype=torch.float64)
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    assert certainty(p).tolist() == pytest.approx([0.0, 1.0, 1 - h], abs=1e-15)


def test_criterion_1_prefers_certainty_times_importance() -> None:
    score, p, cols = edge_scores(W, NAMES)
    assert cols == [1, 2]
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    # norm(importance) = [0, 0.75, 1]; norm(certainty) = [0, 1, (1 - h) / 1]
    assert score.tolist() == pytest.approx([0.0, 0.75, 1 - h], abs=1e-15)
    assert int(score.argmax()) == 1  # not the most important edge (2): it is less certain


def test_criterion_2_multiplies_the_normalized_histogram_intersection() -> None:
    history = [
        torch.tensor([[0.5, 0.5], [0.0, 1.0], [2 / 3, 1 / 3]], dtype=torch.float64),
        torch.tensor([[1.0, 0.0], [0.5, 0.5], [2 / 3, 1 / 3]], dtype=torch.float64),
    ]
    _, p, _ = edge_scores(W, NAMES)
    # Σ min(p_h, p), averaged: edge 0 (1 + .5)/2, edge 1 (0 + .5)/2, edge 2 (1 + 1)/2
    assert stability(history, p).tolist() == pytest.approx([0.75, 0.25, 1.0], abs=1e-15)
    assert stability([], p).tolist() == [0.0, 0.0, 0.0]
    score, _, _ = edge_scores(W, NAMES, history)
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    # norm(stability) = [2/3, 0, 1]: edge 1, certain but unstable, drops to 0
    assert score.tolist() == pytest.approx([0.0, 0.0, 1 - h], abs=1e-15)


def test_schedule_and_node_pruning() -> None:
    assert sgas_epochs(8) == 50  # 9 + 5·7 + 5 + 1 (train_search.py)
    assert sgas_epochs(8, 1, 1) == 14
    assert [e for e in range(50) if is_decision_epoch(e, 9, 5)] == [9, 14, 19, 24, 29, 34, 39, 44, 49]
    nodes = [[0, 1], [2, 3, 4], [5, 6, 7, 8]]
    pruned: set[int] = set()
    prune_full_nodes(nodes, {0: 1, 2: 1}, pruned)
    assert pruned == set()
    prune_full_nodes(nodes, {0: 1, 2: 1, 4: 2, 6: 1, 8: 2}, pruned)
    assert pruned == {3, 5, 7}


def test_forced_cell_fills_open_nodes_by_importance() -> None:
    names = [("none", "a", "b")] * 5
    alpha = torch.tensor(
        [[0, 1, 2], [0, 2, 1], [5, 1, 0], [0, 3, 1], [0, 0, 4]], dtype=torch.float64
    )
    w = torch.softmax(alpha, dim=-1)
    # node 0 decided on edge 0 (op a) and open on 1; node 1: edge 4 decided (b), edge 2 has
    # the most `none` (least important), edge 3 fills the second input with its argmax `a`.
    gene = forced_cell(w, alpha, names, [[0, 1], [2, 3, 4]], {0: 1, 4: 2}, set())
    assert gene == [("a", 0), ("a", 1), ("a", 1), ("b", 2)]


SETTINGS = dict(
    epochs=4, batch_size=8, lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False,
    weight_decay=3e-4, arch_lr=3e-2, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3,
    grad_clip=5.0, alpha_step="before_weights", steps_per_epoch=2, image_size=8,
)  # fmt: skip


def _search(args: dict, epochs: int = 4):
    seed_everything(0, deterministic=True)
    data = build_search_data(
        "synthetic", root=None, batch_size=8, seed=0, image_size=8,
        options={"n": 48, "num_classes": 3},
    )  # fmt: skip
    net = build_space("darts").build_supernet(3, c=2, layers=3)
    hooks = build_hooks(["sgas"], {"sgas": args})
    ctx = SearchContext(
        net, SearchSettings(**{**SETTINGS, "epochs": epochs}), hooks, torch.device("cpu"),
        nn.CrossEntropyLoss(),
    )  # fmt: skip
    ctx.valid_batches = data.loader.arch_pass
    seen: list[list[torch.Tensor]] = []
    history = run_search(
        ctx, data.loader, data.steps_per_epoch,
        on_epoch_end=lambda log: seen.append([a.detach().clone() for a in net.arch_parameters()]),
    )  # fmt: skip
    return ctx, hooks[0], history, seen


def test_decisions_follow_the_scores_and_hold_alpha() -> None:
    ctx, hook, history, seen = _search({"warmup_dec_epoch": 1, "decision_freq": 2})
    net = ctx.supernet
    assert [d["epoch"] for d in hook.decisions] == [1, 1, 3, 3]  # normal, reduce per epoch
    assert [d["alpha"] for d in hook.decisions] == ["normal", "reduce", "normal", "reduce"]
    names = hook.names[0][0]
    for d in hook.decisions:
        t = ["normal", "reduce"].index(d["alpha"])
        alpha = seen[d["epoch"]][t]
        score, p, cols = edge_scores(torch.softmax(alpha, dim=-1), names)
        open_edges = [e for e in range(14) if e not in hook.proj.ops[t] or e == d["edge"]]
        open_edges = [e for e in open_edges if e not in hook.proj.pruned[t]]
        if d["epoch"] == 1:  # the first decision: the largest score of all edges
            assert d["edge"] == int(score.argmax())
        # the largest score among the edges still open (edges pruned by this very decision
        # were open and scored no higher)
        assert d["edge"] == max(open_edges, key=lambda e: (float(score[e]), -e))
        assert d["op"] == names[cols[int(p[d["edge"]].argmax())]]
        assert d["score"] == pytest.approx(float(score[d["edge"]]), abs=1e-12)
    # α rows of decided edges stay at their value from the decision on; the others move.
    for t in range(2):
        e = hook.decisions[t]["edge"]
        assert torch.equal(seen[1][t][e], seen[3][t][e])
        assert not torch.equal(seen[1][t], seen[3][t])
    # The projected mixing weights: one-hot on the decided op.
    w = hook.proj.cell_weights(net)[0]
    e, k = next(iter(hook.proj.ops[0].items()))
    assert w[e].tolist() == [1.0 if i == k else 0.0 for i in range(w.shape[1])]
    assert history[-1].diagnostics["sgas.undecided_edges"] == 28 - 4 - sum(
        len(p) for p in hook.proj.pruned
    )
    genotype = sgas_selector(build_space("darts"), net, ctx=ctx)
    assert ctx.state["selection"]["complete"] is False
    decided = {(d["op"], d["edge"]) for d in hook.decisions if d["alpha"] == "normal"}
    assert len(genotype.normal) == 8 and len(decided) == 2


def test_pt_op_choice_is_the_op_whose_removal_costs_most() -> None:
    ctx, hook, _, _ = _search(
        {"warmup_dec_epoch": 0, "decision_freq": 5, "op_selection": "perturbation",
         "eval_batches": 1}, epochs=1,
    )  # fmt: skip
    for t, d in enumerate(hook.decisions):
        accs = d["accuracy_without"]
        assert "none" not in accs and len(accs) == 7
        assert d["op"] == min(accs, key=lambda n: accs[n])  # first minimum
        # Each recorded accuracy is the held-out accuracy with that op masked, the decided
        # op itself already projected (normal is decided before reduce).
        names = hook.names[t][d["edge"]]
        k = names.index(d["op"])
        saved = hook.proj.ops[t].pop(d["edge"])
        batch = [next(iter(ctx.valid_batches(0)))]
        w = hook.proj.cell_weights(ctx.supernet, perturb=(t, _mask_op(d["edge"], k)))
        hook.proj.ops[t][d["edge"]] = saved
        assert heldout_accuracy(ctx, batch, w)[0] == pytest.approx(accs[d["op"]], abs=1e-9)


def test_sgas_needs_the_none_op_and_its_selector_the_method() -> None:
    net = build_space("darts").build_supernet(3, c=2, layers=3, include_none=False)
    hook = build_hooks(["sgas"], {})[0]
    ctx = SearchContext(
        net, SearchSettings(**SETTINGS), [hook], torch.device("cpu"), nn.CrossEntropyLoss()
    )
    with pytest.raises(ValueError, match="include_none"):
        hook.on_build(ctx)
    with pytest.raises(ValueError, match="method 'sgas'"):
        sgas_selector(build_space("darts"), net, ctx=SearchContext(
            net, SearchSettings(**SETTINGS), [], torch.device("cpu"), nn.CrossEntropyLoss()))
    with pytest.raises(ValueError, match="op_selection"):
        build_hooks(["sgas"], {"sgas": {"op_selection": "random"}})


def test_a_resumed_search_takes_the_same_decisions() -> None:
    """Killed after epoch 2 of 4 (between decisions at 1 and 3), resumed from the engine
    state: the decisions, the held α rows and the final α equal the uninterrupted run's."""
    args = {"warmup_dec_epoch": 1, "decision_freq": 2, "use_history": True, "history_size": 2}
    ctx, hook, _, _ = _search(args)

    seed_everything(0, deterministic=True)
    data = build_search_data(
        "synthetic", root=None, batch_size=8, seed=0, image_size=8,
        options={"n": 48, "num_classes": 3},
    )  # fmt: skip
    net = build_space("darts").build_supernet(3, c=2, layers=3)
    states: list[dict] = []

    def fresh(hooks):
        return SearchContext(
            net, SearchSettings(**SETTINGS), hooks, torch.device("cpu"), nn.CrossEntropyLoss()
        )

    first = build_hooks(["sgas"], {"sgas": args})
    run_search(  # a checkpoint is written at once: copy what later steps change in place
        fresh(first), data.loader, data.steps_per_epoch,
        checkpoint=lambda state: states.append(copy.deepcopy(state)),
    )  # fmt: skip
    assert first[0].decisions == hook.decisions  # the same run, uninterrupted
    killed = states[1]  # the state after epoch 2
    second = build_hooks(["sgas"], {"sgas": args})
    run_search(fresh(second), data.loader, data.steps_per_epoch, resume=killed)
    assert second[0].decisions == hook.decisions
    assert second[0].proj.ops == hook.proj.ops and second[0].proj.pruned == hook.proj.pruned
    for a, b in zip(net.arch_parameters(), ctx.supernet.arch_parameters(), strict=True):
        assert torch.equal(a, b)
