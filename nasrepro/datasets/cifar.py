"""CIFAR-10 and CIFAR-100 through torchvision, with NAS-Bench-201 and DARTS search splits."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasrepro._compat import ensure_torchvision
from nasrepro.datasets.base import (
    DataSource,
    ImageArrayDataset,
    SearchParts,
    download_failed,
    halves,
    register,
    require_files,
    resolve_root,
)
from nasrepro.datasets.splits import load_split
from nasrepro.datasets.transforms import eval_transform, train_transform

_HOW = "download it with download=True (CLI: --download)"


@functools.cache
def _existence_only(tv_name: str) -> Any:
    """torchvision's class with the per-file MD5s set to None.

    torchvision checks hard-coded MD5s even with download=False, which rejects any file it
    did not publish; with None it checks existence only. The archive MD5 (`tgz_md5`) is
    kept, so a real download is still verified.
    """
    ensure_torchvision()
    from torchvision import datasets

    base = getattr(datasets, tv_name)
    attrs = {
        "train_list": [[name, None] for name, _ in base.train_list],
        "test_list": [[name, None] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": None},
    }
    return type(f"{tv_name}FilesOnly", (base,), attrs)


def load_cifar(
    tv_name: str, dataset: str, root: Path, *, train: bool, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels) of one part, read by torchvision."""
    cls = _existence_only(tv_name)
    folder = root / cls.base_folder
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    files = [folder / name for name in names]
    if download:
        try:
            tv = cls(str(root), train=train, download=True)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            raise download_failed(dataset, folder, exc) from exc
    else:
        require_files(dataset, files, _HOW)
        tv = cls(str(root), train=train, download=False)
    return np.ascontiguousarray(tv.data), np.asarray(tv.targets, dtype=np.int64)


class _Cifar(DataSource):
    native_size = 32
    protocols = ("nb201", "darts")
    tv_name: ClassVar[str]

    def _images(
        self, part: str, root: Path | None, download: bool, protocol: str, augment: bool
    ) -> ImageArrayDataset:
        if part not in ("train", "test"):
            raise ValueError(f"{self.name} has parts 'train' and 'test', not {part!r}")
        data, targets = load_cifar(
            self.tv_name, self.name, resolve_root(root), train=part == "train", download=download
        )
        make = train_transform if augment else eval_transform
        return ImageArrayDataset(data, targets, make(self.name, protocol))

    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> ImageArrayDataset:
        return self._images(part, root, download, self.check_protocol(protocol), augment)

    def _darts_parts(
        self,
        root: Path | None,
        download: bool,
        split_override: Mapping[str, Sequence[int]] | None,
    ) -> SearchParts:
        train = self._images("train", root, download, "darts", augment=True)
        w, a, how = halves(len(train), split_override)
        side = {"part": "train", "split": how}
        return SearchParts(train, w, train, a, {"weights": side, "arch": dict(side)})


@register("cifar10")
class Cifar10(_Cifar):
    """CIFAR-10 (torchvision files); NB201 search on the 25k/25k cifar-split.txt halves."""

    num_classes = 10
    tv_name = "CIFAR10"

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        protocol = self.check_protocol(protocol)
        if protocol == "darts":
            return self._darts_parts(root, download, split_override)
        # AutoDL get_nas_search_loaders: both halves of cifar-split.txt come from the
        # training set and both carry the training augmentation.
        split = (
            dict(split_override) if split_override is not None else load_split("cifar-split.txt")
        )
        source = "override" if split_override is not None else "cifar-split.txt"
        train = self._images("train", root, download, protocol, augment=True)
        return SearchParts(
            train,
            list(split["train"]),
            train,
            list(split["valid"]),
            {
                "weights": {"part": "train", "split_file": source, "half": "train"},
                "arch": {"part": "train", "split_file": source, "half": "valid"},
            },
        )


@register("cifar100")
class Cifar100(_Cifar):
    """CIFAR-100 (torchvision files); NB201 search: weights on train, α on test `xvalid`."""

    num_classes = 100
    tv_name = "CIFAR100"

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        protocol = self.check_protocol(protocol)
        if protocol == "darts":
            return self._darts_parts(root, download, split_override)
        # AutoDL get_nas_search_loaders: the full training set for the weights, the xvalid
        # half of the test set (given the training augmentation) for α.
        split = (
            dict(split_override)
            if split_override is not None
            else load_split("cifar100-test-split.txt")
        )
        source = "override" if split_override is not None else "cifar100-test-split.txt"
        train = self._images("train", root, download, protocol, augment=True)
        test = self._images("test", root, download, protocol, augment=True)
        return SearchParts(
            train,
            list(range(len(train))),
            test,
            list(split["xvalid"]),
            {
                "weights": {"part": "train", "split": "all"},
                "arch": {"part": "test", "split_file": source, "half": "xvalid"},
            },
        )
