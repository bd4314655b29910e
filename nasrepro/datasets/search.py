"""Bilevel search data: each weight batch comes with an architecture (α) batch.

Follows D-X-Y/AutoDL-Projects xautodl/datasets/SearchDatasetWrap.py (`SearchDataset`) and
get_dataset_with_transform.py (`get_nas_search_loaders`): an epoch visits every item of the
weight split once, in shuffled order, in batches of `batch_size` (the last one may be short),
and pairs each weight item with an α item drawn uniformly at random, with replacement, from
the α split. Which data form the two splits is up to the dataset (see each `search_parts`).

Determinism: every random choice comes from `seed`. The epoch's order, the α draws and one
augmentation seed per item are drawn up front from a NumPy generator keyed by (seed, epoch).
torchvision's transforms draw from the global torch RNG, so each item is transformed with
that RNG (and Python's `random`) temporarily re-seeded from its own augmentation seed and
restored afterwards: batches are identical across runs and independent of `num_workers`, and
the caller's global RNG state is left untouched.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from nasrepro.datasets.base import (
    DataSource,
    SearchParts,
    SplitOutOfRange,
    get_source,
    resolve_root,
)
from nasrepro.datasets.transforms import describe_transform

PAIRING = (
    "weight split once per epoch in shuffled order, each item paired with an α item drawn "
    "uniformly with replacement (AutoDL SearchDataset)"
)
# SeedSequence spawn keys keep the streams for trimming, each epoch and each pass over the
# α split apart.
_LIMIT_STREAM = 0
_EPOCH_STREAM = 1
_PASS_STREAM = 2

Key = tuple[int, int, int, int]  # weight index, α index, weight aug seed, α aug seed


@contextmanager
def _seeded_rngs(seed: int) -> Iterator[None]:
    """Seed the CPU torch RNG and `random` for one item, then restore both."""
    gen = torch.default_generator
    torch_state = gen.get_state()
    py_state = random.getstate()
    gen.manual_seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        gen.set_state(torch_state)
        random.setstate(py_state)


class PairedItems(Dataset):
    """Items are keys (weight index, α index, two augmentation seeds) → (x_w, y_w, x_a, y_a)."""

    def __init__(self, weight_data: Dataset, arch_data: Dataset) -> None:
        self.weight_data = weight_data
        self.arch_data = arch_data

    def __getitem__(self, key: Key) -> tuple[Any, int, Any, int]:  # type: ignore[override]
        w, a, w_seed, a_seed = key
        with _seeded_rngs(w_seed):
            x_w, y_w = self.weight_data[w]
        with _seeded_rngs(a_seed):
            x_a, y_a = self.arch_data[a]
        return x_w, y_w, x_a, y_a


class SeededItems(Dataset):
    """Items (index, augmentation seed) of one dataset, each transformed under its own seed."""

    def __init__(self, data: Dataset, keys: list[tuple[int, int]]) -> None:
        self.data = data
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        index, seed = self.keys[i]
        with _seeded_rngs(seed):
            x, y = self.data[index]
        return x, y


class EpochKeys(Sampler[Key]):
    """The keys of one epoch, a pure function of (seed, epoch).

    Data-parallel (`world` > 1): rank r takes the r-th of `world` equal slices of every
    global batch of `batch_size` keys, so the ranks' batches together are the single
    process's batch; the last global batch, if short, is dropped to keep ranks in step.
    """

    def __init__(
        self,
        weight_indices: Sequence[int],
        arch_indices: Sequence[int],
        seed: int,
        rank: int = 0,
        world: int = 1,
        batch_size: int = 1,
    ):
        if batch_size % world:
            raise ValueError(
                f"search batch_size {batch_size} is not divisible by {world} processes"
            )
        self.weight_indices = np.asarray(weight_indices, dtype=np.int64)
        self.arch_indices = np.asarray(arch_indices, dtype=np.int64)
        self.seed = seed
        self.rank, self.world, self.batch_size = rank, world, batch_size
        self.epoch = 0

    def __len__(self) -> int:
        if self.world == 1:
            return len(self.weight_indices)
        return len(self.weight_indices) // self.batch_size * (self.batch_size // self.world)

    def _mine(self, keys: list[Key]) -> list[Key]:
        if self.world == 1:
            return keys
        b, per = self.batch_size, self.batch_size // self.world
        lo, hi = self.rank * per, (self.rank + 1) * per
        return [
            k for start in range(0, len(keys) // b * b, b) for k in keys[start + lo : start + hi]
        ]

    def keys(self, epoch: int) -> list[Key]:
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(_EPOCH_STREAM, epoch))
        )
        n = len(self.weight_indices)
        order = self.weight_indices[rng.permutation(n)]
        picks = self.arch_indices[rng.integers(0, len(self.arch_indices), size=n)]
        seeds = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
        return list(
            zip(
                order.tolist(),
                picks.tolist(),
                seeds[:, 0].tolist(),
                seeds[:, 1].tolist(),
                strict=True,
            )
        )

    def __iter__(self) -> Iterator[Key]:
        # Materialised now, so the epoch read is the one current when iteration starts.
        return iter(self._mine(self.keys(self.epoch)))


class SearchLoader:
    """Iterable of (x_w, y_w, x_a, y_a) batches; each `iter()` runs the next epoch.

    `set_epoch(e)` makes the next iteration epoch `e` (for resuming from a checkpoint).
    """

    def __init__(
        self,
        parts: SearchParts,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.sampler = EpochKeys(
            parts.weight_indices, parts.arch_indices, seed, rank, world, batch_size
        )
        self.epoch = 0
        self._loader = DataLoader(
            PairedItems(parts.weight_data, parts.arch_data),
            batch_size=batch_size // world,
            sampler=self.sampler,
            drop_last=False,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # its own generator: DataLoader otherwise draws a base seed from the global RNG
            generator=torch.Generator().manual_seed(seed),
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def arch_pass(
        self,
        epoch: int,
        *,
        augment: bool = True,
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> DataLoader:
        """Every item of the α split once, in batches (the search's batch size unless given),
        in split order or shuffled, under per-item seeds keyed by (seed, epoch). With the α
        side's transform it is the references' `infer(valid_queue)` over the validation split
        (RobustDARTS: its valid_queue carries the training augmentation); `augment=False`
        drops the transform's random steps, as AutoDL's `valid_loader` (the validation half
        with the test transform) that SETN and RSPS score their candidates on. Touches
        neither the search's batches nor the global random streams."""
        sampler = self.sampler
        rng = np.random.default_rng(
            np.random.SeedSequence(sampler.seed, spawn_key=(_PASS_STREAM, epoch))
        )
        n = len(sampler.arch_indices)
        order = rng.permutation(n) if shuffle else np.arange(n)
        seeds = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64).tolist()
        keys = list(zip(sampler.arch_indices[order].tolist(), seeds, strict=True))
        data = self._loader.dataset.arch_data
        items = SeededItems(data if augment else without_augmentation(data), keys)
        return DataLoader(items, batch_size=batch_size or self._loader.batch_size, shuffle=False)


    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        self.sampler.epoch = self.epoch
        self.epoch += 1
        return iter(self._loader)


