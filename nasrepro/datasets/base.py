"""What every registered dataset provides, and the pieces the loaders share."""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from nasrepro.catalog import Arg, register_dataset

ENV_DATA_ROOT = "NASREPRO_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("~/.cache/nasrepro/data")

Transform = Callable[[Any], Any]
D = TypeVar("D", bound="DataSource")


class DatasetNotFound(FileNotFoundError):
    """A dataset's files are not where the loader looks for them."""


class SplitOutOfRange(ValueError):
    """Split indices point past the end of the dataset found on disk."""


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: the argument, else $NASREPRO_DATA_ROOT, else ~/.cache/nasrepro/data."""
    if root is None:
        root = os.environ.get(ENV_DATA_ROOT) or DEFAULT_DATA_ROOT
    return Path(root).expanduser()


def not_found(dataset: str, path: Path, how: str) -> DatasetNotFound:
    """One-line error naming the dataset, the path looked at and the ways to fix it."""
    return DatasetNotFound(
        f"{dataset}: {path} not found; pass --data-root DIR or set {ENV_DATA_ROOT}, or {how}"
    )


def download_failed(dataset: str, path: Path, exc: BaseException) -> DatasetNotFound:
    return DatasetNotFound(
        f"{dataset}: {path} not found and the download failed ({exc}); pass --data-root DIR "
        f"pointing at a copy, or set {ENV_DATA_ROOT}"
    )


def require_files(dataset: str, paths: Sequence[Path], how: str) -> None:
    for path in paths:
        if not path.is_file():
            raise not_found(dataset, path, how)


class ImageArrayDataset(Dataset):
    """uint8 HWC images held in one array; items are (transform(PIL image), label).

    Loaders copy torchvision's arrays into this class so that every dataset yields the same
    item type and pickles cheaply into DataLoader workers.
    """

    def __init__(
        self, data: np.ndarray, targets: Sequence[int] | np.ndarray, transform: Transform | None
    ) -> None:
        if data.ndim != 4 or data.dtype != np.uint8:
            raise ValueError(f"expected uint8 (N, H, W, C) images, got {data.dtype} {data.shape}")
        if len(data) != len(targets):
            raise ValueError(f"{len(data)} images but {len(targets)} labels")
        self.data = data
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform
        # the files read (sha256, published-checksum check; nasrepro/datafiles.py), if any
        self.files: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        img: Any = Image.fromarray(self.data[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])

    def with_transform(self, transform: Transform | None) -> ImageArrayDataset:
        """The same images (shared, not copied) under another transform."""
        out = ImageArrayDataset(self.data, self.targets, transform)
        out.files = self.files
        return out


class TensorImageDataset(Dataset):
    """Float CHW images in one tensor (embedded and synthetic data); items are (x, label)."""

    def __init__(
        self, images: torch.Tensor, targets: torch.Tensor, transform: Transform | None = None
    ) -> None:
        if images.ndim != 4 or len(images) != len(targets):
            raise ValueError(f"expected (N, C, H, W) images and N labels, got {images.shape}")
        self.images = images
        self.targets = targets.long()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])


@dataclass
class SearchParts:
    """The two sides of a bilevel search before batching.

    Both datasets already carry the search (training) augmentation; indices select the items
    each side may use. `provenance` says where each side came from.
    """

    weight_data: Dataset
    weight_indices: list[int]
    arch_data: Dataset
    arch_indices: list[int]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # each side names the files it was read from (their sha256 goes into the record)
        for side, data in (("weights", self.weight_data), ("arch", self.arch_data)):
            files = getattr(data, "files", None)
            if files is not None and side in self.provenance:
                self.provenance[side] = {**self.provenance[side], "data_files": files}


def single_level_parts(train: Dataset) -> SearchParts:
    """GAEA-ERM's data (`nb201-single-level`; liamcli/gaea_release cnn/train_utils.py
    create_nasbench_201_data_queues with single_level): weights and α both read the whole
    training set (with its augmentation), each α batch drawn independently of the weight
    batch."""
    every = list(range(len(train)))  # type: ignore[arg-type]
    side = {"part": "train", "split": "all", "single_level": True}
    return SearchParts(train, every, train, list(every), {"weights": side, "arch": dict(side)})


class DataSource(abc.ABC):
    """A registered dataset: its shape, its train/test sets and its search split.

    Subclasses with a fixed resolution set `native_size`; those that can be rendered at any
    size (digits, synthetic) accept `image_size` in their constructor.
    """

    name: ClassVar[str] = ""
    num_classes: int
    native_size: ClassVar[int | None] = None
    in_channels: int = 3
    protocols: ClassVar[tuple[str, ...]] = ()
    needs_root: ClassVar[bool] = True

    def __init__(self, image_size: int | None = None) -> None:
        if self.native_size is None:
            raise TypeError(f"{type(self).__name__} must set native_size or override __init__")
        if image_size is not None and image_size != self.native_size:
            raise ValueError(
                f"{self.name} images are {self.native_size}x{self.native_size}; "
                f"image_size={image_size} is not supported"
            )
        self.image_size: int = self.native_size

    def check_protocol(self, protocol: str | None) -> str:
        protocol = protocol or self.protocols[0]
        if protocol not in self.protocols:
            known = ", ".join(self.protocols)
            raise ValueError(f"{self.name} has no search protocol {protocol!r} (known: {known})")
        return protocol

    @abc.abstractmethod
    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> Dataset:
        """`part` is `train` or `test`; `augment` picks the training augmentation.

        `protocol` picks whose normalization and augmentation (see `transforms.RECIPES`);
        None means the dataset's first protocol.
        """

    @abc.abstractmethod
    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        """Weight and α data for the bilevel search (see `nasrepro.datasets.search`)."""


def halves(
    n: int, split_override: Mapping[str, Sequence[int]] | None
) -> tuple[list[int], list[int], str]:
    """First half / second half of range(n), or the override's `train` / `valid` lists.

    The DARTS-space scripts split the training set this way with train_portion 0.5
    (quark0/darts cnn/train_search.py, automl/RobustDARTS src/search/args.py:
    `indices[:split]`, `indices[split:num_train]`, split = floor(0.5 * n)).
    """
    if split_override is not None:
        return list(split_override["train"]), list(split_override["valid"]), "override"
    cut = n // 2
    return list(range(cut)), list(range(cut, n)), f"indices[:{cut}] / indices[{cut}:{n}]"


def register(name: str, args: Mapping[str, Arg] | None = None) -> Callable[[type[D]], type[D]]:
    """Register a DataSource class in the catalog under `name`; `args`: the options its
    constructor takes besides `image_size` (none unless declared)."""

    def deco(cls: type[D]) -> type[D]:
        cls.name = name
        return register_dataset(name, args={} if args is None else args)(cls)

    return deco


def get_source(name: str) -> type[DataSource]:
    from nasrepro import catalog

    return catalog.get("dataset", name)
