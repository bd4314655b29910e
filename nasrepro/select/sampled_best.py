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
from nasrepro.methods.sampled_paths import uniform_path
from nasrepro.spaces.base import SearchSpace, Supernet
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


def _cycle(make: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The validation loader's batches, restarted (reshuffled) whenever it runs out (the
    reference's `except:` branch); `make(k)` gives the k-th pass."""
    for k in itertools.count():
        empty = True
        for batch in make(k):
            empty = False
            yield batch
        if empty:
            raise ValueError("sampled_best: the validation split is empty")


def score_candidates(
    supernet: Supernet,
    cells: list[tuple[int, ...]],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
) -> list[float]:
    """Top-1 accuracy (%) of each cell on the next batch, the supernet in eval mode."""
    was_training = supernet.training
    supernet.eval()
    n_cells = supernet.num_search_cells  # type: ignore[attr-defined]
    accs = []
    try:
        with torch.no_grad():
            for cell in cells:
                x, y = next(batches)
                path = SampledOps(torch.tensor(cell))
                logits = supernet(x.to(device), cell_weights=[path] * n_cells)
                accs.append(float((logits.argmax(1) == y.to(device)).double().mean()) * 100.0)
    finally:
        supernet.train(was_training)
    return accs


def _enas_hook(ctx: Any) -> Any:
    from nasrepro.methods.enas import Enas

    hooks = [h for h in getattr(ctx, "hooks", []) if isinstance(h, Enas)]
    if not hooks:
        raise ValueError("sampled_best: candidates 'controller' needs the search's method enas")
    return hooks[0]


@register_selector(
    "sampled_best",
    "SETN/RSPS: the best of n sampled cells by supernet accuracy on a validation batch each",
    args={
        "candidates": Choice("alpha_top", "random", "controller"),
        "n": Int(1),
        "batch_size": Int(1),
        "augment": Bool(),
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
    **_: Any,
) -> Any:
    (alpha,) = supernet.arch_parameters()
    if candidates == "alpha_top":
        cells = alpha_top(alpha, n)
    elif candidates == "controller":
        cells = [tuple(_enas_hook(ctx).sample()) for _ in range(n)]
    else:
        cells = [tuple(uniform_path(*alpha.shape).index.tolist()) for _ in range(n)]
    if tuple(space.edge_op_names("cell", 0)) != OPS:
        raise ValueError("sampled_best scores NAS-Bench-201 cells (space nb201)")

    def passes(k: int) -> Any:  # its own stream, after the search's epochs
        key = 10**6 + k
        return data.loader.arch_pass(key, augment=augment, shuffle=True, batch_size=batch_size)

    accs = score_candidates(supernet, cells, _cycle(passes), alpha.device)
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