def without_augmentation(data: Dataset) -> Dataset:
    """A shallow copy of `data` whose (composed) transform keeps only its deterministic steps:
    the random ones (RandomCrop, RandomHorizontalFlip, ...) are dropped, so CIFAR's
    [flip, crop, ToTensor, Normalize] becomes the test transform [ToTensor, Normalize]."""
    import copy

    transform = getattr(data, "transform", None)
    if transform is None:
        return data
    composed = hasattr(transform, "transforms")
    steps = list(transform.transforms) if composed else [transform]
    kept = [t for t in steps if not type(t).__name__.startswith("Random")]
    out = copy.copy(data)
    if len(kept) < len(steps):
        out.transform = type(transform)(kept) if composed else None  # type: ignore[attr-defined]
    return out
    ensure = type(transform) if hasattr(transform, "transforms") else None
    out.transform = ensure(kept) if ensure is not None else (kept[0] if kept else None)  # type: ignore[attr-defined]
    return out


@dataclass
class SearchData:
    """What a search needs from its data; `split` records where every batch comes from."""

    loader: SearchLoader  # yields (x_w, y_w, x_a, y_a)
    steps_per_epoch: int
    num_classes: int
    image_size: int
    in_channels: int
    split: dict[str, Any]


def _trim(indices: list[int], limit: int | None, seed: int, stream: int) -> list[int]:
    if limit is None or limit >= len(indices):
        return indices
    if limit < 1:
        raise ValueError(f"train_limit must be >= 1, got {limit}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_LIMIT_STREAM, stream)))
    return [indices[i] for i in rng.permutation(len(indices))[:limit].tolist()]


def _check_range(dataset: str, side: str, indices: list[int], data: Dataset, where: Any) -> None:
    if not indices:
        raise ValueError(f"{dataset}: the {side} split is empty ({where})")
    size = len(data)  # type: ignore[arg-type]
    lo, hi = min(indices), max(indices)
    if lo < 0 or hi >= size:
        raise SplitOutOfRange(
            f"{dataset}: {side} split ({where}) has indices {lo}..{hi} but the data found has "
            f"{size} items; split files index the full dataset: use the full files, or pass "
            f"split_override with indices below {size}"
        )


class SearchProtocolError(ValueError):
    """The search-data protocol an experiment names is unknown or not allowed."""


class SearchSplitLeak(SearchProtocolError):
    """A search split would train weights or α on test images without the suite asking."""


def space_protocol(space: str) -> str:
    """The search-data protocol of a space's own papers (`search_protocol` of the space)."""
    from nasrepro.spaces import build_space

    return str(build_space(space).search_protocol)  # type: ignore[attr-defined]


def resolve_protocol(
    source: DataSource, space: str | None, protocol: str | None
) -> tuple[str, str]:
    """(protocol, where it came from) for a search of `space` on `source`.

    A protocol the suite names wins. Otherwise the space's own: the DARTS-type spaces split
    the training set in halves (quark0/darts, RobustDARTS, DARTS-, darts-pt), NB201 reads
    AutoDL's split files. A dataset that lacks the space's protocol (digits, synthetic:
    `holdout`; ImageNet: its proxy subsets) falls back to its only one.
    """
    if protocol is not None:
        try:
            return source.check_protocol(protocol), "named by the suite"
        except ValueError as exc:
            raise SearchProtocolError(str(exc)) from None
    if space is not None:
        own = space_protocol(space)
        if own in source.protocols:
            return own, f"space {space}"
    return source.check_protocol(None), f"dataset {source.name} default"


def _test_sides(parts: SearchParts) -> list[str]:
    # ImageNet16-120's test part is named "test (val_data)": its file is NB201's val_data
    return [
        side
        for side in ("weights", "arch")
        if str(parts.provenance[side].get("part", "")).split(" ")[0] == "test"
    ]


def build_search_data(
    dataset: str,
    *,
    root: str | os.PathLike[str] | None,
    batch_size: int,
    seed: int,
    image_size: int | None = None,
    train_limit: int | None = None,
    download: bool = False,
    num_workers: int = 0,
    protocol: str | None = None,
    split_override: Mapping[str, Sequence[int]] | None = None,
    options: Mapping[str, Any] | None = None,
    rank: int = 0,
    world: int = 1,
    space: str | None = None,
) -> SearchData:
    """Build the paired weight/α loader for a registered dataset.

    - `root`: data folder; None means $NASREPRO_DATA_ROOT, else ~/.cache/nasrepro/data.
    - `image_size`: only for datasets rendered at any size (digits, synthetic); the others
      accept None or their native size.
    - `train_limit`: keep the first N indices of each split after a permutation seeded by
      `seed` (smoke budgets).
    - `protocol`: whose split and augmentation to use. cifar10/cifar100: `nb201` (AutoDL's
      split files) or `darts` (halves of the training set, DARTS-script augmentation); svhn:
      `darts` only; imagenet16-120: `nb201`; digits/synthetic: `holdout`. None: the
      protocol of `space` (`resolve_protocol`). A protocol that feeds test images to the
      weights or α (NB201's `xvalid` α split on cifar100/imagenet16-120) must be named
      here explicitly, else `SearchSplitLeak` is raised.
    - `split_override`: replaces the split the protocol would read, with the same keys —
      the split file's halves for `nb201` (cifar10: `train`/`valid`; cifar100,
      imagenet16-120: `xvalid`), `train`/`valid` otherwise. For tests on small fixtures,
      whose sizes the shipped split files do not fit.
    - `options`: extra constructor arguments of the dataset (e.g. synthetic's `n`).
    - `rank`, `world`: this process's share of a data-parallel search (`EpochKeys`).
    - `space`: the search space, whose papers' protocol applies when `protocol` is None.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    source = get_source(dataset)(image_size, **dict(options or {}))
    data_root = resolve_root(root) if source.needs_root else None
    protocol, protocol_from = resolve_protocol(source, space, protocol)
    parts = source.search_parts(
        data_root, download=download, protocol=protocol, split_override=split_override
    )
    test_sides = _test_sides(parts)
    if test_sides and protocol_from != "named by the suite":
        raise SearchSplitLeak(
            f"{dataset}: search protocol {protocol!r} ({protocol_from}) trains "
            f"{' and '.join(test_sides)} on test images; set the experiment's "
            f"search.data_protocol: {protocol} to run that protocol on purpose"
        )
    parts.weight_indices = _trim(parts.weight_indices, train_limit, seed, 0)
    parts.arch_indices = _trim(parts.arch_indices, train_limit, seed, 1)
    where = {"root": str(data_root)} if data_root is not None else {}
    _check_range(
        dataset,
        "weight",
        parts.weight_indices,
        parts.weight_data,
        {**parts.provenance["weights"], **where},
    )
    _check_range(
        dataset, "α", parts.arch_indices, parts.arch_data, {**parts.provenance["arch"], **where}
    )
    single_level = bool(parts.provenance["arch"].get("single_level"))  # GAEA-ERM: by design
    if (
        parts.weight_data is parts.arch_data
        and not single_level
        and set(parts.weight_indices) & set(parts.arch_indices)
    ):
        raise ValueError(f"{dataset}: the weight and α splits of one set overlap")

    loader = SearchLoader(parts, batch_size, seed, num_workers, rank, world)
    split = {
        "dataset": dataset,
        "protocol": protocol,
        "protocol_from": protocol_from,
        "test_images_reach": test_sides,
        "weights": {**parts.provenance["weights"], "size": len(parts.weight_indices)},
        "arch": {**parts.provenance["arch"], "size": len(parts.arch_indices)},
        "augmentation": describe_transform(getattr(parts.weight_data, "transform", None)),
        "pairing": PAIRING,
        "train_limit": train_limit,
        "seed": seed,
        **({"processes": world} if world > 1 else {}),
        **where,
    }
    n = len(parts.weight_indices)
    return SearchData(
        loader=loader,
        steps_per_epoch=math.ceil(n / batch_size) if world == 1 else n // batch_size,
        num_classes=source.num_classes,
        image_size=source.image_size,
        in_channels=source.in_channels,
        split=split,
    )


def trial_search_data(
    config: Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None,
    seed: int,
    download: bool = False,
    rank: int = 0,
    world: int = 1,
    on_device: torch.device | None = None,
) -> SearchData:
    """The search data of a resolved trial config (`plan.resolve_experiment`): the one way
    trials and the runner's preflight build it, so both see the same split. `on_device`:
    hold the images there and augment them there (datasets/device_data.py) where the data
    allow it (uint8 arrays under a known recipe); `split["loader"]` says so. Data-parallel
    (`world` > 1), each rank holds the images and augments its slice of every batch: the
    ranks' slices together are the one-process batch, crop for crop."""
    search = config["search"]
    data = build_search_data(
        config["dataset"],
        root=root,
        batch_size=search["batch_size"],
        seed=seed,
        image_size=search.get("image_size"),
        train_limit=search.get("train_limit"),
        download=download,
        protocol=search.get("data_protocol"),
        space=config["space"],
        rank=rank,
        world=world,
    )
    if on_device is not None:
        from nasrepro.datasets.device_data import DeviceSearchLoader, supported

        paired = data.loader._loader.dataset
        name, protocol = data.split["dataset"], data.split["protocol"]
        r = supported(paired.weight_data, name, protocol)
        if r is not None and supported(paired.arch_data, name, protocol) == r:
            data.loader = DeviceSearchLoader(data.loader, r, on_device)  # type: ignore[assignment]
            data.split["loader"] = (
                f"images and augmentation on {on_device} (nasrepro/datasets/device_data.py): "
                "the same items per batch, crops and flips drawn from each item's key"
            )
    return data
