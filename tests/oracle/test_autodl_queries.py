"""REA and REINFORCE on NAS-Bench-201 against AutoDL-Projects' own scripts, query by query.

Skipped unless NASREPRO_REF_AUTODL names a checkout of D-X-Y/AutoDL-Projects (its
exps/NAS-Bench-201-algos are not in the `xautodl` package). Both sides query the same
made-up benchmark object (every cell, accuracies a function of the cell and of the trial the
benchmark draws with `random.choice`, as nas_201_api's `is_random=True`) from the same seeded
streams: the cells, the accuracies and the final choice must be the same. The reference adds
the real time of its loop (microseconds) to a 4,000 s budget whose costs are whole seconds, so
no decision lies near the budget's edge.
"""

from __future__ import annotations

import itertools
import random

import torch
from _oracle import checkout, reference_modules

from nasrepro.search.queries import Nb201Queries, regularized_evolution, reinforce
from nasrepro.spaces.nb201 import OPS, Nb201Genotype

CELLS = [Nb201Genotype(ops).to_arch_str() for ops in itertools.product(OPS, repeat=6)]
INDEX = {a: i for i, a in enumerate(CELLS)}


class FakeBench:
    """The benchmark API surface both sides use; numbers are made up."""

    def __len__(self) -> int:
        return len(CELLS)

    def __getitem__(self, i: int) -> str:
        return CELLS[i]

    def query_index_by_arch(self, arch) -> int:
        return INDEX[arch if isinstance(arch, str) else arch.tostr()]

    def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
        assert dataset == "cifar10-valid" and hp == "12" and is_random is True
        seed = random.choice([777, 888])  # nas_201_api: random.choice(seeds)
        acc = 60.0 + (index * 37 + seed) % 331 / 10.0
        return {"valid-accuracy": acc, "train-all-time": 50.0 + index % 7, "valid-per-time": 2.0}


def _cells(archs) -> list[str]:
    return [a if isinstance(a, str) else a.tostr() for a in archs]


def test_rea_matches_autodl() -> None:
    root = checkout("D-X-Y/AutoDL-Projects") / "exps" / "NAS-Bench-201-algos"
    with reference_modules(root, "R_EA") as (rea,):
        bench = FakeBench()
        random.seed(3)
        history, total = rea.regularized_evolution(
            200, 10, 3, 4000, rea.random_architecture_func(4, list(OPS)),
            rea.mutate_arch_func(list(OPS)), bench, None, "cifar10-valid",
        )  # fmt: skip
        want = [(m.arch.tostr(), m.accuracy) for m in history]
        want_best = max(history, key=lambda m: m.accuracy).arch.tostr()
    queries = Nb201Queries(FakeBench(), "cifar10", "12")
    random.seed(3)
    best, trace = regularized_evolution(queries, 4000, population_size=10, sample_size=3)
    got = [(queries.arch_str(c), a) for c, a in zip(trace.cells, trace.accs, strict=True)]
    assert got == want and queries.arch_str(best) == want_best
    assert abs(trace.total - total) < 1.0 and len(got) > 40


def test_reinforce_matches_autodl() -> None:
    root = checkout("D-X-Y/AutoDL-Projects") / "exps" / "NAS-Bench-201-algos"
    with reference_modules(root, "R_EA", "reinforce") as (rea, rl):
        bench = FakeBench()
        torch.manual_seed(5)
        random.seed(5)
        policy = rl.Policy(4, list(OPS))
        optimizer = torch.optim.Adam(policy.parameters(), lr=0.5)
        baseline = rl.ExponentialMovingAverage(0.9)
        total, trace = 0.0, []
        while total < 4000:  # reinforce.py main's loop (without its real-time term)
            log_prob, action = rl.select_action(policy)
            arch = policy.generate_arch(action)
            reward, cost = rea.train_and_eval(arch, bench, None, "cifar10-valid")
            trace.append((reward, arch.tostr()))
            if total + cost < 4000:
                total += cost
            else:
                break
            baseline.update(reward)
            loss = (-log_prob * (reward - baseline.value())).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        want_best = max(trace, key=lambda x: x[0])[1]
    queries = Nb201Queries(FakeBench(), "cifar10", "12")
    torch.manual_seed(5)
    random.seed(5)
    best, mine = reinforce(queries, 4000, learning_rate=0.5, ema_momentum=0.9)
    got = [(a, queries.arch_str(c)) for c, a in zip(mine.cells, mine.accs, strict=True)]
    assert got == trace and queries.arch_str(best) == want_best
    assert len(got) > 40
