"""Data on the device (datasets/device_data.py), checked on a CPU: for given crop offsets,
flip and cutout centre each augmented image equals torchvision's; the draws are uniform and
independent; the augmented images have the torchvision pipeline's statistics; the batches are
the CPU loader's items, deterministic per seed and epoch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from nasrepro.datasets import build_search_data
from nasrepro.datasets.device_data import (
    DeviceSearchLoader,
    DeviceTrainLoader,
    augment,
    draw_params,
    release,
    retrain_seeds,
    supported,
)
from nasrepro.datasets.transforms import RECIPES, train_transform
from nasrepro.distributed import EpochShards

ALPHA = 1e-3  # each statistical test fails a correct implementation once in 1000 runs


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _torchvision(img: np.ndarray, r, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """torchvision's pipeline with the crop corner and flip given (its RandomCrop pads with
    zeros, then crops at (dy, dx); RandomHorizontalFlip mirrors)."""
    from PIL import Image
    from torchvision.transforms import functional as F

    x = Image.fromarray(img)
    if r.flip_first and flip:
        x = F.hflip(x)
    x = F.crop(F.pad(x, r.padding), dy, dx, r.size, r.size)
    if not r.flip_first and flip:
        x = F.hflip(x)
    return F.normalize(F.to_tensor(x), r.mean, r.std)


@pytest.mark.parametrize("key", [("nb201", "cifar10"), ("darts", "cifar10")])
def test_augment_equals_torchvision_for_given_draws(key):
    r = RECIPES[key]
    imgs = _images(6)
    cases = [(dy, dx, f) for dy in (0, 3, 8) for dx in (0, 5, 8) for f in (0, 1)]
    for i, (dy, dx, flip) in enumerate(cases):
        img = imgs[i % len(imgs)]
        values = (dy, dx, flip, 0, 0)
        params = {k: torch.tensor([v]) for k, v in zip("dy dx flip cy cx".split(), values, strict=True)}
        got = augment(torch.from_numpy(img[None]), params, r)[0]
        want = _torchvision(img, r, dy, dx, bool(flip))
        # the same float ops (÷255, −mean, ÷std) in the same order: equal to float32 rounding
        torch.testing.assert_close(got, want, rtol=0, atol=4 * torch.finfo(torch.float32).eps * 4)


def test_cutout_equals_quark0_cutout():
    from nasrepro.evaluate.retrain import Cutout

    r = RECIPES[("darts", "cifar10")]
    img = _images(1)[0]
    base = {"dy": torch.tensor([4]), "dx": torch.tensor([4]), "flip": torch.tensor([0])}
    for k in range(12):  # centres Cutout draws from torch's generator under manual_seed(k)
        torch.manual_seed(k)
        y, x = int(torch.randint(32, (1,))), int(torch.randint(32, (1,)))
        torch.manual_seed(k)
        want = Cutout(16)(_torchvision(img, r, 4, 4, False))
        params = {**base, "cy": torch.tensor([y]), "cx": torch.tensor([x])}
        got = augment(torch.from_numpy(img[None]), params, r, cutout=16)[0]
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        assert (got == 0).sum() >= 3 * 8 * 8  # a corner square at least


def test_draws_are_uniform_and_independent():
    r = RECIPES[("nb201", "cifar10")]
    n = 45_000
    p = draw_params(np.arange(n, dtype=np.int64) * 7919 + 3, r)
    for name, k in (("dy", 9), ("dx", 9), ("flip", 2), ("cy", 32), ("cx", 32)):
        counts = np.bincount(getattr(p, name), minlength=k)
        assert len(counts) == k
        assert stats.chisquare(counts).pvalue > ALPHA, name
    joint = np.zeros((9, 9, 2))
    np.add.at(joint, (p.dy, p.dx, p.flip), 1)
    chi2, pvalue, _, _ = stats.chi2_contingency(joint)
    assert pvalue > ALPHA  # crop rows, columns and flip drawn independently


def test_pipeline_statistics_match_torchvision():
    """Per-pixel mean of many augmentations of the same images, device path vs torchvision's
    RandomCrop/RandomHorizontalFlip drawing its own RNG: equal within sampling error."""
    r = RECIPES[("nb201", "cifar10")]
    imgs = _images(4, seed=3)
    reps = 300
    transform = train_transform("cifar10", "nb201")
    from PIL import Image

    torch.manual_seed(0)
    tv = torch.stack([transform(Image.fromarray(imgs[i % 4])) for i in range(4 * reps)])
    seeds = np.arange(4 * reps, dtype=np.int64) + 10**6
    batch = torch.from_numpy(np.stack([imgs[i % 4] for i in range(4 * reps)]))
    dev = augment(batch, draw_params(seeds, r).to(torch.device("cpu")), r)
    for i in range(4):
        a, b = tv[i::4], dev[i::4]
        se = torch.sqrt(a.var(0) / reps + b.var(0) / reps).clamp_min(1e-6)
        z = ((a.mean(0) - b.mean(0)) / se).flatten()
        # 3072 pixel z-scores: a two-sample t at each; Bonferroni over the pixels
        assert z.abs().max() < stats.norm.ppf(1 - ALPHA / (2 * z.numel())), z.abs().max()
        # the zero-padded border: how often a corner pixel is padding (4/9 · 4/9 for one side)
        corner_tv = (a[:, :, 0, 0] == a[:, :, 0, 0].min()).float().mean()
        corner_dev = (b[:, :, 0, 0] == b[:, :, 0, 0].min()).float().mean()
        assert abs(corner_tv - corner_dev) < 0.15


def _cifar(root: Path, n: int = 64) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    imgs = _images(6 * n, seed=1).transpose(0, 3, 1, 2).reshape(6 * n, -1)
    for k in range(5):
        part = {"data": imgs[k * n : (k + 1) * n], "labels": [(k * n + i) % 10 for i in range(n)]}
        (folder / f"data_batch_{k + 1}").write_bytes(pickle.dumps(part))
    test = {"data": imgs[5 * n :], "labels": [i % 10 for i in range(n)]}
    (folder / "test_batch").write_bytes(pickle.dumps(test))


def test_device_search_loader_serves_the_cpu_loaders_items(tmp_path):
    """FIXTURE CIFAR-10 files (random images). Same items per batch as the CPU loader (the
    labels show it), augmented images; the same batches again for the same (seed, epoch)."""
    _cifar(tmp_path)
    split = {"train": list(range(0, 40)), "valid": list(range(40, 80))}

    def build(seed):
        data = build_search_data("cifar10", root=tmp_path, batch_size=16, seed=seed,
                                 protocol="nb201", split_override=split)  # fmt: skip
        r = supported(data.loader._loader.dataset.weight_data, "cifar10", "nb201")
        assert r is not None
        return data.loader, DeviceSearchLoader(data.loader, r, torch.device("cpu"))

    release()
    cpu, dev = build(seed=5)
    cpu_batches, dev_batches = list(cpu), list(dev)
    assert len(dev_batches) == len(cpu_batches) == len(dev) == 3  # 40 items, batch 16
    for (xw, yw, xa, ya), (dxw, dyw, dxa, dya) in zip(cpu_batches, dev_batches, strict=True):
        assert torch.equal(yw, dyw) and torch.equal(ya, dya)
        assert dxw.shape == xw.shape and dxa.shape == xa.shape and dxw.dtype == torch.float32
    again = list(build(seed=5)[1])
    for a, b in zip(dev_batches, again, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    _, other = build(seed=6)
    assert not torch.equal(next(iter(other))[0], dev_batches[0][0])
    second = next(iter(dev))  # epoch 1: another order and other crops
    assert not torch.equal(second[0], dev_batches[0][0])
    dev.set_epoch(0)  # resuming at epoch 0 gives epoch 0's batches
    assert torch.equal(next(iter(dev))[0], dev_batches[0][0])
    # the validation passes (infer(), sampled_best) are the CPU loader's, item for item
    for (x, y), (cx, cy) in zip(dev.arch_pass(3, augment=False), cpu.arch_pass(3, augment=False),
                                strict=True):  # fmt: skip
        assert torch.equal(x, cx) and torch.equal(y, cy)


def test_device_train_loader_is_a_function_of_seed_and_epoch():
    from nasrepro.datasets.base import ImageArrayDataset

    r = RECIPES[("darts", "cifar10")]
    data = ImageArrayDataset(_images(20), np.arange(20) % 10, train_transform("cifar10", "darts"))
    release()

    def epoch(seed, e):
        sampler = EpochShards(20, seed, 0, 1)
        sampler.set_epoch(e)
        return list(DeviceTrainLoader(data, r, 8, sampler, seed, torch.device("cpu"), cutout=16))

    a, b = epoch(0, 1), epoch(0, 1)
    assert [len(y) for _, y in a] == [8, 8, 4]
    pairs = zip(a, b, strict=True)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in pairs)
    assert not torch.equal(epoch(0, 2)[0][0], a[0][0])
    assert not torch.equal(epoch(1, 1)[0][0], a[0][0])
    s = np.arange(20)
    assert not np.array_equal(retrain_seeds(0, 1, s), retrain_seeds(0, 2, s))


def test_retraining_reads_images_from_the_device_loader(tmp_path):
    """FIXTURE CIFAR-10 files: a one-epoch, two-step retraining with `data_on_device` runs
    on the device loaders (here the CPU) and says so in its source."""
    from nasrepro.evaluate.retrain import RetrainEvaluator

    _cifar(tmp_path)
    release()
    recipe = {"epochs": 1, "batch_size": 16, "layers": 2, "init_channels": 4, "cutout": 16}
    evaluator = RetrainEvaluator(recipes={"cifar10": recipe}, max_steps=2, num_workers=0)
    result = evaluator.score(
        "DARTS_V2", ["cifar10"], ["test_acc"], space="darts", data_root=tmp_path,
        device="cpu", seed=0, data_on_device=True,
    )  # fmt: skip
    run = result.source["runs"]["cifar10"]
    assert "device_data.py" in run["train_transform"] and "Cutout(16)" in run["train_transform"]
    assert run["steps_per_epoch"] == 2 and run["test_images_evaluated"] == 64
    assert 0 <= result.metrics["cifar10"]["test_acc"] <= 100


def test_data_parallel_ranks_hold_slices_of_the_one_process_device_batch(tmp_path, monkeypatch):
    """FIXTURE CIFAR-10 files. A data-parallel search on the device loader: rank r of 2
    augments the r-th half of every batch, and the two halves together are the one-process
    device batch, crop for crop (each item's augmentation comes from its key)."""
    from nasrepro.datasets import search

    _cifar(tmp_path)
    split = {"train": list(range(0, 40)), "valid": list(range(40, 80))}
    real = search.build_search_data
    monkeypatch.setattr(search, "build_search_data",
                        lambda *a, **k: real(*a, **k, split_override=split))  # fmt: skip
    config = {"dataset": "cifar10", "space": "nb201",
              "search": {"batch_size": 16, "data_protocol": "nb201"}}  # fmt: skip
    release()

    def batches(rank, world):
        data = search.trial_search_data(config, root=tmp_path, seed=3, rank=rank, world=world,
                                 on_device=torch.device("cpu"))  # fmt: skip
        assert isinstance(data.loader, DeviceSearchLoader), data.split.get("loader")
        return list(data.loader)

    whole, r0, r1 = batches(0, 1), batches(0, 2), batches(1, 2)
    assert len(r0) == len(r1) and all(len(b[1]) == 8 for b in r0 + r1)
    for one, a, b in zip(whole, r0, r1, strict=False):  # the last short batch: dropped
        for i in range(4):
            assert torch.equal(torch.cat([a[i], b[i]]), one[i])
