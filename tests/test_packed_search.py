"""Packed seeds (`nasrepro run --pack-seeds K`): each packed seed is, in float64 on a CPU, the
search it would be alone — every epoch log and the final engine state (supernet, BN
statistics, both optimizers) within the rounding bounds of nasrepro/rounding.py — and its
checkpoints resume it alone or packed."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nasrepro import rounding
from nasrepro.datasets import build_search_data
from nasrepro.search.engine import SearchContext, run_search
from nasrepro.search.multiseed import build_nets, nb201_darts_settings
from nasrepro.search.packed import not_packable, run_packed_search

SEEDS = [0, 1, 2]
SPACE = {"c": 4, "n": 1}
BATCH, SIZE, EPOCHS = 4, 8, 2


class Double:
    """A search loader whose images are float64 (the float64 comparison)."""

    def __init__(self, loader):
        self.loader = loader

    @property
    def epoch(self):
        return self.loader.epoch

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    def __iter__(self):
        for x_w, y_w, x_a, y_a in self.loader:
            yield x_w.double(), y_w, x_a.double(), y_a


def _data(seed):
    data = build_search_data(
        "synthetic", root=None, batch_size=BATCH, seed=seed, image_size=SIZE, options={"n": 24}
    )
    return data, Double(data.loader)


def _settings(alpha_step, with_alpha=True):
    # clipping active and different per seed; 3 steps per epoch (12 weight images / 4);
    # `with_alpha`: α's gradient in the clip norm (AutoDL's loops) or the weights' alone
    update = {"epochs": EPOCHS, "grad_clip": 0.5, "alpha_step": alpha_step}
    return nb201_darts_settings().model_copy(update={**update, "clip_includes_alpha": with_alpha})


def _ctx(net, settings):
    return SearchContext(
        supernet=net, settings=settings, hooks=[], device=torch.device("cpu"),
        criterion=nn.CrossEntropyLoss(),
    )  # fmt: skip


def _flat(state):
    """Every tensor of an engine state (supernet, optimizer states, α's last gradient), in a
    fixed order."""
    out = [v.double() for v in state["supernet"].values()]
    out += [g.double() for g in state["alpha_grad"] if g is not None]
    for opt in ("w_optimizer", "a_optimizer"):
        for _, st in sorted(state[opt]["state"].items()):
            out += [v.double().reshape(-1) for k, v in sorted(st.items()) if k != "step"]
    return out


@pytest.mark.parametrize(
    "alpha_step,space,with_alpha",
    [
        ("after_weights", {**SPACE, "track_running_stats": True}, True),  # darts_pt, Λ NB201
        ("before_weights", {**SPACE, "track_running_stats": False}, False),
        ("after_weights", {**SPACE, "track_running_stats": True, "fused": True}, False),
        ("before_weights", {**SPACE, "track_running_stats": False}, True),
    ],
)
def test_each_packed_seed_is_its_own_search(alpha_step, space, with_alpha):
    settings = _settings(alpha_step, with_alpha)
    nets = [n.double() for n in build_nets("nb201", space, SEEDS, num_classes=4)]
    starts = [copy.deepcopy(n) for n in nets]
    packed_states = {}
    packed_logs = {s: [] for s in range(len(SEEDS))}
    loaders = [_data(s)[1] for s in SEEDS]
    steps = _data(0)[0].steps_per_epoch
    assert steps == 3
    run_packed_search(
        [_ctx(n, settings) for n in nets],
        loaders,
        steps,
        on_epoch_end=lambda s, log: packed_logs[s].append(log),
        checkpoint=lambda s, state: packed_states.__setitem__(s, state),
    )
    net = starts[0]
    n = rounding.longest_reduction(net, BATCH, SIZE)
    depth = EPOCHS * steps * rounding.chained_reductions(net)
    for s, seed in enumerate(SEEDS):
        alone_logs, alone_state = [], {}

        def run(delta, s=s, seed=seed, alone_logs=alone_logs, alone_state=alone_state):
            net = copy.deepcopy(starts[s])
            if delta:
                rounding.perturb(list(net.parameters()), delta, seed=5)
            logs, state = [], {}
            run_search(
                _ctx(net, settings), _data(seed)[1], steps, logs.append, state.update
            )
            if not delta:
                alone_logs[:] = logs
                alone_state.update(state)
            return _flat(state)

        want, tols = rounding.probe_tolerances(run, n, depth, torch.float64)
        got = packed_states[s]
        assert got["finished"] and got["epoch"] == alone_state["epoch"] == EPOCHS
        assert got["loader_epoch"] == alone_state["loader_epoch"]
        assert list(got["supernet"]) == list(alone_state["supernet"])
        assert [g is None for g in got["alpha_grad"]] == [
            g is None for g in alone_state["alpha_grad"]
        ]
        diffs = rounding.relative_diffs(want, _flat(got))
        bad = [(i, d, t) for i, (d, t) in enumerate(zip(diffs, tols, strict=True)) if d > t]
        assert not bad, (seed, bad)
        for mine, alone in zip(packed_logs[s], alone_logs, strict=True):
            assert (mine.epoch, mine.lr) == (alone.epoch, alone.lr)
            assert mine.train_acc == alone.train_acc and mine.valid_acc == alone.valid_acc
            for a, b in ((mine.train_loss, alone.train_loss), (mine.valid_loss, alone.valid_loss)):
                assert abs(a - b) <= 1e-9 * abs(b)
            for key in alone.alpha:
                torch.testing.assert_close(
                    torch.tensor(mine.alpha[key]), torch.tensor(alone.alpha[key]),
                    rtol=1e-9, atol=1e-12,
                )  # fmt: skip
    # the seeds differ from each other (a pack that ran one seed K times would pass above
    # only if the seeds were equal)
    assert not torch.equal(packed_states[0]["supernet"]["arch_alpha"],
                           packed_states[1]["supernet"]["arch_alpha"])  # fmt: skip


def test_packed_checkpoint_resumes_alone_and_packed():
    """A packed epoch-1 checkpoint continued alone, or packed, ends where the packed run
    ends (float64, same rounding bounds as above: here equal to 1e-9)."""
    settings = _settings("after_weights")
    space = {**SPACE, "track_running_stats": True}
    nets = [n.double() for n in build_nets("nb201", space, SEEDS[:2], num_classes=4)]
    first, full = {}, {}
    starts = [copy.deepcopy(n) for n in nets]

    def keep_epoch1(s, state):
        if state["epoch"] == 1:
            first[s] = copy.deepcopy(state)
        full[s] = state

    loaders = [_data(s)[1] for s in SEEDS[:2]]
    run_packed_search([_ctx(n, settings) for n in nets], loaders, 3, checkpoint=keep_epoch1)
    # alone from seed 1's packed checkpoint
    alone = {}
    net = copy.deepcopy(starts[1])
    run_search(_ctx(net, settings), _data(1)[1], 3, None, alone.update, copy.deepcopy(first[1]))
    # both packed again from their packed checkpoints
    again = {}
    nets2 = [copy.deepcopy(n) for n in starts]
    run_packed_search(
        [_ctx(n, settings) for n in nets2], [_data(s)[1] for s in SEEDS[:2]], 3,
        checkpoint=lambda s, st: again.__setitem__(s, st), resumes=[first[0], first[1]],
    )  # fmt: skip
    for got in (alone, again[1]):
        diffs = rounding.relative_diffs(_flat(full[1]), _flat(got))
        assert max(diffs) < 1e-9, max(diffs)
    assert len(again[0]["history"]) == EPOCHS


def test_not_packable_reasons():
    base = {"methods": ["darts"], "method_args": {}, "search": {"order": 1}}
    assert not_packable(base) is None
    assert "second order" in not_packable({**base, "search": {"order": 2}})
    assert "lambda" in not_packable({**base, "methods": ["lambda"]})
    assert "arch_grad_clip" in not_packable({**base, "search": {"order": 1, "arch_grad_clip": 5}})
    # AutoDL's clip norm with α in it packs (the packed step carries α's last gradient)
    assert not_packable({**base, "search": {"order": 1, "clip_includes_alpha": True}}) is None
    assert "published cell" in not_packable({"genotype": "x"})
    assert "data-parallel" in not_packable(base, processes=2)


SUITE = """\
suite: packs
version: 1
paper: {file: 003_55655e6ae543df8d.txt, title: packs}
budgets: {}
experiments:
  e1:
    space: nb201
    space_args: {c: 2, n: 1, track_running_stats: true}
    dataset: digits
    methods: [darts]
    search: {epochs: 2, steps_per_epoch: 2, batch_size: 8, image_size: 8, lr: 0.025,
             lr_min: 0.001, momentum: 0.9, weight_decay: 5.0e-4, arch_lr: 3.0e-4,
             arch_weight_decay: 1.0e-3}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 2
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: e1}
"""


def test_run_packs_seeds_and_a_killed_pack_resumes_per_seed(tmp_path, monkeypatch, mlflow_uri):
    """`run --pack-seeds 2` on a CPU: the pack is stopped after its first epoch (both seeds
    checkpointed); each seed's own job then resumes from its checkpoint alone, in the MLflow
    run the pack opened, and records it: one record per seed, saying it was packed."""

    from mlflow.tracking import MlflowClient

    from nasrepro.estimate import unit_hours
    from nasrepro.executor import LocalExecutor
    from nasrepro.registry import scan_registry
    from nasrepro.runner import run_suite
    from nasrepro.search import packed
    from nasrepro.store import read_unit

    original = packed.run_packed_search
    saved = []

    def stop_after_first_epoch(*args, **kwargs):
        inner = kwargs["checkpoint"]

        def checkpoint(i, state):
            inner(i, state)
            saved.append((i, state["epoch"]))
            if len(saved) == 2:
                raise RuntimeError("pack killed")

        return original(*args, **{**kwargs, "checkpoint": checkpoint})

    # search_packed imports it from search/packed.py when called
    monkeypatch.setattr(packed, "run_packed_search", stop_after_first_epoch)
    suite = tmp_path / "packs.yaml"
    suite.write_text(SUITE)
    lines = []
    uri = mlflow_uri
    seen = []

    class Recording(LocalExecutor):
        def run(self, jobs, progress):
            seen.extend(jobs)
            return super().run(jobs, progress)

    run_suite(
        suite, registry=tmp_path / "reg", tracking_uri=uri, device="cpu",
        checkpoint_dir=tmp_path / "ck", pack_seeds=2, progress=lines.append,
        executor=Recording(["cpu"]),
    )  # fmt: skip
    # the pack job's time limit on a cluster: both seeds' searches, one after another
    (pack,) = [j for j in seen if getattr(j, "pack", ())]
    one = unit_hours("search", pack.trial.config, None, "h200")
    assert pack.hours is not None and pack.hours == pytest.approx(2 * one)  # None: 1 h default
    assert saved == [(0, 1), (1, 1)]
    assert any("packed search stopped (RuntimeError: pack killed)" in line for line in lines)
    assert sum("resuming after epoch 1" in line for line in lines) == 2
    records = sorted(scan_registry(tmp_path / "reg").records, key=lambda r: r["seed"])
    assert [r["seed"] for r in records] == [0, 1]
    for r in records:
        assert r["provenance"]["packed_search"]["seeds"] == [0, 1]
        assert [h["epoch"] for h in r["search"]["history"]] == [0, 1]
        # the seed's search unit: the pack's share of the first epoch, then its own process
        search = read_unit(tmp_path / "reg", "search", r["units"]["search"])
        assert search["provenance"]["packed_search"]["seeds"] == [0, 1]
        assert r["cost"]["search_seconds"] > 0 and len(search["cost"]["processes"]) == 2
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([records[0]["mlflow"]["experiment_id"]])
    parents = {r["mlflow"]["parent_run_id"] for r in records}
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert len(parents) == 1 and len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert {r.info.run_id for r in children} == {r["mlflow"]["run_id"] for r in records}


def test_measure_packing_times_both_paths_without_moving_the_rng():
    from nasrepro.packed_trials import PAYS, measure_packing

    config = {
        "space": "nb201",
        "space_args": {"c": 2, "n": 1},
        "search": nb201_darts_settings().model_copy(update={"batch_size": 4}).model_dump(),
    }
    before = torch.get_rng_state()
    out = measure_packing(config, 8, 10, 3, torch.device("cpu"), 2, steps=1, warmup=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert out["seeds"] == 2 and not out["graph"] and not out["fused"]
    assert out["packed_step_ms"] > 0 and out["single_step_ms"] > 0
    speedup = 2 * out["single_step_ms"] / out["packed_step_ms"]
    assert out["speedup"] == pytest.approx(speedup, rel=1e-2)
    assert out["pays"] == (out["speedup"] >= PAYS)


def test_packing_is_on_by_default_only_where_measured_to_pay(tmp_path, monkeypatch, mlflow_uri):
    """Default (`--pack-seeds` not given): four seeds, measured per trial, on a GPU; none on
    a CPU. A measurement that does not pay leaves each seed to search alone (its records say
    nothing was packed). The GPU case is forced here on the CPU with a stubbed measurement."""

    from nasrepro import packed_trials, runner
    from nasrepro.registry import scan_registry
    from nasrepro.runner import run_suite

    assert runner._packing(None, "cuda") == (packed_trials.DEFAULT_PACK, True)
    assert runner._packing(None, "cuda:1") == (packed_trials.DEFAULT_PACK, True)
    assert runner._packing(None, "cpu") == (1, False)
    assert runner._packing(3, "cuda") == (3, False)  # forced: no measurement
    asked = []

    def slower(config, *args, **kwargs):
        asked.append(args[-1])  # k
        return {"seeds": 2, "packed_step_ms": 10.0, "single_step_ms": 5.0, "speedup": 1.0,
                "pays": False}  # fmt: skip

    monkeypatch.setattr(runner, "_packing", lambda k, device: (2, True))
    monkeypatch.setattr(packed_trials, "measure_packing", slower)
    suite = tmp_path / "packs.yaml"
    suite.write_text(SUITE.replace("epochs: 2,", "epochs: 1,"))
    lines = []
    run_suite(
        suite, registry=tmp_path / "reg", tracking_uri=mlflow_uri, device="cpu",
        checkpoint_dir=tmp_path / "ck", progress=lines.append,
    )  # fmt: skip
    assert asked == [2]
    assert any("not packed: 2 seeds packed 10.0 ms/step vs 5.0 ms/step alone" in x for x in lines)
    records = scan_registry(tmp_path / "reg").records
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert all(r["provenance"].get("packed_search") is None for r in records)
