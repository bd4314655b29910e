"""P-DARTS' progressive search and genotype against chenxin061/pdarts (NASREPRO_REF_PDARTS).

The reference's `train_search.py` parses its command line and builds CUDA data loaders at
import, so its functions (`train`, `get_min_k`, `get_min_k_no_zero`, `check_sk_number`,
`delete_min_sk_prob`, `keep_1_on`, `keep_2_branches`, `parse_network`) are taken from the
file's syntax tree and run as written; `utils.py` needs torchvision, so its meters come the
same way. `main`'s stage loop is not a function: the driver below walks it statement by
statement (new `Network` per stage, SGD + Adam, dropout rate per epoch, `get_min_k` pruning,
the final `get_min_k_no_zero` / two-edge / skip-limit derivation) around those functions.
A tiny 3-stage search in float64 (3, 4, 5 cells at C=4; 8 -> 5 -> 3 ops; skip dropout
0.2/0.4/0.7; 3 epochs of 2 steps per stage, α frozen for the first) must give the same
softmax(α) after every epoch, the same pruned op sets and the same genotype.
"""

from __future__ import annotations

import ast
import copy
import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _oracle import checkout, reference_modules
from torch import nn

from nasrepro.search.engine import SearchContext
from nasrepro.search.stages import run_stages
from nasrepro.select.pdarts import pdarts, pdarts_cells
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

C, CLASSES, EPOCHS, FROZEN, STEPS = 4, 10, 3, 1, 2
LAYERS = (3, 4, 5)
RATES = (0.2, 0.4, 0.7)
KEEP = (5, 3)  # train_search.py num_to_keep[:2]
DROP = (3, 2, 2)  # train_search.py num_to_drop
ARCH_LR = 0.05  # larger than 6e-4 so that a few α steps decide the pruning
FUNCS = ("train", "get_min_k", "get_min_k_no_zero", "check_sk_number", "delete_min_sk_prob",
         "keep_1_on", "keep_2_branches", "parse_network")  # fmt: skip


