"""Data-parallel retraining: two gloo processes on CPU compute what one process computes."""

from pathlib import Path

import pytest
import torch
from suite_fixtures import trial_records

from nasrepro.distributed import EpochShards, device_ids, primary_device
from nasrepro.evaluate.retrain import RetrainEvaluator

# Tests only: the synthetic dataset (no augmentation, so every process sees fixed images),
# a 3-cell network, one optimizer step. Drop-path off: its masks are drawn per process.
OPTIONS = {
    "recipes": {
        "cifar10": {
            "layers": 3,
            "init_channels": 4,
            "epochs": 1,
            "batch_size": 16,
            "drop_path": 0.0,
            "cutout": 0,
            "auxiliary_weight": 0.4,
        }
    },
    "dataset": "synthetic",
    "max_steps": 1,
    "image_size": 16,
    "num_workers": 0,
}


def _train(tmp: Path, processes: int) -> tuple[dict, dict]:
    ckpt = tmp / f"p{processes}" / "trial.pt"
    ckpt.parent.mkdir(parents=True)
    lines: list[str] = []
    result = RetrainEvaluator(**OPTIONS, processes=processes).score(
        "DARTS_V2", ["cifar10"], ["test_acc"], seed=3, checkpoint=ckpt, progress=lines.append
    )
    assert any("epoch 1/1" in line for line in lines), lines
    state = torch.load(ckpt.with_name("trial.retrain-cifar10.pt"), weights_only=True)
    assert state["finished"]
    return result.metrics["cifar10"], state


def test_two_gloo_processes_equal_one_process_after_one_step(tmp_path):
    single_metrics, single = _train(tmp_path, 1)
    ddp_metrics, ddp = _train(tmp_path, 2)
    assert ddp["info"]["processes"] == 2 and ddp["info"]["batch_per_process"] == 8
    assert single["info"]["processes"] == 1
    assert single["model"].keys() == ddp["model"].keys()
    worst, max_abs, diffs = 0.0, 0.0, {}
    for name, a in single["model"].items():
        b = ddp["model"][name]
        if a.is_floating_point():
            diffs[name] = float((a - b).norm() / a.norm().clamp_min(1e-12))
            max_abs = max(max_abs, float((a - b).abs().max()))
            worst = max(worst, diffs[name])
        else:
            assert torch.equal(a, b), name  # num_batches_tracked
    # fp32 sums in another order: BN biases start at 0, so after one step they are the
    # (small, cancelling) gradient itself and carry the largest relative difference.
    assert worst < 1e-4, sorted(diffs.items(), key=lambda kv: -kv[1])[:5]
    assert max_abs < 1e-6, max_abs  # weights, BN running statistics, after SGD with momentum
    for key in ("train_loss", "train_acc"):
        assert ddp["history"][0][key] == pytest.approx(single["history"][0][key], rel=1e-5)
    assert ddp_metrics["test_acc"] == pytest.approx(single_metrics["test_acc"])
    assert ddp["info"]["test_images_evaluated"] == single["info"]["test_images_evaluated"]


