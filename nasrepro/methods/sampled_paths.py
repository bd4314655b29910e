"""Weight-sharing searches that train one sampled path per step: GDAS, SETN and RSPS.

All three follow AutoDL-Projects (D-X-Y; xautodl, the NAS-Bench-201 baselines of Dong & Yang,
ICLR 2020): exps/NAS-Bench-201-algos/GDAS.py, SETN.py, RANDOM-NAS.py with the supernets of
xautodl/models/cell_searchs/search_model_{gdas,setn,random}.py and search_cells.py.

- GDAS (Dong & Yang, CVPR 2019, `gdas`): every forward (weight step and α step alike) draws
  Gumbel noise g = −log(Exp(1)) once for the whole network, h = softmax((log_softmax(α) + g)/τ),
  takes k = argmax h per edge and mixes with the straight-through hard weights one_hot(k) − h
  + h (sg = stop-gradient): only op k is computed (`SampledOps`). τ decays linearly from
  τ_max = 10 to τ_min = 0.1 over the epochs (GDAS.sh). The cell is argmax α.
- SETN (Dong & Yang, ICCV 2019, `setn`): each weight step trains one architecture drawn
  uniformly (`random.choice` per edge, `dync_genotype(True)`); the α step is DARTS' first-order
  step on the softmax-mixed supernet (`joint`). No gradient clipping (SETN.py). The cell is
  chosen by selector `sampled_best`: the 100 cells most probable under α, each scored on one
  validation batch.
- RSPS (random search with parameter sharing, Li & Talwalkar, UAI 2019, `rsps`): the same
  uniformly drawn paths, no α at all; selector `sampled_best` scores 100 uniformly drawn cells.
  On the DARTS space it is the authors' own RandomNAS (liamcli/randomNAS_release,
  benchmarks/cnn/darts/darts_wrapper_discrete.py `DartsWrapper.sample_arch`,
  `get_weights_from_arch`, `train_batch`): every minibatch trains one architecture drawn with
  numpy, per node four ops `np.random.choice(range(num_ops), 4)` (every op of the space, `none`
  included: their fork of darts keeps it in PRIMITIVES and scripts/parse_cnn_arch.py maps index
  0 to 'none') and, for the normal then the reduction cell, two distinct inputs
  `np.random.choice(range(i + 2), 2, replace=False)`; the supernet mixes with the one-hot
  weights (1 on the drawn (input, op) pairs, 0 elsewhere), so every op still runs, as their
  `model(input, discrete=True)` does.

Sampling draws from the global random streams the references use (torch's for the Gumbel
noise, Python's `random` for uniform paths), which the search seeds; only the supernets that
hold one α per edge for the whole network (NB201) or one per cell type (DARTS) are supported.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.spaces.mixed import SampledOps

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def _one_alpha(ctx: SearchContext, method: str) -> torch.nn.Parameter:
    alphas = ctx.supernet.arch_parameters()
    if len(alphas) != 1 or set(ctx.supernet.cell_alpha_index()) != {0}:
        raise ValueError(
            f"method {method!r} samples one path for the whole network: it needs a supernet "
            "with one α shared by every cell (space nb201)"
        )
    return alphas[0]


def gumbel_hard(alpha: torch.Tensor, tau: float) -> SampledOps:
    """TinyNetworkGDAS.forward: Gumbel noise, softmax((log_softmax(α) + g)/τ), hard one-hot
    with the straight-through gradient; drawn again while any value is inf or nan."""
    while True:
        gumbels = -torch.empty_like(alpha).exponential_().log()
        logits = (alpha.log_softmax(dim=1) + gumbels) / tau
        probs = torch.softmax(logits, dim=1)
        index = probs.max(-1, keepdim=True)[1]
        one_h = torch.zeros_like(logits).scatter_(-1, index, 1.0)
        hardwts = one_h - probs.detach() + probs
        bad = torch.isinf(gumbels).any() or torch.isinf(probs).any() or torch.isnan(probs).any()
        if not bad:
            return SampledOps(index.squeeze(-1), hardwts)


def uniform_path(num_edges: int, num_ops: int) -> SampledOps:
    """One op per edge, each `random.choice` over the ops in edge order (TinyNetworkRANDOM
    `random_genotype`, TinyNetworkSETN `dync_genotype(True)`)."""
    ops = list(range(num_ops))
    return SampledOps(torch.tensor([random.choice(ops) for _ in range(num_edges)]))


DartsArch = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


def darts_arch(num_ops: int, steps: int = 4) -> DartsArch:
    """DartsWrapper.sample_arch: per node i, four ops drawn with replacement from every op,
    then two distinct inputs among the i + 2 earlier states for the normal cell, two for the
    reduction cell, all from numpy's global stream in that order. Returns (normal, reduce),
    each two (input, op) pairs per node."""
    normal: list[tuple[int, int]] = []
    reduce: list[tuple[int, int]] = []
    for i in range(steps):
        ops = np.random.choice(range(num_ops), 4)
        nodes_normal = np.random.choice(range(i + 2), 2, replace=False)
        nodes_reduce = np.random.choice(range(i + 2), 2, replace=False)
        normal += [(int(nodes_normal[0]), int(ops[0])), (int(nodes_normal[1]), int(ops[1]))]
        reduce += [(int(nodes_reduce[0]), int(ops[2])), (int(nodes_reduce[1]), int(ops[3]))]
    return tuple(normal), tuple(reduce)


def darts_arch_weights(
    arch: DartsArch, num_ops: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """DartsWrapper.get_weights_from_arch: one-hot (edges × ops) weights per cell type, the
    edge of node i's input j at offset Σ_{i' < i}(i' + 2) + j."""
    out = []
    for pairs in arch:
        steps = len(pairs) // 2
        w = torch.zeros(sum(i + 2 for i in range(steps)), num_ops, dtype=like.dtype)
        offset = 0
        for i in range(steps):
            for j, k in pairs[2 * i : 2 * i + 2]:
                w[offset + j, k] = 1.0
            offset += i + 2
        out.append(w.to(like.device))
    return out[0], out[1]


def darts_cell_weights(supernet: Any, arch: DartsArch) -> list[torch.Tensor]:
    """The per-cell weights of `arch` on a DARTS supernet (normal cells, reduction cells)."""
    normal = supernet.arch_parameters()[0]
    weights = darts_arch_weights(arch, normal.shape[1], normal)
    return [weights[i] for i in supernet.cell_alpha_index()]


def is_darts_supernet(supernet: Any) -> bool:
    """A supernet with an α per cell type (normal, reduce), as DARTS' Network."""
    return set(supernet.cell_alpha_index()) == {0, 1} and len(supernet.arch_parameters()) == 2


def cycle_batches(make: Any, who: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`make(k)`'s batches for k = 0, 1, ...: the validation loader restarted (reshuffled)
    whenever it runs out, as the references' `except:` branches restart it."""
    for k in itertools.count():
        empty = True
        for batch in make(k):
            empty = False
            yield batch
        if empty:
            raise ValueError(f"{who}: the validation split is empty")


def tau_schedule(tau_max: float, tau_min: float, epoch: int, epochs: int) -> float:
    """GDAS.py: τ_max − (τ_max − τ_min)·epoch/(epochs − 1)."""
    if epochs == 1:
        return tau_max
    return tau_max - (tau_max - tau_min) * epoch / (epochs - 1)


@register_method(
    "gdas",
    "GDAS: one Gumbel-softmax sampled path per forward, straight-through hard weights",
    args={"tau_max": Float(0, lo_open=True), "tau_min": Float(0, lo_open=True)},
)
class Gdas(MethodHook):
    name = "gdas"

    def __init__(
        self,
        tau_max: float = 10.0,  # scripts-search/NAS-Bench-201-algos/GDAS.sh --tau_max 10
        tau_min: float = 0.1,  # --tau_min 0.1
    ) -> None:
        super().__init__()
        if tau_min > tau_max:
            raise ValueError(f"gdas: tau_min {tau_min} must not exceed tau_max {tau_max}")
        self.tau_max, self.tau_min = tau_max, tau_min
        self.tau = tau_max

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.tau = tau_schedule(self.tau_max, self.tau_min, ctx.epoch, ctx.settings.epochs)

    def _sample(self, ctx: SearchContext) -> list[Any]:
        sample = gumbel_hard(_one_alpha(ctx, self.name), self.tau)
        return [sample] * ctx.supernet.num_search_cells  # type: ignore[attr-defined]

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._sample(ctx)

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._sample(ctx)

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"gdas.tau": self.tau}


class _UniformPaths(MethodHook):
    """The weight step trains one uniformly drawn architecture, shared by every cell (NB201)
    or by every cell of a type (DARTS, `darts_arch`)."""

    darts_space = False  # whether the space draws DARTS cells (RandomNAS); SETN's NB201 only

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        if self.darts_space and is_darts_supernet(ctx.supernet):
            num_ops = ctx.supernet.arch_parameters()[0].shape[1]
            return darts_cell_weights(ctx.supernet, darts_arch(num_ops))
        alpha = _one_alpha(ctx, self.name)
        path = uniform_path(alpha.shape[0], alpha.shape[1])
        return [path] * ctx.supernet.num_search_cells  # type: ignore[attr-defined,list-item]


@register_method("setn", "SETN: uniform paths for the weights, DARTS' α step", args={})
class Setn(_UniformPaths):
    name = "setn"


@register_method(
    "rsps",
    "RSPS / RandomNAS: uniform paths (NB201) or uniform DARTS cells for the weights, no α",
    args={},
)
class Rsps(_UniformPaths):
    name = "rsps"
    darts_space = True

    def update_alpha(self, ctx: SearchContext) -> bool:
        return False  # RANDOM-NAS.py trains the weights only
