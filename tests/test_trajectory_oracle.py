"""EX/SS-DARTS Table 3 "optimal": the best test accuracy over the cells a search derives at
every epoch (evaluate/trajectory.py), on hand-built trajectories."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasrepro.cli import main
from nasrepro.evaluate.nb201 import Nb201Table, Nb201TableEvaluator
from nasrepro.evaluate.trajectory import epoch_cells, trajectory_best, trajectory_oracle
from nasrepro.spaces.nb201 import OPS, Nb201Genotype

ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _epoch(epoch: int, arch: str, ops: tuple[str, ...] = OPS) -> dict:
    """One logged epoch whose α rows (softmax-like, non-one-hot) put the most weight on
    the ops of `arch`."""
    rows = []
    for op in Nb201Genotype.from_arch_str(arch).ops:
        row = [0.9 / len(ops)] * len(ops)
        row[ops.index(op)] += 0.1
        rows.append(row)
    return {"epoch": epoch, "alpha": {"cell": rows}}


def test_the_best_cell_over_the_epochs_of_the_embedded_table():
    """Epoch 1 holds NB201's best CIFAR-10 cell between two all-skip epochs: the oracle is
    its table accuracy on each dataset, at epoch 1, not the last (all-skip) cell."""
    history = [_epoch(0, ALL_SKIP), _epoch(1, BEST), _epoch(2, ALL_SKIP)]
    config = {"space": "nb201", "evaluator": "nb201-table", "eval_datasets": ["cifar10", "cifar100"],
              "space_args": {"c": 16, "n": 5}}  # fmt: skip
    got = trajectory_oracle(config, history, Nb201TableEvaluator())
    table = Nb201Table.load()
    for ds in ("cifar10", "cifar100"):
        want = table.test_acc(table.index_of(BEST), ds)
        assert got[ds] == {"test_acc": want, "epoch": 1, "genotype": BEST}
        assert want > table.test_acc(table.index_of(ALL_SKIP), ds) + 30
    assert got["cifar10"]["test_acc"] > 94.3  # within 0.01 of the table's best CIFAR-10 cell
    # not an NB201 search scored by a table: no oracle
    assert trajectory_oracle({**config, "space": "darts"}, history, None) == {}
    assert trajectory_oracle({**config, "evaluator": "retrain"}, history, None) == {}
    assert trajectory_oracle(config, [], Nb201TableEvaluator()) == {}


def test_each_dataset_takes_its_own_maximum_and_ties_go_to_the_first_epoch():
    cells = [(0, "a"), (1, "b"), (2, "c"), (3, "b")]
    scores = {"a": {"x": 50.0, "y": 10.0}, "b": {"x": 70.0, "y": 5.0}, "c": {"x": 70.0, "y": 30.0}}
    calls = []

    def score(arch):
        calls.append(arch)
        return scores[arch]

    got = trajectory_best(cells, score, ["x", "y"])
    assert got["x"] == {"test_acc": 70.0, "epoch": 1, "genotype": "b"}  # b and c tie: epoch 1
    assert got["y"] == {"test_acc": 30.0, "epoch": 2, "genotype": "c"}
    assert calls == ["a", "b", "c"]  # one lookup per distinct cell
    assert trajectory_best([], score, ["x"]) == {}


def test_cells_of_a_space_without_none_map_columns_to_the_kept_ops():
    """With `drop_ops: [none]` α column 0 is skip_connect: the logged rows name NB201 cells
    through the four kept ops."""
    kept = OPS[1:]
    history = [_epoch(4, BEST, kept)]
    assert epoch_cells(history, kept) == [(4, BEST)]
    config = {"space": "nb201", "evaluator": "nb201-table", "eval_datasets": ["cifar10"],
              "space_args": {"drop_ops": ["none"]}}  # fmt: skip
    assert trajectory_oracle(config, history, Nb201TableEvaluator())["cifar10"]["genotype"] == BEST
    # read through the five-op list, the same rows would name other ops
    with pytest.raises(IndexError):
        epoch_cells(history, ("none",))


def test_the_metric_needs_an_nb201_search(tmp_path: Path, monkeypatch, capsys) -> None:
    from test_hardening_suites import write_suite

    monkeypatch.chdir(tmp_path)
    path = write_suite(tmp_path / "s.yaml")
    text = path.read_text().replace("metric: test_acc", "metric: trajectory_best_test_acc")
    path.write_text(text)
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    # scored by counting the cell's parameters, not by an NB201 table: no per-epoch lookups
    path.write_text(text.replace("evaluator: nb201-table", "evaluator: complexity"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metric trajectory_best_test_acc is recorded by NB201 searches" in err


def test_the_per_epoch_lookup_is_kept_out_of_the_search_seconds():
    """EX/SS-DARTS §3 times searches without benchmark queries: the trial's clock leaves the
    search phase for the NB201 lookup after each epoch and comes back to it."""
    from types import SimpleNamespace

    import torch

    from nasrepro.search.engine import EpochLog
    from nasrepro.spaces import build_space
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import epoch_logger

    phases = []

    class Clock:
        def enter(self, phase):
            phases.append(phase)

    class Evaluator(Nb201TableEvaluator):
        def score(self, *a, **k):
            phases.append("lookup")
            return super().score(*a, **k)

    config = {"space": "nb201", "evaluator": "nb201-table", "eval_datasets": ["cifar10"]}
    trial = SimpleNamespace(config=config, search=SimpleNamespace(epochs=1, total_epochs=lambda: 1))
    space = build_space("nb201")
    net = space.build_supernet(10, c=4, n=1)
    log_epoch = epoch_logger(trial, space, net, Evaluator(), NullTracker(), "r", lambda m: None,
                             "t", clock=Clock())  # fmt: skip
    alpha = {"cell": torch.softmax(net.arch_alpha.detach(), -1).tolist()}
    log = EpochLog(0, 0.1, 1.0, 50.0, 1.0, 50.0, 1.0, alpha)
    log_epoch(log)
    assert phases == ["eval", "lookup", "search"]
    assert "lookup.cifar10.test_acc" in log.diagnostics