def _defs(path: Path, names: tuple[str, ...], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute the top-level definitions `names` of `path` in `namespace`."""
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)
            and n.name in names]  # fmt: skip
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def _reference(root: Path, gs: Any) -> dict[str, Any]:
    # utils.py imports torchvision, and its `accuracy` needs torch <= 1.x (`.view` of a
    # transposed tensor): only the meters' numbers depend on it, not the search.
    meter = _defs(root / "utils.py", ("AvgrageMeter",), {})["AvgrageMeter"]
    utils = SimpleNamespace(
        AvgrageMeter=meter, accuracy=lambda out, y, topk: [torch.zeros(()) for _ in topk]
    )
    ns = {"np": np, "copy": copy, "nn": nn, "logging": logging, "utils": utils,
          "PRIMITIVES": gs.PRIMITIVES, "Genotype": gs.Genotype,
          "args": SimpleNamespace(grad_clip=5.0, report_freq=50)}  # fmt: skip
    return _defs(root / "train_search.py", FUNCS, ns)


def _data(gen: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
        return x, torch.randint(0, CLASSES, (4,), generator=gen)

    return [(*batch(), *batch()) for _ in range(STEPS)]


def _cosine(epoch: int) -> float:  # CosineAnnealingLR(T_max=25, eta_min=0) at the epoch start
    return 0.025 * (1 + math.cos(math.pi * epoch / EPOCHS)) / 2


def _run_reference(ms: Any, ref: dict[str, Any], batches: list) -> dict[str, Any]:
    """train_search.py `main` on `batches`, stage by stage (see the module docstring)."""
    prims = ms.PRIMITIVES
    sw_n = [[True] * len(prims) for _ in range(14)]
    sw_r = copy.deepcopy(sw_n)
    out: dict[str, Any] = {"init": [], "alphas": [], "ops": []}
    model = None
    for sp in range(3):
        torch.manual_seed(10 + sp)
        model = ms.Network(C, CLASSES, LAYERS[sp], nn.CrossEntropyLoss(), switches_normal=sw_n,
                           switches_reduce=sw_r, p=RATES[sp]).double()  # fmt: skip
        out["init"].append([v.clone() for v in model.state_dict().values()])
        out["ops"].append([[p for p, on in zip(prims, row, strict=True) if on] for row in sw_n]
                          + [[p for p, on in zip(prims, row, strict=True) if on] for row in sw_r])
        params = [v for k, v in model.named_parameters() if "alphas" not in k]
        opt = torch.optim.SGD(params, 0.025, momentum=0.9, weight_decay=3e-4)
        opt_a = torch.optim.Adam(model.arch_parameters(), lr=ARCH_LR, betas=(0.5, 0.999),
                                 weight_decay=1e-3)  # fmt: skip
        torch.manual_seed(100 + sp)
        for epoch in range(EPOCHS):
            for g in opt.param_groups:
                g["lr"] = _cosine(epoch)
            if epoch < FROZEN:
                model.p = RATES[sp] * (EPOCHS - epoch - 1) / EPOCHS
            else:
                model.p = RATES[sp] * np.exp(-(epoch - FROZEN) * 0.2)
            model.update_p()
            train_q = [(b[0], b[1]) for b in batches]
            valid_q = [(b[2], b[3]) for b in batches]
            ref["train"](train_q, valid_q, nn.DataParallel(model), params, model._criterion, opt, opt_a,
                         _cosine(epoch), train_arch=epoch >= FROZEN)  # fmt: skip
            out["alphas"].append([F.softmax(a, dim=-1).detach().clone()
                                  for a in model.arch_parameters()])  # fmt: skip
        if sp == 2:  # the last stage's op sets; the final derivation prunes them
            n_prob = F.softmax(model.arch_parameters()[0], dim=-1).data.numpy().copy()
            r_prob = F.softmax(model.arch_parameters()[1], dim=-1).data.numpy().copy()
            out["genotype"] = _derive(ref, n_prob, r_prob, sw_n, sw_r, 2)
            break
        for sw, a in ((sw_n, model.arch_parameters()[0]), (sw_r, model.arch_parameters()[1])):
            prob = F.softmax(a, dim=-1).data.numpy()
            for i in range(14):
                idxs = [j for j in range(len(prims)) if sw[i][j]]
                for idx in ref["get_min_k"](prob[i, :], DROP[sp]):
                    sw[i][idxs[idx]] = False
    return out


def _derive(ref, n_prob, r_prob, sw_n2, sw_r2, max_sk) -> Any:
    """The end of train_search.py `main` from the last stage's op sets (`switches_*_2`):
    `get_min_k_no_zero` pruning, no none, two edges per node, then the loop from 8 skips
    down, stopped once the normal cell has at most `max_sk`."""
    sw_n, sw_r = copy.deepcopy(sw_n2), copy.deepcopy(sw_r2)
    for sw, prob in ((sw_n, n_prob), (sw_r, r_prob)):
        for i in range(14):
            idxs = [j for j in range(len(sw[i])) if sw[i][j]]
            for idx in ref["get_min_k_no_zero"](prob[i, :], idxs, DROP[2]):
                sw[i][idxs[idx]] = False
    n_final, r_final = [0] * 14, [0] * 14
    for i in range(14):
        if sw_n2[i][0]:
            n_prob[i][0] = 0
        n_final[i] = max(n_prob[i])
        if sw_r2[i][0]:
            r_prob[i][0] = 0
        r_final[i] = max(r_prob[i])
    keep_n, keep_r, n, start = [0, 1], [0, 1], 3, 2
    for _ in range(3):
        end = start + n
        tn, tr = n_final[start:end], r_final[start:end]
        en = sorted(range(n), key=lambda x, t=tn: t[x])
        er = sorted(range(n), key=lambda x, t=tr: t[x])
        keep_n += [en[-1] + start, en[-2] + start]
        keep_r += [er[-1] + start, er[-2] + start]
        start, n = end, n + 1
    for i in range(14):
        if i not in keep_n:
            sw_n[i] = [False] * len(sw_n[i])
        if i not in keep_r:
            sw_r[i] = [False] * len(sw_r[i])
    # `for sks in range(0, 9): max_sk = 8 - sks` logs a genotype per limit; the state
    # carries over, so the genotype of limit M is the switches once the loop passed M.
    for limit in range(8, max_sk - 1, -1):
        num = ref["check_sk_number"](sw_n)
        while num > limit:
            n_prob = ref["delete_min_sk_prob"](sw_n, sw_n2, n_prob)
            sw_n = ref["keep_1_on"](sw_n2, n_prob)
            sw_n = ref["keep_2_branches"](sw_n, n_prob)
            num = ref["check_sk_number"](sw_n)
    return ref["parse_network"](sw_n, sw_r)


def _pairs(gene) -> tuple:
    return tuple((op, int(j)) for op, j in gene)


def test_pdarts_progressive_search_matches_reference() -> None:
    root = checkout("chenxin061/pdarts")
    gen = torch.Generator().manual_seed(0)
    batches = _data(gen)
    with reference_modules(root, "model_search", "genotypes") as (ms, gs):
        ms.PRIMITIVES = gs.PRIMITIVES
        ref = _reference(root, gs)
        expected = _run_reference(ms, ref, batches)

    space = build_space("darts")
    settings = SearchSettings(
        epochs=EPOCHS, batch_size=4, lr=0.025, lr_min=0.0, momentum=0.9, weight_decay=3e-4,
        arch_lr=ARCH_LR, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, grad_clip=5.0,
        arch_grad_clip=5.0, alpha_step="before_weights", deterministic=False,
        stages=[{"layers": LAYERS[0], "skip_dropout": RATES[0], "frozen_epochs": FROZEN},
                {"layers": LAYERS[1], "ops_per_edge": KEEP[0], "skip_dropout": RATES[1],
                 "frozen_epochs": FROZEN},
                {"layers": LAYERS[2], "ops_per_edge": KEEP[1], "skip_dropout": RATES[2],
                 "frozen_epochs": FROZEN}],
    )  # fmt: skip
    built: list[Any] = []

    def build(args: dict[str, Any]) -> Any:
        i = len(built)
        net = space.build_supernet(CLASSES, c=C, **args).double()
        ops = [list(o) for o in net.cell_ops.normal] + [list(o) for o in net.cell_ops.reduce]
        assert ops == expected["ops"][i], f"stage {i}: pruned op sets differ"
        values = list(net.state_dict().keys())
        assert len(values) == len(expected["init"][i])
        net.load_state_dict(dict(zip(values, expected["init"][i], strict=True)))
        built.append(net)
        torch.manual_seed(100 + i)  # the reference's dropout draws start here too
        return net

    ctx = SearchContext(
        supernet=space.build_supernet(CLASSES, c=C, layers=3).double(),
        settings=settings, hooks=[], device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )  # fmt: skip
    history = run_stages(ctx, build, batches, STEPS)
    assert len(history) == 3 * EPOCHS and [h.epoch for h in history] == list(range(9))
    for k, (log, ref_alpha) in enumerate(zip(history, expected["alphas"], strict=True)):
        stage_ops = built[k // EPOCHS].cell_ops
        for name, probs in zip(("normal", "reduce"), ref_alpha, strict=True):
            full = space.cell_ops.of(name == "reduce")
            kept = stage_ops.of(name == "reduce")
            mine = torch.tensor([[row[full[e].index(op)] for op in kept[e]]
                                 for e, row in enumerate(log.alpha[name])], dtype=torch.float64)  # fmt: skip
            torch.testing.assert_close(mine, probs, rtol=0, atol=1e-12)
    assert ctx.supernet is built[-1]
    genotype = pdarts(space, ctx.supernet, max_skips=2)
    assert genotype.normal == _pairs(expected["genotype"].normal)
    assert genotype.reduce == _pairs(expected["genotype"].reduce)


@pytest.mark.parametrize("seed", range(6))
def test_pdarts_skip_limit_matches_reference(seed: int) -> None:
    """The final derivation on random last-stage α (3 ops per edge, none on some edges),
    skips favoured so that the limit acts, for M = 2, 1 and 0."""
    root = checkout("chenxin061/pdarts")
    with reference_modules(root, "genotypes") as (gs,):
        ref = _reference(root, gs)
        prims = gs.PRIMITIVES
    rng = np.random.default_rng(seed)
    sws = []
    for _ in range(2):
        sw = []
        for _e in range(14):
            others = rng.choice([1, 2, 4, 5, 6, 7], size=2 if rng.random() < 0.5 else 1,
                                replace=False)  # fmt: skip
            on = {3, *others.tolist()} if rng.random() < 0.8 else {0, *rng.choice(
                [1, 2, 4, 5, 6, 7], size=2, replace=False).tolist()}
            if len(on) == 2:
                on.add(0)
            sw.append([j in on for j in range(8)])
        sws.append(sw)
    sw_n, sw_r = sws
    probs = []
    for sw in sws:
        logits = rng.normal(size=(14, 3))
        for i in range(14):
            ops = [j for j in range(8) if sw[i][j]]
            if 3 in ops:
                logits[i, ops.index(3)] += 1.0
        probs.append(torch.softmax(torch.tensor(logits), dim=-1))
    for max_sk in (2, 1, 0):
        expected = _derive(ref, probs[0].numpy().copy(), probs[1].numpy().copy(), sw_n, sw_r,
                           max_sk)  # fmt: skip
        n_ops = [tuple(prims[j] for j in range(8) if row[j]) for row in sw_n]
        r_ops = [tuple(prims[j] for j in range(8) if row[j]) for row in sw_r]
        mine, _ = pdarts_cells(probs[0], probs[1], n_ops, r_ops, max_sk)
        assert mine.normal == _pairs(expected.normal), max_sk
        assert mine.reduce == _pairs(expected.reduce), max_sk
