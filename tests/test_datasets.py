"""Dataset loaders on tiny generated files in the real on-disk formats, splits, search data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nasrepro._compat import ensure_torchvision

ensure_torchvision()

from nasrepro.datasets import (  # noqa: E402  (torchvision must be patched first)
    DatasetNotFound,
    ImageNet16,
    SearchData,
    SplitOutOfRange,
    build_search_data,
    get_source,
    load_split,
)

# ---------------------------------------------------------------------------------------
# Fixture writers: tiny files in exactly the layouts torchvision / AutoDL read.
# ---------------------------------------------------------------------------------------


def _images(n: int, side: int, offset: int) -> np.ndarray:
    """uint8 (n, 3*side*side) rows in RRR…GGG…BBB order; image i has R=i+offset, G=R+1, B=R+2."""
    base = (np.arange(n) + offset).astype(np.uint8)[:, None, None]
    planes = np.concatenate([base, base + 1, base + 2], axis=1)  # (n, 3, 1)
    return np.repeat(planes, side * side, axis=2).reshape(n, 3 * side * side)


def _pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def write_cifar10_fixture(root: Path, per_batch: int = 4, n_test: int = 6) -> None:
    """FIXTURE: cifar-10-batches-py/ with data_batch_1..5, test_batch, batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k in range(5):
        start = k * per_batch
        labels = [(start + i) % 10 for i in range(per_batch)]
        _pickle(
            folder / f"data_batch_{k + 1}",
            {"data": _images(per_batch, 32, start), "labels": labels},
        )
    _pickle(
        folder / "test_batch",
        {"data": _images(n_test, 32, 100), "labels": [i % 10 for i in range(n_test)]},
    )
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def write_cifar100_fixture(root: Path, n_train: int = 12, n_test: int = 8) -> None:
    """FIXTURE: cifar-100-python/ with train, test, meta; train labels < 50, test labels >= 50."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _pickle(
        folder / "train",
        {
            "data": _images(n_train, 32, 0),
            "fine_labels": [i % 50 for i in range(n_train)],
            "coarse_labels": [0] * n_train,
        },
    )
    _pickle(
        folder / "test",
        {
            "data": _images(n_test, 32, 100),
            "fine_labels": [50 + i for i in range(n_test)],
            "coarse_labels": [0] * n_test,
        },
    )
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})


def write_svhn_fixture(root: Path, n_train: int = 10, n_test: int = 4) -> None:
    """FIXTURE: train_32x32.mat / test_32x32.mat, X (32, 32, 3, N) uint8, y (N, 1) in 1..10."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[..., 0, :] = np.arange(n, dtype=np.uint8)  # R channel carries the image number
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10; 10 means digit 0
        savemat(root / f"{name}_32x32.mat", {"X": x, "y": y})


def write_imagenet16_fixture(root: Path) -> Path:
    """FIXTURE: ImageNet16/ with train_data_batch_1..10 and val_data; labels 1-based in 1..1000.

    Every batch holds 4 images labelled 1, 120, 121, 1000 (the last two are outside the 120
    classes); val_data holds 6 images labelled 1, 60, 120, 121, 500, 119.
    """
    folder = root / "ImageNet16"
    folder.mkdir(parents=True)
    for k in range(1, 11):
        _pickle(
            folder / f"train_data_batch_{k}",
            {"data": _images(4, 16, 10 * k), "labels": [1, 120, 121, 1000], "mean": np.zeros(768)},
        )
    _pickle(
        folder / "val_data", {"data": _images(6, 16, 200), "labels": [1, 60, 120, 121, 500, 119]}
    )
    return folder


# ---------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------


def test_cifar10_fixture_loads(tmp_path: Path) -> None:
    write_cifar10_fixture(tmp_path)
    src = get_source("cifar10")()
    train = src.dataset("train", tmp_path)
    test = src.dataset("test", tmp_path)
    assert len(train) == 20 and len(test) == 6
    assert train.data.shape == (20, 32, 32, 3)
    # RRR…GGG…BBB rows become HWC pixels (R, G, B)
    assert train.data[7, 5, 9].tolist() == [7, 8, 9]
    assert train.targets.tolist() == [i % 10 for i in range(20)]
    x, y = train[3]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == 3


def test_cifar100_fixture_loads(tmp_path: Path) -> None:
    write_cifar100_fixture(tmp_path)
    src = get_source("cifar100")()
    assert src.num_classes == 100
    train, test = src.dataset("train", tmp_path), src.dataset("test", tmp_path)
    assert (len(train), len(test)) == (12, 8)
    assert test.targets.tolist() == list(range(50, 58))
    assert test.data[2, 0, 0].tolist() == [102, 103, 104]


def test_svhn_fixture_maps_label_10_to_0(tmp_path: Path) -> None:
    write_svhn_fixture(tmp_path)
    train = get_source("svhn")().dataset("train", tmp_path)
    assert train.data.shape == (10, 32, 32, 3)
    assert train.data[:, 0, 0, 0].tolist() == list(range(10))
    # file labels 1..10 → 1..9, 0
    assert train.targets.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    x, y = train[9]
    assert x.shape == (3, 32, 32) and y == 0


