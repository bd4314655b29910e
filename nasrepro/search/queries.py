"""NAS-Bench-201's query-based baselines: random search, REA, REINFORCE (and BOHB, bohb.py).

They train nothing: each "evaluation" of a cell is a lookup in the NAS-Bench-201 file, whose
recorded training time is charged to a simulated time budget. The algorithms follow
AutoDL-Projects exps/NAS-Bench-201-algos (RANDOM.py, R_EA.py, reinforce.py, BOHB.py) as
NAS-Bench-201's Table 5 ran them (docs/NAS-Bench-201.md's commands; 12,000 s budget):

- a query of cell `a` (R_EA.py `train_and_eval`, use_012_epoch_training): the search
  dataset's validation accuracy after the 12-epoch schedule (hp="12") of one of its trials
  chosen at random (`is_random=True`), costing its training time plus one validation pass
  (`train-all-time + valid-per-time`); the search dataset is `cifar10-valid` for CIFAR-10.
  BOHB's worker queries hp="200" instead (BOHB.py `MyWorker.compute`).
- random search (RANDOM.py): uniform cells until the next one would exceed the budget; the
  best by validation accuracy.
- REA (R_EA.py, Real et al. 2019): a population of 10 random cells, then tournaments of
  `sample_size` (3) drawn with replacement; the best of each is mutated (one edge of a
  uniformly chosen node gets another op) and replaces the oldest; the best of the history.
- REINFORCE (reinforce.py, Williams 1992): a softmax policy per edge (1e-3·randn init),
  Adam(lr), reward = validation accuracy, baseline an exponential moving average (0.9); the
  best cell of the trace.

Randomness comes from the streams the references use (Python's `random` for cells and the
benchmark's trial choice, torch's for REINFORCE's policy), which the trial seeds. The
references also add the real time their loops take to the simulated total (milliseconds
against a 12,000 s budget); nasrepro counts simulated time only, so a run is repeatable.
Cells are tuples of op indices over NB201's six edges (spaces/nb201.py EDGES order).
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from nasrepro.spaces.nb201 import EDGES, MAX_NODES, OPS, Nb201Genotype

Cell = tuple[int, ...]
# The benchmark key of each search dataset's validation accuracy (R_EA.py main: "cifar10" is
# searched on `cifar10-valid`, the others on their own key).
SEARCH_KEYS = {
    "cifar10": "cifar10-valid", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120",
}  # fmt: skip
# The edges of each intermediate node, in EDGES order (R_EA.py mutates node by node).
NODE_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (i, _) in enumerate(EDGES) if i == node) for node in range(1, MAX_NODES)
)


class Queries(Protocol):
    """A benchmark to query: the ops of its cells and (validation accuracy, seconds) of one."""

    ops: tuple[str, ...]

    def query(self, cell: Cell) -> tuple[float, float]: ...


@dataclass
class Trace:
    """What a query search saw: every queried cell with its accuracy and simulated cost."""

    cells: list[Cell] = field(default_factory=list)
    accs: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    total: float = 0.0  # simulated seconds charged to the budget

    def add(self, cell: Cell, acc: float, cost: float) -> None:
        self.cells.append(cell)
        self.accs.append(float(acc))
        self.seconds.append(float(cost))


def random_cell(n_ops: int) -> Cell:
    """R_EA.py random_architecture: `random.choice(op_names)` per edge, node by node."""
    ops = list(range(n_ops))
    return tuple(random.choice(ops) for _ in EDGES)


def mutate(cell: Cell, n_ops: int) -> Cell:
    """R_EA.py mutate_arch: a node uniformly (`random.randint`), one of its edges uniformly,
    and an op different from the current one (`random.choice` until it differs)."""
    node = NODE_EDGES[random.randint(0, len(NODE_EDGES) - 1)]
    edge = node[random.randint(0, len(node) - 1)]
    ops = list(range(n_ops))
    op = random.choice(ops)
    while op == cell[edge]:
        op = random.choice(ops)
    return cell[:edge] + (op,) + cell[edge + 1 :]


def random_search(queries: Queries, time_budget: float) -> tuple[Cell, Trace]:
    """RANDOM.py main: draw, query, stop before the budget is exceeded; the best cell."""
    trace = Trace()
    best: Cell | None = None
    best_acc = -1.0
    while trace.total < time_budget:
        cell = random_cell(len(queries.ops))
        acc, cost = queries.query(cell)
        if trace.total + cost > time_budget:
            break
        trace.total += cost
        trace.add(cell, acc, cost)
        if best is None or best_acc < acc:
            best, best_acc = cell, acc
    if best is None:
        raise ValueError(f"random search: no cell fits the time budget of {time_budget} s")
    return best, trace


def regularized_evolution(
    queries: Queries, time_budget: float, population_size: int, sample_size: int
) -> tuple[Cell, Trace]:
    """R_EA.py regularized_evolution (aging evolution, Real et al. 2019, Algorithm 1)."""
    trace = Trace()
    n = len(queries.ops)
    population: collections.deque[tuple[Cell, float]] = collections.deque()
    while len(population) < population_size:  # the initial population is not budgeted
        cell = random_cell(n)
        acc, cost = queries.query(cell)
        population.append((cell, acc))
        trace.add(cell, acc, cost)
        trace.total += cost
    while trace.total < time_budget:
        sample = [random.choice(list(population)) for _ in range(sample_size)]
        parent = max(sample, key=lambda m: m[1])  # the first of equal accuracies
        child = mutate(parent[0], n)
        acc, cost = queries.query(child)
        if trace.total + cost > time_budget:
            break
        trace.total += cost
        population.append((child, acc))
        trace.add(child, acc, cost)
        population.popleft()
    best = max(range(len(trace.cells)), key=lambda i: (trace.accs[i], -i))
    return trace.cells[best], trace


class Policy(nn.Module):
    """reinforce.py Policy: one logit per (edge, op), 1e-3·randn, softmax per edge."""

    def __init__(self, n_ops: int) -> None:
        super().__init__()
        self.arch_parameters = nn.Parameter(1e-3 * torch.randn(len(EDGES), n_ops))

    def forward(self) -> torch.Tensor:
        return torch.softmax(self.arch_parameters, dim=-1)


class MovingAverage:
    """reinforce.py ExponentialMovingAverage: a bias-corrected EMA (numerator/denominator)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.numerator = 0.0
        self.denominator = 0.0

    def update(self, value: float) -> None:
        self.numerator = self.momentum * self.numerator + (1 - self.momentum) * value
        self.denominator = self.momentum * self.denominator + (1 - self.momentum)

    def value(self) -> float:
        return self.numerator / self.denominator


