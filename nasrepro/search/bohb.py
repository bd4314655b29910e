"""BOHB (Falkner, Klein & Hutter, ICML 2018) on NAS-Bench-201's categorical cells.

NAS-Bench-201 ran BOHB through `hpbandster` (AutoDL exps/NAS-Bench-201-algos/BOHB.py); that
library does not run against the current ConfigSpace/numpy (its nameserver cannot serialize
numpy strings), so this is BOHB from the paper's definition, with BOHB.py's settings:

- Hyperband (Li et al., 2018) over budgets b_min = 12, b_max = 200, η = 3: s_max + 1 = 3
  successive-halving brackets, iteration i runs bracket s = s_max − (i mod (s_max + 1)) with
  n = ⌊(s_max + 1)/(s + 1)⌋·η^s configurations at budget b_max·η^−s, the best 1/η advancing
  each rung (hpbandster's HyperBand: [9, 3, 1] at [22.2, 66.7, 200], [3, 1] at [66.7, 200],
  [3] at [200]); `n_iters` iterations (50).
- New configurations (Algorithm 2): with probability ρ (random_fraction, 0) or when no budget
  has |D_b| ≥ N_min + 2 observations (N_min = d + 1), uniformly random; otherwise, on the
  largest such budget, split D_b into the best N_l = max(N_min, ⌊q·|D_b|⌋) (q = 15 %) and the
  rest N_g = max(N_min, |D_b| − N_l), fit a product kernel density to each, draw
  `num_samples` (4) configurations from l' (l with every bandwidth × b_w = 3) and return the
  one maximizing l(x)/g(x).
- Kernels: NB201's edges are categorical, so each dimension uses the Aitchison–Aitken kernel
  k(x, x_i) = 1 − λ if x = x_i, λ/(c − 1) otherwise, the kernel statsmodels' KDEMultivariate
  (which hpbandster uses) gives unordered variables. λ follows the normal-reference rule on the
  integer codes, 1.06·σ·n^(−1/(4 + d)), held in [min_bandwidth (0.3), (c − 1)/c]: the upper end
  is the uniform kernel (hpbandster leaves λ unclipped, where the kernel turns negative).
- The objective, as BOHB.py's worker: loss = 100 − the validation accuracy of the 200-epoch
  schedule (hp="200", the budget itself is not used by the worker), each evaluation costing
  its recorded training time; once the simulated time budget is spent every further
  evaluation returns loss 100 at no cost. The answer is the incumbent: the configuration with
  the lowest loss among the evaluations on the largest budget (the first such).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasrepro.search.queries import Cell, Queries, Trace


def hyperband_brackets(
    min_budget: float, max_budget: float, eta: int
) -> list[list[tuple[int, float]]]:
    """Per bracket s = s_max..0: [(configurations, budget)] of its rungs (hpbandster's
    HyperBand.get_next_iteration)."""
    rungs = -int(math.log(min_budget / max_budget) / math.log(eta)) + 1
    budgets = [max_budget * eta ** (-k) for k in range(rungs - 1, -1, -1)]
    out = []
    for s in range(rungs - 1, -1, -1):
        n0 = int(math.floor(rungs / (s + 1)) * eta**s)
        counts = [max(int(n0 * eta ** (-i)), 1) for i in range(s + 1)]
        out.append(list(zip(counts, budgets[-s - 1 :], strict=True)))
    return out


def aa_bandwidths(data: np.ndarray, n_levels: int, min_bandwidth: float) -> np.ndarray:
    """Normal-reference bandwidth per dimension, 1.06·σ·n^(−1/(4+d)), in [min_bw, (c−1)/c]."""
    n, d = data.shape
    bw = 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + d))
    return np.clip(bw, min_bandwidth, (n_levels - 1) / n_levels)


def aa_density(x: np.ndarray, data: np.ndarray, bw: np.ndarray, n_levels: int) -> float:
    """Product Aitchison–Aitken kernel density of cell `x` (codes) under `data`."""
    same = data == x[None, :]
    k = np.where(same, 1.0 - bw[None, :], bw[None, :] / (n_levels - 1))
    return float(np.prod(k, axis=1).mean())


@dataclass
class _Model:
    good: np.ndarray
    bad: np.ndarray
    bw_good: np.ndarray
    bw_bad: np.ndarray


def fit_model(
    cells: list[Cell], losses: list[float], n_levels: int, min_points: int, top_n_percent: int,
    min_bandwidth: float,
) -> _Model:  # fmt: skip
    """Eq. (2)-(3): the best N_l and the rest (up to N_g) of one budget's observations."""
    order = sorted(range(len(losses)), key=lambda i: losses[i])
    n = len(order)
    n_good = max(min_points, top_n_percent * n // 100)
    n_bad = max(min_points, n - n_good)
    good = np.array([cells[i] for i in order[:n_good]], dtype=float)
    bad = np.array([cells[i] for i in order[n_good : n_good + n_bad]], dtype=float)
    return _Model(
        good, bad, aa_bandwidths(good, n_levels, min_bandwidth),
        aa_bandwidths(bad, n_levels, min_bandwidth),
    )  # fmt: skip


def sample_from_model(
    model: _Model, n_levels: int, num_samples: int, bandwidth_factor: float, rng: random.Random
) -> Cell:
    """Draw `num_samples` cells from l' (a random good point, each dimension kept with
    probability 1 − λ·b_w, else another level uniformly) and return the best l/g."""
    bw = np.minimum(model.bw_good * bandwidth_factor, (n_levels - 1) / n_levels)
    best, best_ratio = None, -math.inf
    for _ in range(num_samples):
        centre = model.good[rng.randrange(len(model.good))]
        cell = []
        for dim, value in enumerate(centre.astype(int).tolist()):
            if rng.random() < bw[dim]:
                others = [v for v in range(n_levels) if v != value]
                value = rng.choice(others)
            cell.append(value)
        x = np.array(cell, dtype=float)
        l_x = aa_density(x, model.good, model.bw_good, n_levels)
        g_x = aa_density(x, model.bad, model.bw_bad, n_levels)
        ratio = max(l_x, 1e-32) / max(g_x, 1e-32)
        if ratio > best_ratio:
            best, best_ratio = tuple(cell), ratio
    assert best is not None
    return best


def bohb(
    queries: Queries,
    *,
    time_budget: float,
    n_iters: int,
    eta: int,
    min_budget: float,
    max_budget: float,
    num_samples: int,
    random_fraction: float,
    bandwidth_factor: float,
    min_bandwidth: float,
    top_n_percent: int,
) -> tuple[Cell, Trace, dict[str, Any]]:
    """Run BOHB; (incumbent, the trace of budgeted queries, per-run details)."""
    rng = random.Random(random.getrandbits(64))  # seeded by the trial's seed
    n_levels, dims = len(queries.ops), 6
    min_points = dims + 1
    trace = Trace()
    observed: dict[float, tuple[list[Cell], list[float]]] = {}
    runs: list[tuple[Cell, float, float]] = []  # (cell, budget, loss) in evaluation order

    def new_config() -> Cell:
        if rng.random() < random_fraction:
            return tuple(rng.randrange(n_levels) for _ in range(dims))
        usable = [b for b, (cells, _) in observed.items() if len(cells) >= min_points + 2]
        if not usable:
            return tuple(rng.randrange(n_levels) for _ in range(dims))
        cells, losses = observed[max(usable)]
        model = fit_model(cells, losses, n_levels, min_points, top_n_percent, min_bandwidth)
        return sample_from_model(model, n_levels, num_samples, bandwidth_factor, rng)

    ended = False  # BOHB.py's worker `is_end`: once set, every loss is 100 at no cost

    def evaluate(cell: Cell, budget: float) -> float:
        nonlocal ended
        loss = 100.0
        if not ended:
            acc, cost = queries.query(cell)
            if trace.total + cost <= time_budget:
                trace.total += cost
                trace.add(cell, acc, cost)
                loss = 100.0 - acc
            else:
                ended = True
        cells, losses = observed.setdefault(budget, ([], []))
        cells.append(cell)
        losses.append(loss)
        runs.append((cell, budget, loss))
        return loss

    brackets = hyperband_brackets(min_budget, max_budget, eta)
    for it in range(n_iters):
        rungs = brackets[it % len(brackets)]
        configs = [new_config() for _ in range(rungs[0][0])]
        for k, (_, budget) in enumerate(rungs):
            losses = [evaluate(c, budget) for c in configs]
            if k + 1 < len(rungs):
                keep = rungs[k + 1][0]
                order = sorted(range(len(configs)), key=lambda i: losses[i])  # stable
                configs = [configs[i] for i in sorted(order[:keep])]
    finals = [(i, c, loss) for i, (c, b, loss) in enumerate(runs) if b == max(r[1] for r in runs)]
    _, incumbent, loss = min(finals, key=lambda t: (t[2], t[0]))
    return incumbent, trace, {"incumbent_loss": loss, "evaluations": len(runs)}