def test_imagenet16_fixture_filters_to_120_classes(tmp_path: Path) -> None:
    folder = write_imagenet16_fixture(tmp_path)
    src = get_source("imagenet16-120")()
    train = src.dataset("train", tmp_path)
    # 2 of 4 per batch keep labels 1 and 120 → 0 and 119
    assert len(train) == 20
    assert train.targets.tolist() == [0, 119] * 10
    assert train.data.shape == (20, 16, 16, 3)
    assert train.data[0, 3, 4].tolist() == [10, 11, 12]  # batch 1, first image
    valid = src.dataset("test", tmp_path)
    assert valid.targets.tolist() == [0, 59, 119, 118]
    x, y = valid[1]
    assert x.shape == (3, 16, 16) and y == 59
    # the class itself also reads the folder directly, and all 1000 classes when asked
    full = ImageNet16(folder, train=False, num_classes=None)
    assert sorted(full.targets.tolist()) == [0, 59, 118, 119, 120, 499]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("svhn", "train_32x32.mat"),
        ("imagenet16-120", "ImageNet16"),
    ],
)
def test_missing_dataset_raises_with_path(tmp_path: Path, name: str, expected: str) -> None:
    root = tmp_path / "empty"
    with pytest.raises(DatasetNotFound) as info:
        get_source(name)().dataset("train", root)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert name in message and str(root / expected) in message
    assert "NASREPRO_DATA_ROOT" in message and "\n" not in message


def test_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10_fixture(tmp_path)
    monkeypatch.setenv("NASREPRO_DATA_ROOT", str(tmp_path))
    data = build_search_data(
        "cifar10",
        root=None,
        batch_size=4,
        seed=0,
        split_override={"train": list(range(10)), "valid": list(range(10, 20))},
    )
    assert data.split["root"] == str(tmp_path)


# ---------------------------------------------------------------------------------------
# Split files
# ---------------------------------------------------------------------------------------


def test_cifar_split_halves() -> None:
    split = load_split("cifar-split.txt")
    train, valid = split["train"], split["valid"]
    assert len(train) == 25000 and len(valid) == 25000
    assert not set(train) & set(valid)
    assert set(train) | set(valid) == set(range(50000))


@pytest.mark.parametrize(
    ("name", "half", "total"),
    [("cifar100-test-split.txt", 5000, 10000), ("imagenet-16-120-test-split.txt", 3000, 6000)],
)
def test_test_split_halves(name: str, half: int, total: int) -> None:
    split = load_split(name)
    assert len(split["xvalid"]) == half and len(split["xtest"]) == half
    assert not set(split["xvalid"]) & set(split["xtest"])
    assert set(split["xvalid"]) | set(split["xtest"]) == set(range(total))


def test_load_split_returns_copies() -> None:
    load_split("cifar-split.txt")["train"].clear()
    assert len(load_split("cifar-split.txt")["train"]) == 25000


# ---------------------------------------------------------------------------------------
# Search data
# ---------------------------------------------------------------------------------------


def _first(data: SearchData) -> list[torch.Tensor]:
    return next(iter(data.loader))


