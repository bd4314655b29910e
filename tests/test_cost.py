"""Measured cost: a trial's time summed over every process that ran it."""

from __future__ import annotations

import pytest
from suite_fixtures import nb201_darts_suite

from nasrepro import cost
from nasrepro.cost import TrialClock, gpu_count, search_cost_gpu_days, trial_cost
from nasrepro.plan import expand
from nasrepro.suite import load_suite
from nasrepro.tracking import NullTracker

SUITE = nb201_darts_suite("costtest", seeds=1, smoke_seeds=1, smoke_epochs=4)


class FakeClock:
    """Time moves only when the test says so: each search epoch 'takes' 10 s."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_clock_sums_phases_and_processes(tmp_path, monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(cost, "now", fake)
    path = tmp_path / "t.clock.json"
    first = TrialClock(None)
    first.attach(path, continue_earlier=True)  # nothing earlier on disk: one process
    fake.t += 7.0
    first.enter("eval")
    fake.t += 2.0
    first.flush()
    fake.t += 100.0  # between the processes: counts for nobody
    second = TrialClock(None)
    second.attach(path, continue_earlier=True)
    fake.t += 5.0
    got = trial_cost(second, "NVIDIA H200", search_gpus=2, eval_gpus=1)
    assert got["processes"] == [
        {"search_seconds": 7.0, "eval_seconds": 2.0},
        {"search_seconds": 5.0, "eval_seconds": 0.0},
    ]
    assert (got["search_seconds"], got["eval_seconds"], got["total_seconds"]) == (12.0, 2.0, 14.0)
    assert got["gpu_hours"] == round((12.0 * 2 + 2.0 * 1) / 3600, 6)
    assert search_cost_gpu_days(got) == round(12.0 * 2 / 86400, 6)
    on_cpu = trial_cost(second, "cpu", search_gpus=0, eval_gpus=0)
    assert on_cpu["gpu_hours"] is None and search_cost_gpu_days(on_cpu) is None
    fresh = TrialClock(None)
    fresh.attach(path, continue_earlier=False)  # a trial started over forgets the old time
    assert len(fresh.processes()) == 1
    with pytest.raises(ValueError, match="unknown phase"):
        fresh.enter("retrain")


def test_gpu_count():
    assert [gpu_count(d) for d in ("cpu", "cuda", "cuda:0", "cuda:0,1,2")] == [0, 1, 1, 3]


def test_resumed_trial_records_the_sum_of_its_processes(tmp_path, monkeypatch):
    from nasrepro.trial import execute_trial

    fake = FakeClock()
    monkeypatch.setattr(cost, "now", fake)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    (trial,) = expand(load_suite(path), path, "smoke")
    kwargs = dict(
        tracker=NullTracker(),
        experiment_id="",
        parent_run_id="",
        data_root=None,
        device="cpu",
        progress=lambda line: None,
        checkpoint_dir=tmp_path / "ckpt",
    )

    def killed_in_epoch_3(log):
        fake.t += 10.0
        if log.epoch == 2:  # after two checkpointed epochs and most of a third
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_trial(trial, on_epoch=killed_in_epoch_3, **kwargs)

    def epoch(log):
        fake.t += 10.0

    record = execute_trial(trial, on_epoch=epoch, **kwargs)
    assert record is not None
    # process 1: epochs 1-3 (30 s; the interrupted third was spent, so it counts, and is
    # redone); process 2: epochs 3-4 (20 s). The record lists each unit's processes: the
    # search's two, then the selection's and the lookup's (no time on this clock).
    assert record["cost"]["processes"] == [
        {"search_seconds": 30.0, "eval_seconds": 0.0},
        {"search_seconds": 20.0, "eval_seconds": 0.0},
        {"search_seconds": 0.0, "eval_seconds": 0.0},  # selection, process 1
        {"search_seconds": 0.0, "eval_seconds": 0.0},  # selection, process 2
        {"search_seconds": 0.0, "eval_seconds": 0.0},  # the NB201 lookup
    ]
    assert record["cost"]["search_seconds"] == 50.0 and record["cost"]["total_seconds"] == 50.0
    assert record["cost"]["device_name"] and record["cost"]["gpu_hours"] is None
    assert record["metrics"]["search_cost_gpu_days"] is None  # a CPU spent no GPU-days
    assert len(record["search"]["history"]) == 4
