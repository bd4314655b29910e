"""SGAS against lightaime/sgas (cnn/), step by step, from a checkout in NASREPRO_REF_SGAS.

The reference side is train_search.py's loop around the authors' `Network` (model_search.py:
decided edges run their op alone, pruned edges are skipped), `Architect` (architect.py: Adam
skips the α of decided edges) and `edge_decision` (train_search.py, with utils.py's
`normalize` / `histogram_intersection`; the script itself parses arguments and opens a
TensorBoard writer on import, so these functions are taken from its source). Float64 on the
CPU; the weights and α copied across; a decision after every epoch from the second.

Left out of the comparison: the BN running statistics inside mixed ops. The reference does
not run the ops a decision dropped (their statistics freeze); here they run with weight 0
(their statistics move), which no train-mode forward reads. The reference's
`optimizer.zero_grad()` runs as under the PyTorch it was written for (gradients zeroed, not
dropped), so the dropped ops' weights keep their weight decay on both sides.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributions.categorical as cate
import torch.nn.functional as F
from _oracle import checkout, copy_by_structure, reference_modules
from _trajectory import assert_within, deviation, make_batches, run_nasrepro, state_of
from torch import nn

from nasrepro.methods.base import build_hooks
from nasrepro.methods.sgas import sgas_selector
from nasrepro.search.engine import SearchContext
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

EPOCHS, STEPS, BATCH, CLASSES, LAYERS, C = 6, 2, 4, 10, 3, 4
CE = nn.CrossEntropyLoss()
SETTINGS = dict(
    lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4, arch_lr=3e-4,
    arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, alpha_step="before_weights",
    grad_clip=5.0,
)  # fmt: skip  (train_search.py defaults)


def _functions(path: Path, names: tuple[str, ...], namespace: dict, fixes=()) -> dict:
    """Exec the top-level functions `names` of a reference script into `namespace` (its
    `.cuda(async=True)`, a syntax error since Python 3.7, read as `non_blocking`; `fixes`:
    further (old, new) text replacements)."""
    text = path.read_text().replace("async=True", "non_blocking=True")
    for old, new in fixes:
        assert old in text, old
        text = text.replace(old, new)
    tree = ast.parse(text)
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    assert {n.name for n in body} == set(names), names
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


# histogram_average sums Criterion 2's stability into torch.zeros(..., dtype=torch.float): in a
# float32 search that is the search's precision; in this float64 case it would round the sums
# to float32 (scores off by ~1e-4 relative), so it sums in the probabilities' dtype here.
HISTOGRAM_DTYPE = ("dtype=torch.float)", "dtype=probs.dtype)")


def _mixed_bn_stats(name: str) -> bool:
    return "ops." in name and ("running_" in name or "num_batches_tracked" in name)


@pytest.mark.parametrize("use_history", [False, True], ids=["criterion1", "criterion2"])
def test_sgas_trajectory_and_decisions(use_history: bool) -> None:
    root = checkout("lightaime/sgas") / "cnn"
    args = SimpleNamespace(
        momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_weight_decay=1e-3,
        grad_clip=SETTINGS["grad_clip"], unrolled=False, warmup_dec_epoch=1, decision_freq=1,
        use_history=use_history, history_size=2,
    )  # fmt: skip
    epochs = make_batches(EPOCHS, STEPS, BATCH, 8, CLASSES, seed=5)
    scores: list[tuple[str, torch.Tensor]] = []
    theirs: list = []
    with reference_modules(root, "model_search", "architect") as (ms, arch):
        utils = _functions(root / "utils.py", ("normalize", "histogram_intersection"), {
            "torch": torch, "np": np})  # fmt: skip
        script = _functions(root / "train_search.py", ("histogram_average", "edge_decision"), {
            "torch": torch, "F": F, "cate": cate, "math": math, "np": np, "args": args,
            "utils": SimpleNamespace(**utils), "logging": SimpleNamespace(info=lambda *a: None),
            "print": lambda *a, **k: None,
            "score_image": lambda kind, score, epoch: scores.append((kind, score.clone())),
        }, fixes=[HISTOGRAM_DTYPE])  # fmt: skip
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, CE).double()
        ref.alphas_normal = [a.detach().double().requires_grad_() for a in ref.alphas_normal]
        ref.alphas_reduce = [a.detach().double().requires_grad_() for a in ref.alphas_reduce]
        ours = build_space("darts").build_supernet(CLASSES, c=C, layers=LAYERS).double()
        with torch.no_grad():
            for m in ref.modules():
                if isinstance(m, nn.BatchNorm2d) and m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for rows, mine in zip(
                (ref.alphas_normal, ref.alphas_reduce), ours.arch_parameters(), strict=True
            ):
                mine.copy_(torch.randn(mine.shape, generator=g, dtype=mine.dtype))
                for e, a in enumerate(rows):
                    a.copy_(mine[e])
        n = len(ref.alphas_normal)
        ref.normal_selected_idxs = torch.tensor(n * [-1], dtype=torch.int)
        ref.reduce_selected_idxs = torch.tensor(n * [-1], dtype=torch.int)
        ref.normal_candidate_flags = torch.tensor(n * [True], dtype=torch.bool)
        ref.reduce_candidate_flags = torch.tensor(n * [True], dtype=torch.bool)
        optimizer = torch.optim.SGD(ref.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(EPOCHS), 0.001)
        architect = arch.Architect(ref, args)
        histories: dict[str, list] = {"normal": [], "reduce": []}

        def snapshot() -> list[torch.Tensor]:
            alphas = [torch.stack(ref.alphas_normal), torch.stack(ref.alphas_reduce)]
            return state_of(ref, alphas, leave_out=_mixed_bn_stats)

        for epoch, batches in enumerate(epochs):
            for x_w, y_w, x_a, y_a in batches:
                ref.train()
                architect.step(x_w, y_w, x_a, y_a, None, optimizer, unrolled=False)
                optimizer.zero_grad(set_to_none=False)  # the PyTorch of the script
                CE(ref(x_w), y_w).backward()
                nn.utils.clip_grad_norm_(ref.parameters(), args.grad_clip)
                optimizer.step()
                theirs.append(snapshot())
            for kind in ("normal", "reduce"):
                _, idxs, flags = script["edge_decision"](
                    kind, getattr(ref, f"alphas_{kind}"), getattr(ref, f"{kind}_selected_idxs"),
                    getattr(ref, f"{kind}_candidate_flags"), histories[kind], epoch, ref, args,
                )  # fmt: skip
                setattr(ref, f"{kind}_selected_idxs", idxs)
                setattr(ref, f"{kind}_candidate_flags", flags)
            scheduler.step()
        ref_genotype = ref.get_genotype(force=True)

    hooks = build_hooks(["sgas"], {"sgas": {
        "warmup_dec_epoch": 1, "decision_freq": 1, "use_history": use_history, "history_size": 2,
    }})  # fmt: skip
    ctx = SearchContext(
        ours, SearchSettings(epochs=EPOCHS, batch_size=BATCH, **SETTINGS), hooks,
        torch.device("cpu"), CE,
    )  # fmt: skip
    mine = run_nasrepro(
        ctx, epochs, lambda: state_of(ours, ours.arch_parameters(), ("alphas",), _mixed_bn_stats)
    )
    assert_within(deviation(mine, theirs), 1e-9)
    # The same decisions, edge by edge, in the same order.
    hook = hooks[0]
    names = ours.mixed_ops()[0].op_names
    for t, kind in enumerate(("normal", "reduce")):
        idxs = getattr(ref, f"{kind}_selected_idxs").tolist()
        decided = {e: names[k] for e, k in hook.proj.ops[t].items()}
        assert decided == {e: names[k] for e, k in enumerate(idxs) if k > 0}
        assert hook.proj.pruned[t] == {e for e, k in enumerate(idxs) if k == 0}
        order = [d["edge"] for d in hook.decisions if d["alpha"] == kind]
        assert len(order) == sum(k >= 1 for k in idxs)  # one decision per decided edge
        # The scores at the decisions equal the reference's (its score_image sees them).
        ref_scores = [s for k, s in scores if k == kind][1:]
        ours_at = [d["score"] for d in hook.decisions if d["alpha"] == kind]
        for e, s_ref, s in zip(order, ref_scores, ours_at, strict=False):
            assert s == pytest.approx(float(s_ref[e]), rel=1e-12)
    assert decided, "no decision was taken: the case tests nothing"
    genotype = sgas_selector(build_space("darts"), ours, ctx=ctx)
    assert genotype.normal == tuple((op, int(j)) for op, j in ref_genotype.normal)
    assert genotype.reduce == tuple((op, int(j)) for op, j in ref_genotype.reduce)