def test_search_data_is_deterministic_per_seed() -> None:
    a = _first(build_search_data("digits", root=None, batch_size=16, seed=3))
    b = _first(build_search_data("digits", root=None, batch_size=16, seed=3))
    c = _first(build_search_data("digits", root=None, batch_size=16, seed=4))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_search_data_leaves_global_rng_alone() -> None:
    data = build_search_data("digits", root=None, batch_size=64, seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    next(iter(data.loader))
    assert torch.equal(torch.rand(3), expected)


def test_augmentation_is_random_but_reproducible_per_epoch() -> None:
    data = build_search_data("digits", root=None, batch_size=32, seed=0)
    epoch0 = _first(data)
    epoch1 = _first(data)
    assert not torch.equal(epoch0[0], epoch1[0])
    data.loader.set_epoch(0)
    assert torch.equal(_first(data)[0], epoch0[0])


def test_digits_search_data_shapes_and_steps() -> None:
    data = build_search_data("digits", root=None, batch_size=32, seed=0, image_size=12)
    assert (data.num_classes, data.image_size, data.in_channels) == (10, 12, 3)
    assert data.split["weights"]["size"] == 898 and data.split["arch"]["size"] == 449
    assert data.steps_per_epoch == 29  # ceil(898 / 32)
    batches = list(data.loader)
    assert len(batches) == 29
    x_w, y_w, x_a, y_a = batches[0]
    assert x_w.shape == (32, 3, 12, 12) and x_a.shape == (32, 3, 12, 12)
    assert y_w.shape == (32,) and y_a.shape == (32,) and y_w.dtype == torch.int64
    assert batches[-1][0].shape[0] == 898 - 28 * 32  # drop_last=False
    assert int(torch.cat([b[1] for b in batches]).max()) == 9


def test_pairing_covers_weight_split_once() -> None:
    data = build_search_data("digits", root=None, batch_size=32, seed=0, train_limit=50)
    assert data.steps_per_epoch == 2
    keys = data.loader.sampler.keys(0)
    weight = [k[0] for k in keys]
    arch = {k[1] for k in keys}
    assert len(weight) == 50 and len(set(weight)) == 50
    assert arch <= set(data.loader.sampler.arch_indices.tolist())
    assert len(data.loader.sampler.arch_indices) == 50
    assert not set(weight) & set(data.loader.sampler.arch_indices.tolist())


def test_workers_give_the_same_batches() -> None:
    kwargs = {"root": None, "batch_size": 8, "seed": 5, "options": {"n": 32}}
    serial = _first(build_search_data("synthetic", num_workers=0, **kwargs))
    parallel = _first(build_search_data("synthetic", num_workers=2, **kwargs))
    assert all(torch.equal(u, v) for u, v in zip(serial, parallel, strict=True))


def test_synthetic_options() -> None:
    data = build_search_data(
        "synthetic",
        root=None,
        batch_size=10,
        seed=0,
        image_size=6,
        options={"n": 40, "num_classes": 3, "in_channels": 1},
    )
    assert (data.num_classes, data.image_size, data.in_channels) == (3, 6, 1)
    assert data.steps_per_epoch == 2
    x_w, y_w, _, _ = _first(data)
    assert x_w.shape == (10, 1, 6, 6) and int(y_w.max()) < 3


def test_cifar10_search_on_fixture(tmp_path: Path) -> None:
    write_cifar10_fixture(tmp_path)
    # the shipped split file indexes 50,000 images: a clear error on the 20-image fixture
    with pytest.raises(SplitOutOfRange, match="split_override"):
        build_search_data("cifar10", root=str(tmp_path), batch_size=4, seed=0)
    data = build_search_data(
        "cifar10",
        root=str(tmp_path),
        batch_size=4,
        seed=0,
        split_override={"train": list(range(0, 20, 2)), "valid": list(range(1, 20, 2))},
    )
    assert data.steps_per_epoch == 3
    x_w, y_w, x_a, y_a = _first(data)
    assert x_w.shape == (4, 3, 32, 32) and x_a.shape == (4, 3, 32, 32)
    assert all(int(y) % 2 == 0 for y in y_w) and all(int(y) % 2 == 1 for y in y_a)
    assert data.split["weights"]["split_file"] == "override"
    assert "RandomHorizontalFlip" in data.split["augmentation"]
    # DARTS-space protocol: first / second half of the training set, DARTS normalization
    darts = build_search_data("cifar10", root=str(tmp_path), batch_size=4, seed=0, protocol="darts")
    assert darts.split["weights"]["size"] == 10 and darts.split["arch"]["size"] == 10
    assert "0.4913996" in darts.split["augmentation"]
    assert {int(k[0]) for k in darts.loader.sampler.keys(0)} == set(range(10))
    with pytest.raises(ValueError, match="image_size"):
        build_search_data("cifar10", root=str(tmp_path), batch_size=4, seed=0, image_size=16)


def test_cifar100_search_takes_alpha_from_test_xvalid(tmp_path: Path) -> None:
    write_cifar100_fixture(tmp_path)
    data = build_search_data(
        "cifar100",
        root=str(tmp_path),
        batch_size=12,
        seed=1,
        protocol="nb201",  # α on test images: runs only when named
        split_override={"xvalid": [0, 2, 4, 6], "xtest": [1, 3, 5, 7]},
    )
    assert data.steps_per_epoch == 1 and data.num_classes == 100
    _, y_w, _, y_a = _first(data)
    assert sorted(y_w.tolist()) == sorted(i % 50 for i in range(12))  # whole train set
    assert set(y_a.tolist()) <= {50, 52, 54, 56}  # test labels of the xvalid indices
    assert data.split["arch"]["half"] == "xvalid"


def test_svhn_search_uses_training_halves(tmp_path: Path) -> None:
    write_svhn_fixture(tmp_path)
    data = build_search_data("svhn", root=str(tmp_path), batch_size=5, seed=0)
    assert data.split["protocol"] == "darts"
    assert data.split["weights"]["size"] == 5 and data.split["arch"]["size"] == 5
    _, y_w, _, y_a = _first(data)
    assert set(y_w.tolist()) == {1, 2, 3, 4, 5}  # images 0..4
    assert set(y_a.tolist()) <= {6, 7, 8, 9, 0}  # images 5..9


def test_imagenet16_search_on_fixture(tmp_path: Path) -> None:
    write_imagenet16_fixture(tmp_path)
    data = build_search_data(
        "imagenet16-120",
        root=str(tmp_path),
        batch_size=8,
        seed=0,
        protocol="nb201",
        split_override={"xvalid": [1, 3], "xtest": [0, 2]},
    )
    assert (data.num_classes, data.image_size, data.steps_per_epoch) == (120, 16, 3)
    x_w, _, x_a, y_a = _first(data)
    assert x_w.shape == (8, 3, 16, 16) and x_a.shape == (8, 3, 16, 16)
    assert set(y_a.tolist()) <= {59, 118}
