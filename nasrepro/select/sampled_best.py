"""Selection among sampled cells by the supernet's accuracy on validation batches (SETN, RSPS,
ENAS).

AutoDL-Projects exps/NAS-Bench-201-algos/SETN.py `get_best_arch` and RANDOM-NAS.py
`search_find_best`: the supernet in eval mode scores `n` candidate cells (each with every
search cell running that one cell), each on the next batch of the validation loader (the
validation half with the test transform, shuffled, `test_batch_size` 512; the loader restarts
when it runs out), and keeps the first with the highest batch accuracy (`np.argmax`).

- `candidates: alpha_top` (SETN, `return_topK`): the `n` cells with the highest log-probability
  under softmax(α), Σ over edges of log_softmax(α)[edge, op] summed in edge order; ties keep
  the order of `Structure.gen_all` (every cell, the first edge the slowest digit).
- `candidates: random` (RSPS, `random_genotype`): `n` cells drawn uniformly, each edge's op by
  Python's `random.choice`.
- DARTS space (RandomNAS, liamcli/randomNAS_release searchers/random_weight_share.py
  `Random_NAS.get_eval_arch` with benchmarks/cnn/darts/darts_wrapper_discrete.py `evaluate`):
  `candidates: random` draws each cell with numpy as the weight steps do (`darts_arch`); each
  candidate is scored on the next `batches` (10) batches of the α split, accuracy pooled over
  their images (`AvgrageMeter` weighted by batch size); the candidates are sorted by error
  (stable), and the first `finalists` (10) are scored again on the next len(α split) batches
  (`evaluate(arch, split='valid')`, the stream continuing); the lowest error wins, the first
  in that order on ties. Their valid_queue is the training half's transform (`augment: true`)
  at the search's batch size. Only the first round's winner is returned (`archs[0]` of
  `get_eval_arch`), so the later rounds (`max(1, int(B/10000))`) are not run.
- `candidates: controller` (ENAS.py `get_best_arch(..., controller_num_samples)`): `n` cells
  drawn from the trained controller of method `enas`, scored on ENAS' validation loader: the
  validation half with the training transform (`augment: true`) in batches of the search's
  128.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch

from nasrepro.catalog import Bool, Choice, Int, register_selector
from nasrepro.methods.sampled_paths import (
    DartsArch,
    cycle_batches,
    darts_arch,
    darts_cell_weights,
    is_darts_supernet,
    uniform_path,
)
from nasrepro.spaces.base import SearchSpace, Supernet
from nasrepro.spaces.darts import CONCAT, DartsGenotype
from nasrepro.spaces.mixed import SampledOps
from nasrepro.spaces.nb201 import OPS, Nb201Genotype


def alpha_top(alpha: torch.Tensor, n: int) -> list[tuple[int, ...]]:
    """TinyNetworkSETN.return_topK(n): cells (op index per edge) by decreasing log-probability,
    stable over gen_all's order."""
    edges, ops = alpha.shape
    logp = torch.log_softmax(alpha.detach(), dim=-1)
    cells = torch.tensor(list(itertools.product(range(ops), repeat=edges)))
    total = logp[0, cells[:, 0]]  # summed edge by edge, the reference's order of additions
    for e in range(1, edges):
        total = total + logp[e, cells[:, e]]
    order = sorted(range(len(cells)), key=lambda i: -float(total[i]))
    return [tuple(cells[i].tolist()) for i in order[: n if 0 <= n < len(cells) else len(cells)]]


def score_candidates(
    supernet: Supernet,
    cells: list[Any],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    per_cell: int = 1,
) -> list[float]:
    """Top-1 accuracy (%) of each cell on its next `per_cell` batches (pooled over their
    images), the supernet in eval mode. A cell is an op index per edge (NB201: every search
    cell runs it) or a `DartsArch` (its one-hot weights per cell type)."""
    was_training = supernet.training
    supernet.eval()
    darts = is_darts_supernet(supernet)
    accs = []
    try:
        with torch.no_grad():
            for cell in cells:
                if darts:
                    cell_weights: list[Any] = darts_cell_weights(supernet, cell)
                else:
                    n_cells = supernet.num_search_cells  # type: ignore[attr-defined]
                    cell_weights = [SampledOps(torch.tensor(cell))] * n_cells
                hits = []
                for _ in range(per_cell):
                    x, y = next(batches)
                    logits = supernet(x.to(device), cell_weights=cell_weights)
                    hits.append((logits.argmax(1) == y.to(device)).double())
                accs.append(float(torch.cat(hits).mean()) * 100.0)
    finally:
        supernet.train(was_training)
    return accs


