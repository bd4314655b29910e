"""Data-parallel retraining: two gloo processes on CPU compute what one process computes."""

from pathlib import Path

import pytest
import torch

from nasrepro.evaluate.distributed import EpochShards, device_ids, primary_device
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
    from nasrepro.evaluate.distributed import launch

    spec = {
        "options": {"recipes": {}},
        "dataset": "cifar10",
        "genotype": "DARTS_V2",
        "data_root": None,
        "seed": 0,
        "checkpoint": None,
        "tracking": None,
    }
    with pytest.raises(RuntimeError, match="failed.*ValueError: evaluator retrain: `recipes`"):
        launch(spec, 2, tmp_path, lambda line: None, None)


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