def test_epoch_shards_split_the_single_process_batches():
    one = list(EpochShards(50, seed=7))
    ranks = [list(EpochShards(50, seed=7, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 25
    per = 4  # batch 8 over two processes
    for k in range(6):
        joint = sorted(ranks[0][k * per : (k + 1) * per] + ranks[1][k * per : (k + 1) * per])
        assert joint == sorted(one[k * 2 * per : (k + 1) * 2 * per])
    shards = EpochShards(50, seed=7)
    shards.set_epoch(1)
    assert list(shards) != one and sorted(shards) == list(range(50))
    test = [list(EpochShards(51, 0, r, 2, shuffle=False, drop_tail=False)) for r in range(2)]
    assert sorted(test[0] + test[1]) == list(range(51))


def test_multi_gpu_device_strings():
    assert device_ids("cuda:2,3") == [2, 3]
    assert device_ids("cuda") == [0]
    assert device_ids("cpu") is None
    assert primary_device("cuda:2,3") == "cuda:2"
    assert primary_device("cpu") == "cpu"


def test_batch_not_divisible_by_processes_is_refused(tmp_path):
    opts = {**OPTIONS, "recipes": {"cifar10": {**OPTIONS["recipes"]["cifar10"], "batch_size": 15}}}
    with pytest.raises(ValueError, match="not divisible by the 2 data-parallel processes"):
        RetrainEvaluator(**opts, processes=2).score(
            "DARTS_V2", ["cifar10"], ["test_acc"], checkpoint=tmp_path / "t.pt"
        )


def test_a_failing_rank_reports_its_error(tmp_path):
    from nasrepro.distributed import launch

    spec = {
        "options": {"recipes": {}},
        "dataset": "cifar10",
        "genotype": "DARTS_V2",
        "data_root": None,
        "seed": 0,
        "checkpoint": None,
        "tracking": None,
    }
    with pytest.raises(
        RuntimeError, match="retrain_worker failed.*ValueError: evaluator retrain: `recipes`"
    ):
        launch("nasrepro.evaluate.retrain_worker", spec, 2, tmp_path, lambda line: None, None)


def test_gpus_per_trial_groups_the_visible_gpus(monkeypatch):
    from nasrepro.executor import LocalExecutor

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 5)
    assert LocalExecutor.for_device("cuda", 2).devices == ["cuda:0,1", "cuda:2,3"]
    assert LocalExecutor.for_device("cuda").devices == [f"cuda:{i}" for i in range(5)]
    assert LocalExecutor.for_device("cpu").devices == ["cpu"]
    with pytest.raises(ValueError, match="only 5 GPU"):
        LocalExecutor.for_device("cuda", 8)
    with pytest.raises(ValueError, match="only 0 GPU"):
        LocalExecutor.for_device("cpu", 2)


SEARCH_SUITE = """\
suite: ddpsearch
version: 1
paper: {file: 003_55655e6ae543df8d.txt, title: data-parallel search test}
budgets:
  smoke:
    description: "tests only: synthetic 8x8, 2 epochs of 3 steps, batch 8"
    seeds: 1
    dataset: synthetic
    search: {epochs: 2, steps_per_epoch: 3, batch_size: 8, image_size: 8}
    space_args: {c: 4, n: 1}
experiments:
  pc:
    space: nb201
    dataset: cifar10
    methods: [pc]
    method_args: {pc: {edge_normalization: false, alpha_warmup_epochs: 1}}
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 3.0e-4, arch_lr: 6.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 1
  lam:
    space: nb201
    dataset: cifar10
    methods: [lambda]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: PC-DARTS, method: PC-DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 90.0, experiment: pc}
  - {id: c2, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: L, method: L,
     space: nb201, dataset: cifar10, metric: test_acc, value: 90.0, experiment: lam}
"""


def test_data_parallel_search_over_two_gloo_processes(tmp_path):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "s.yaml").write_text(SEARCH_SUITE)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "nasrepro.cli", "run", "s.yaml", "--budget", "smoke"]
        + ["--device", "cpu", "--search-processes", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[ddpsearch/lam seed 0] searching in one process: methods ['lambda']" in done.stderr
    assert "[ddpsearch/pc smoke seed 0] epoch 2/2" in done.stderr  # rank 0's progress
    records = {
        r["experiment"]: r
        for r in (json.loads(p.read_text()) for p in trial_records(tmp_path / "registry"))
    }
    assert records["pc"]["search_data"]["processes"] == 2
    assert "processes" not in records["lam"]["search_data"]
    assert len(records["pc"]["search"]["history"]) == 2
    assert not list((tmp_path / "checkpoints").rglob("*.pt"))

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nasrepro/ddpsearch")
    trials = "tags.`nasrepro.kind` = 'reproduction'"  # the trial runs, not the claims view
    runs = client.search_runs([exp.experiment_id], filter_string=trials)
    assert len(runs) == 4  # a parent and one child per experiment: rank 1 tracks nothing
    assert all(r.info.status == "FINISHED" for r in runs)