def darts_genotype(space: SearchSpace, arch: DartsArch) -> DartsGenotype:
    """scripts/parse_cnn_arch.py: (op name, input) per drawn pair, every node concatenated."""
    names = [space.edge_op_names(kind, 0) for kind in ("normal", "reduce")]
    normal, reduce = ([(names[c][k], j) for j, k in arch[c]] for c in (0, 1))
    return DartsGenotype(normal, CONCAT, reduce, CONCAT)


def _darts_best(
    space: SearchSpace,
    supernet: Supernet,
    passes: Any,
    n: int,
    batches: int,
    finalists: int,
) -> tuple[DartsGenotype, float]:
    """Get_eval_arch's first round: n cells on `batches` batches each, then the best
    `finalists` (by error, stable) on a full pass of the α split each, the lowest error kept."""
    num_ops = supernet.arch_parameters()[0].shape[1]
    device = supernet.arch_parameters()[0].device
    cells = [darts_arch(num_ops) for _ in range(n)]
    stream = cycle_batches(passes, "sampled_best")
    accs = score_candidates(supernet, cells, stream, device, batches)
    order = sorted(range(len(cells)), key=lambda i: -accs[i])  # sorted by error, stable
    if finalists > 0:
        full = len(passes(0))
        short = [cells[i] for i in order[:finalists]]
        final = score_candidates(supernet, short, stream, device, full)
        best = min(range(len(short)), key=lambda i: (-final[i], i))
        return darts_genotype(space, short[best]), final[best]
    return darts_genotype(space, cells[order[0]]), accs[order[0]]


def _enas_hook(ctx: Any) -> Any:
    from nasrepro.methods.enas import Enas

    hooks = [h for h in getattr(ctx, "hooks", []) if isinstance(h, Enas)]
    if not hooks:
        raise ValueError("sampled_best: candidates 'controller' needs the search's method enas")
    return hooks[0]


@register_selector(
    "sampled_best",
    "SETN/RSPS/RandomNAS: the best of n sampled cells by supernet accuracy on validation batches",
    args={
        "candidates": Choice("alpha_top", "random", "controller"),
        "n": Int(1),
        "batch_size": Int(1),
        "augment": Bool(),
        "batches": Int(1),
        "finalists": Int(0),
    },
)
def sampled_best(
    space: SearchSpace,
    supernet: Supernet,
    *,
    ctx: Any,
    data: Any,
    candidates: str = "alpha_top",
    n: int = 100,  # SETN.sh / RANDOM-NAS.sh --select_num 100
    batch_size: int = 512,  # configs/nas-benchmark/algos/{SETN,RANDOM}.config test_batch_size
    augment: bool = False,  # SETN/RANDOM-NAS: the test transform; ENAS.py: the training one
    batches: int = 1,  # batches per candidate; RandomNAS (DARTS space): 10 (`evaluate`)
    finalists: int = 0,  # rescored on a full α pass; RandomNAS: 10 (`get_eval_arch`)
    **_: Any,
) -> Any:
    def passes(k: int) -> Any:  # its own stream, after the search's epochs
        key = 10**6 + k
        return data.loader.arch_pass(key, augment=augment, shuffle=True, batch_size=batch_size)

    if is_darts_supernet(supernet):
        if candidates != "random":
            raise ValueError("sampled_best on the DARTS space draws its candidates: 'random'")
        genotype, acc = _darts_best(space, supernet, passes, n, batches, finalists)
        if ctx is not None:
            ctx.state["selection"] = {
                "selector": "sampled_best",
                "candidates": candidates,
                "n": n,
                "batches": batches,
                "finalists": finalists,
                "batch_size": batch_size,
                "augment": augment,
                "best_acc": acc,
                "genotype": space.format_genotype(genotype),
            }
        return genotype
    (alpha,) = supernet.arch_parameters()
    if candidates == "alpha_top":
        cells = alpha_top(alpha, n)
    elif candidates == "controller":
        cells = [tuple(_enas_hook(ctx).sample()) for _ in range(n)]
    else:
        cells = [tuple(uniform_path(*alpha.shape).index.tolist()) for _ in range(n)]
    if tuple(space.edge_op_names("cell", 0)) != OPS:
        raise ValueError("sampled_best scores NAS-Bench-201 or DARTS cells (space nb201, darts)")

    accs = score_candidates(supernet, cells, cycle_batches(passes, "sampled_best"), alpha.device)
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))  # np.argmax: the first maximum
    genotype = Nb201Genotype(tuple(OPS[k] for k in cells[best]))
    if ctx is not None:
        ctx.state["selection"] = {
            "selector": "sampled_best",
            "candidates": candidates,
            "n": len(cells),
            "batch_size": batch_size,
            "augment": augment,
            "best_batch_acc": accs[best],
            "genotype": space.format_genotype(genotype),
        }
        if candidates != "controller":  # ENAS' supernet has no trained α
            ctx.state["selection"]["argmax_genotype"] = space.format_genotype(
                space.derive_argmax(supernet)
            )
    return genotype