def reinforce(
    queries: Queries, time_budget: float, learning_rate: float, ema_momentum: float
) -> tuple[Cell, Trace]:
    """reinforce.py main: sample one op per edge from the policy, reward = validation
    accuracy, loss −log π(a)·(reward − baseline), Adam; the best cell of the trace (which
    keeps the one sampled when the budget ran out, as the reference's does)."""
    policy = Policy(len(queries.ops))
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    baseline = MovingAverage(ema_momentum)
    trace = Trace()
    while trace.total < time_budget:
        dist = torch.distributions.Categorical(policy())
        action = dist.sample()
        log_prob = dist.log_prob(action)
        cell = tuple(action.tolist())
        reward, cost = queries.query(cell)
        trace.add(cell, reward, cost)
        if trace.total + cost < time_budget:
            trace.total += cost
        else:
            break
        baseline.update(reward)
        loss = (-log_prob * (reward - baseline.value())).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    best = max(range(len(trace.cells)), key=lambda i: (trace.accs[i], -i))
    return trace.cells[best], trace


# ------------------------------------------------------------------------- the benchmark


class Nb201Queries:
    """Queries against a NAS-Bench-201 / NATS-Bench API object (the `nb201-api` evaluator's).

    The cells searched are the product space of the ops the file's cells use: all of NB201
    for a real file; a file that does not hold that whole product is refused.
    """

    def __init__(
        self,
        api: Any,
        dataset: str,
        hp: str,
        path: str = "<benchmark>",
        prepare: Callable[[int], None] | None = None,
    ) -> None:
        if dataset not in SEARCH_KEYS:
            raise ValueError(
                f"a query search runs on {', '.join(SEARCH_KEYS)}, not {dataset!r}"
            )
        self.api, self.key, self.hp = api, SEARCH_KEYS[dataset], hp
        self.prepare = prepare  # loads a cell's results on demand (a NATS archive directory)
        used = {op for i in range(len(api)) for op in Nb201Genotype.from_arch_str(str(api[i])).ops}
        self.ops = tuple(op for op in OPS if op in used)
        if len(api) != len(self.ops) ** len(EDGES):
            raise ValueError(
                f"{path}: holds {len(api)} cells, not the {len(self.ops)}^{len(EDGES)} cells of "
                f"the space over its ops {self.ops}: a query search needs every cell"
            )
        self.queries = 0

    def arch_str(self, cell: Cell) -> str:
        return Nb201Genotype(tuple(self.ops[k] for k in cell)).to_arch_str()

    def query(self, cell: Cell) -> tuple[float, float]:
        index = self.api.query_index_by_arch(self.arch_str(cell))
        if index < 0:
            raise ValueError(f"cell {self.arch_str(cell)} is not in the benchmark")
        if self.prepare is not None:
            self.prepare(index)
        info = self.api.get_more_info(index, self.key, iepoch=None, hp=self.hp, is_random=True)
        self.queries += 1
        return float(info["valid-accuracy"]), float(info["train-all-time"] + info["valid-per-time"])


