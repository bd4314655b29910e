"""NAS-Bench-201's query-based baselines against their definitions, and end to end on a
FIXTURE benchmark file (made-up numbers; the real file cannot be shipped).

The fixture holds every cell over two ops ({skip_connect, nor_conv_3x3}: 64 cells), in the
NAS-Bench-201 .pth format read through `nas_201_api`, with hp "12" (cifar10-valid) and
"200" results; a query search then runs over exactly that product space, as it runs over
all 15,625 cells of the real file. tests/oracle/test_autodl_queries.py compares REA and
REINFORCE with AutoDL-Projects' scripts."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import nas_201_api
import numpy as np
import pytest
import torch

import nasrepro.api as nr
from nasrepro.evaluate import nb201
from nasrepro.search import bohb as B
from nasrepro.search.queries import (
    NODE_EDGES,
    MovingAverage,
    Nb201Queries,
    check_query,
    mutate,
    random_cell,
    random_search,
    regularized_evolution,
    reinforce,
)
from nasrepro.spaces.nb201 import OPS, Nb201Genotype

ROOT = Path(__file__).resolve().parents[1]
TWO_OPS = ("skip_connect", "nor_conv_3x3")


class Synthetic:
    """A made-up benchmark over all 5^6 cells: accuracy and cost are functions of the cell."""

    ops = OPS

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def query(self, cell):
        self.calls.append(cell)
        acc = 50.0 + sum((k + 1) * (e + 1) for e, k in enumerate(cell)) % 37
        return acc, 100.0 + 10 * cell[0]


def test_random_search_stops_before_the_budget_and_keeps_the_first_best():
    q = Synthetic()
    random.seed(1)
    best, trace = random_search(q, 1000.0)
    random.seed(1)
    drawn = [random_cell(5) for _ in range(len(q.calls))]
    assert q.calls == drawn and trace.cells == drawn[:-1]  # the last draw would overrun
    assert trace.total <= 1000.0 < trace.total + q.query(drawn[-1])[1]
    accs = trace.accs
    assert best == trace.cells[accs.index(max(accs))]


def test_mutation_picks_a_node_then_one_of_its_edges_then_another_op():
    assert NODE_EDGES == ((0,), (1, 2), (3, 4, 5))
    cell = (0, 1, 2, 3, 4, 0)
    random.seed(5)
    child = mutate(cell, 5)
    random.seed(5)
    node = NODE_EDGES[random.randint(0, 2)]
    edge = node[random.randint(0, len(node) - 1)]
    op = random.choice(range(5))
    while op == cell[edge]:
        op = random.choice(range(5))
    assert child == cell[:edge] + (op,) + cell[edge + 1 :]
    assert sum(a != b for a, b in zip(child, cell, strict=True)) == 1


def test_rea_ages_out_the_oldest_and_returns_the_best_of_its_history():
    q = Synthetic()
    random.seed(2)
    best, trace = regularized_evolution(q, 3000.0, population_size=4, sample_size=2)
    assert len(trace.cells) >= 4  # the initial population is not budgeted
    assert trace.total <= 3000.0 or len(trace.cells) == 4
    assert best == trace.cells[trace.accs.index(max(trace.accs))]
    for child, parent_pool in zip(trace.cells[4:], range(4, len(trace.cells)), strict=False):
        # every child differs from some member of the 4 before it in exactly one edge
        pool = trace.cells[parent_pool - 4 : parent_pool]
        assert any(sum(a != b for a, b in zip(child, p, strict=True)) == 1 for p in pool)


def test_reinforce_baseline_and_trace():
    ema = MovingAverage(0.9)
    ema.update(10.0)
    assert ema.value() == pytest.approx(10.0)  # bias-corrected: the first value itself
    ema.update(20.0)
    assert ema.value() == pytest.approx((0.09 * 10 + 0.1 * 20) / (0.09 + 0.1))
    q = Synthetic()
    torch.manual_seed(0)
    best, trace = reinforce(q, 1000.0, learning_rate=0.5, ema_momentum=0.9)
    assert len(trace.cells) == len(q.calls)  # the draw that overran stays in the trace
    assert trace.total < 1000.0 and best in trace.cells


def test_query_arguments_are_checked():
    assert check_query({"algorithm": "rea", "sample_size": 3}) is None
    assert "one of" in check_query({"algorithm": "evolution"})
    assert "unknown" in check_query({"algorithm": "random", "population_size": 3})
    assert "integer" in check_query({"algorithm": "rea", "sample_size": 2.5})


# ------------------------------------------------------------------------------------ BOHB


def test_bohb_brackets_are_hyperbands():
    # hpbandster HyperBand(min 12, max 200, η 3): s_max = 2
    got = B.hyperband_brackets(12.0, 200.0, 3)
    assert [[n for n, _ in b] for b in got] == [[9, 3, 1], [3, 1], [3]]
    assert [b for _, b in got[0]] == pytest.approx([200 / 9, 200 / 3, 200])
    assert [b for _, b in got[2]] == [200.0]


def test_aitchison_aitken_density_and_bandwidths_by_hand():
    data = np.array([[0, 1], [0, 2], [1, 1]], dtype=float)
    bw = np.array([0.3, 0.5])
    # k = Π_d (1 − λ_d if equal else λ_d/(c − 1)), c = 3, averaged over the data
    x = np.array([0, 1], dtype=float)
    want = ((0.7 * 0.5) + (0.7 * 0.25) + (0.15 * 0.5)) / 3
    assert B.aa_density(x, data, bw, 3) == pytest.approx(want)
    n, d = data.shape
    raw = 1.06 * data.std(axis=0) * n ** (-1 / (4 + d))
    assert B.aa_bandwidths(data, 3, 0.3) == pytest.approx(np.clip(raw, 0.3, 2 / 3))


def test_model_split_and_sampling_maximize_l_over_g():
    cells = [tuple(int(v) for v in c) for c in itertools.product(range(2), repeat=6)][:20]
    losses = [float(sum(c)) for c in cells]
    model = B.fit_model(cells, losses, 2, 7, 15, 0.3)
    assert len(model.good) == 7 and len(model.bad) == 13  # N_l = max(7, 15%·20), N_g = rest
    assert sorted(model.good.sum(1)) == sorted(sorted(losses)[:7])
    rng = random.Random(3)
    got = B.sample_from_model(model, 2, 4, 3.0, rng)
    rng = random.Random(3)
    bw = np.minimum(model.bw_good * 3.0, 0.5)
    cands = []
    for _ in range(4):
        centre = model.good[rng.randrange(len(model.good))].astype(int).tolist()
        # keep the level with probability 1 − λ', else another level uniformly
        cands.append(
            tuple(rng.choice([1 - v]) if rng.random() < bw[d] else v for d, v in enumerate(centre))
        )
    ratios = [
        max(B.aa_density(np.array(c, float), model.good, model.bw_good, 2), 1e-32)
        / max(B.aa_density(np.array(c, float), model.bad, model.bw_bad, 2), 1e-32)
        for c in cands
    ]
    assert got == cands[int(np.argmax(ratios))]


def test_bohb_spends_the_budget_then_returns_its_incumbent():
    q = Synthetic()
    random.seed(4)
    args = dict(
        time_budget=2000.0, n_iters=6, eta=3, min_budget=12.0, max_budget=200.0, num_samples=4,
        random_fraction=0.0, bandwidth_factor=3.0, min_bandwidth=0.3, top_n_percent=15,
    )  # fmt: skip
    best, trace, extra = B.bohb(q, **args)
    assert trace.total <= 2000.0 and len(trace.cells) < extra["evaluations"]
    assert extra["evaluations"] == 2 * (9 + 3 + 1) + 2 * (3 + 1) + 2 * 3
    assert extra["incumbent_loss"] == 100.0 - q.query(best)[0]


# ---------------------------------------------------------------- the benchmark file (fixture)


def _results(arch: int, arch_str: str, hp: str, datasets: dict[str, tuple[str, ...]]):
    """One ArchResults of FIXTURE numbers: accuracy from the cell's index, 2 epochs."""
    results = nas_201_api.ArchResults(arch, arch_str)
    for dataset, sets in datasets.items():
        config = {"name": "infer.tiny", "C": 16, "N": 5, "arch_str": arch_str}
        r = nas_201_api.ResultsCount(dataset, None, None, None, 1.0, 10.0, config, 777, 2, None)
        base = 40.0 + (arch * 7) % 50 - (20.0 if hp == "12" else 0.0)
        r.update_train_info({e: base for e in range(2)}, {e: 99.0 for e in range(2)},
                            {e: 0.5 for e in range(2)}, {e: 60.0 for e in range(2)})  # fmt: skip
        accs = {f"{s}@{e}": base + 0.5 * k for k, s in enumerate(sets) for e in range(2)}
        r.update_eval(accs, dict.fromkeys(accs, 0.5), dict.fromkeys(accs, 4.0))
        results.update(dataset, 777, r)
    return results.state_dict()