ALGORITHMS: dict[str, Callable[..., tuple[Cell, Trace]]] = {
    "random": random_search,
    "rea": regularized_evolution,
    "reinforce": reinforce,
}
# The arguments of each algorithm (with NAS-Bench-201's values: scripts-search/
# NAS-Bench-201-algos/*.sh and docs/NAS-Bench-201.md's commands) and the benchmark's hp.
DEFAULTS: dict[str, dict[str, Any]] = {
    "random": {"time_budget": 12000.0},
    "rea": {"time_budget": 12000.0, "population_size": 10, "sample_size": 3},
    "reinforce": {"time_budget": 12000.0, "learning_rate": 0.5, "ema_momentum": 0.9},
    "bohb": {
        "time_budget": 12000.0, "n_iters": 50, "eta": 3, "min_budget": 12.0,
        "max_budget": 200.0, "num_samples": 4, "random_fraction": 0.0,
        "bandwidth_factor": 3.0, "min_bandwidth": 0.3, "top_n_percent": 15,
    },
}  # fmt: skip
HP = {"random": "12", "rea": "12", "reinforce": "12", "bohb": "200"}


def check_query(query: Any) -> str | None:
    """Why an experiment's `query:` mapping is unusable, or None."""
    if not isinstance(query, dict) or "algorithm" not in query:
        return "must be a mapping with `algorithm` (random, rea, reinforce, bohb)"
    algo = query["algorithm"]
    if algo not in DEFAULTS:
        return f"algorithm must be one of {', '.join(DEFAULTS)}, got {algo!r}"
    unknown = sorted(set(query) - {"algorithm"} - set(DEFAULTS[algo]))
    if unknown:
        return f"{algo} takes {', '.join(sorted(DEFAULTS[algo]))}; unknown {', '.join(unknown)}"
    for key, value in query.items():
        if key == "algorithm":
            continue
        default = DEFAULTS[algo][key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or value < 0 or (isinstance(default, int) and not isinstance(value, int)):
            kind = "an integer" if isinstance(default, int) else "a number"
            return f"{key} must be {kind} >= 0, got {value!r}"
    return None


def run_query(
    query: dict[str, Any],
    api: Any,
    dataset: str,
    path: str,
    prepare: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the experiment's query search on the benchmark; the chosen cell and its trace."""
    problem = check_query(query)
    if problem is not None:
        raise ValueError(f"query: {problem}")
    algo = query["algorithm"]
    args = {**DEFAULTS[algo], **{k: v for k, v in query.items() if k != "algorithm"}}
    queries = Nb201Queries(api, dataset, HP[algo], path, prepare)
    if algo == "bohb":
        from nasrepro.search.bohb import bohb

        cell, trace, extra = bohb(queries, **args)
    else:
        cell, trace = ALGORITHMS[algo](queries, **args)
        extra = {}
    return {
        "algorithm": algo,
        "args": args,
        "hp": HP[algo],
        "benchmark_key": queries.key,
        "ops": list(queries.ops),
        "genotype": queries.arch_str(cell),
        "queries": len(trace.cells),
        "simulated_seconds": trace.total,
        "best_valid_acc": max(trace.accs) if trace.accs else None,
        "trace": [
            {"cell": queries.arch_str(c), "valid_acc": a, "seconds": s}
            for c, a, s in zip(trace.cells, trace.accs, trace.seconds, strict=True)
        ],
        **extra,
    }