@pytest.fixture(scope="module")
def two_op_benchmark(tmp_path_factory) -> Path:
    """FIXTURE NAS-Bench-201 .pth over the 64 cells of two ops (made-up numbers)."""
    cells = [Nb201Genotype(ops).to_arch_str() for ops in itertools.product(TWO_OPS, repeat=6)]
    full = {
        "cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
        "cifar100": ("x-valid", "x-test"), "ImageNet16-120": ("x-valid", "x-test"),
    }  # fmt: skip
    data = {
        "meta_archs": cells,
        "evaluated_indexes": list(range(len(cells))),
        "arch2infos": {
            i: {
                "less": _results(i, a, "12", {"cifar10-valid": ("x-valid", "ori-test")}),
                "full": _results(i, a, "200", full),
            }
            for i, a in enumerate(cells)
        },
    }
    path = tmp_path_factory.mktemp("nb201q") / "fixture-two-ops.pth"
    torch.save(data, path)
    return path


def _pin(monkeypatch, path: Path) -> None:
    import hashlib

    monkeypatch.setattr(nb201, "_API_CACHE", {})
    monkeypatch.setenv(nb201.ENV_FILE, str(path))
    monkeypatch.setenv(nb201.ENV_SHA256, hashlib.sha256(path.read_bytes()).hexdigest())


def test_queries_read_the_12_epoch_validation_accuracy_and_time(two_op_benchmark, monkeypatch):
    _pin(monkeypatch, two_op_benchmark)
    api = nb201.Nb201ApiEvaluator().api
    q = Nb201Queries(api, "cifar10", "12", str(two_op_benchmark))
    assert q.ops == TWO_OPS
    cell = (1, 0, 1, 1, 0, 1)
    index = api.query_index_by_arch(q.arch_str(cell))
    acc, cost = q.query(cell)
    assert acc == 40.0 + (index * 7) % 50 - 20.0  # FIXTURE: x-valid of hp 12
    assert cost == 2 * 60.0 + 2 * 4.0 / 2  # train-all-time + valid-per-time
    with pytest.raises(ValueError, match="every cell"):
        Nb201Queries(_Partial(api), "cifar10", "12")


class _Partial:
    def __init__(self, api):
        self.api = api

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return self.api[i]


@pytest.mark.parametrize("experiment", ["nb201-rea", "nb201-bohb"])
def test_query_trial_end_to_end_on_the_fixture_file(experiment, two_op_benchmark, monkeypatch):
    from nasrepro.tracking import SOURCE, NullTracker
    from nasrepro.trial import execute_trial

    class Recording(NullTracker):  # what the trial's MLflow run would hold
        def __init__(self) -> None:
            super().__init__()
            self.tags: dict[str, str] = {}
            self.params: dict[str, str] = {}

        def start_run(self, experiment_id, name, tags, parent_run_id=None):
            self.tags.update(tags)
            return "r"

        def log_params(self, run_id, params):
            self.params.update(params)

    _pin(monkeypatch, two_op_benchmark)
    (trial,) = [
        t
        for t in nr.plan(str(ROOT / "suites" / "ex_ss_darts.yaml"), budget="smoke")
        if t.experiment == experiment
    ]
    tracker = Recording()
    rec = execute_trial(
        trial, tracker=tracker, experiment_id="x", parent_run_id="p", data_root=None,
        device="cpu",
    )  # fmt: skip
    # the run's Source is the suite file (not the command line); params are JSON values
    assert tracker.tags[SOURCE] == trial.suite_path and trial.suite_path.endswith("ex_ss_darts.yaml")
    assert tracker.params["seed"] == "0" and tracker.params["query.algorithm"] == experiment[6:]
    assert all("'" not in v for v in tracker.params.values())  # JSON, never a Python repr
    assert json.loads(tracker.params["eval_datasets"]) == ["cifar10", "cifar100", "imagenet16-120"]
    found = rec["search"]["query"]
    assert found["queries"] > 0 and found["simulated_seconds"] <= 12000
    assert rec["genotype"] == found["genotype"]
    assert set(Nb201Genotype.from_arch_str(rec["genotype"]).ops) <= set(TWO_OPS)
    assert rec["evaluation"]["fixture"] is True  # 64 cells: never a result
    assert set(rec["metrics"]) == {"cifar10", "cifar100", "imagenet16-120"}
    assert all(math.isfinite(v) for m in rec["metrics"].values() for v in m.values())
    best = max(found["trace"], key=lambda t: t["valid_acc"])["valid_acc"]
    assert found["best_valid_acc"] == best


def test_query_experiment_is_refused_in_one_line_without_a_file(monkeypatch, capsys, tmp_path):
    from nasrepro.cli import main

    monkeypatch.delenv(nb201.ENV_FILE, raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(
        ["run", str(ROOT / "suites" / "ex_ss_darts.yaml"), "--budget", "smoke",
         "--experiment", "nb201-random", "--registry", str(tmp_path / "reg")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no NAS-Bench-201 file given" in err[0]
    assert not (tmp_path / "reg").exists()


@pytest.mark.parametrize(
    "extra,problem",
    [
        ("evaluator: nb201-api\n    query: {algorithm: evolution}", "algorithm must be one of"),
        ("evaluator: nb201-api\n    query: {algorithm: rea}\n    methods: [darts]", "no supernet"),
        ("evaluator: nb201-table\n    query: {algorithm: rea}", "evaluator nb201-api"),
    ],
)
def test_query_experiments_are_validated_in_one_line(tmp_path, extra, problem):
    from nasrepro.suite import SuiteError, load_suite

    text = f"""\
suite: q
version: 1
paper: {{file: 004_87342475fac9f0ec.txt, title: q}}
budgets: {{}}
experiments:
  e:
    space: nb201
    dataset: cifar10
    eval_datasets: [cifar10]
    seeds: 1
    {extra}
claims:
  - {{id: c, paper_file: 004_87342475fac9f0ec.txt, table: T, row: r, method: m, space: nb201,
     dataset: cifar10, metric: test_acc, value: 1.0, experiment: e}}
"""
    path = tmp_path / "q.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert problem in str(info.value) and "\n" not in str(info.value)
