"""CIFAR-10 and CIFAR-100 through torchvision, with NAS-Bench-201 and DARTS search splits."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasrepro._compat import ensure_torchvision
from nasrepro.datafiles import DataFileError, check_published
from nasrepro.datasets.base import (
    DataSource,
    ImageArrayDataset,
    SearchParts,
    download_failed,
    halves,
    register,
    require_files,
    resolve_root,
    single_level_parts,
)
from nasrepro.datasets.splits import load_split
from nasrepro.datasets.transforms import eval_transform, train_transform
from nasrepro.safe_pickle import load_pickle

_HOW = "download it with download=True (CLI: --download)"


@functools.cache
def _published(tv_name: str) -> Any:
    """torchvision's class: its file lists with the MD5s it publishes, and its download."""
    ensure_torchvision()
    from torchvision import datasets

    return getattr(datasets, tv_name)


def _download(cls: Any, dataset: str, root: Path, folder: Path) -> None:
    """torchvision's archive download (verified against its `tgz_md5`), when files lack."""
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise download_failed(dataset, folder, exc) from exc


def load_cifar(
    tv_name: str, dataset: str, root: Path, *, train: bool, download: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(images uint8 (N, 32, 32, 3), labels, files) of one part.

    The batches are read with the restricted unpickler (they are pickles: a crafted file
    would otherwise run code) after their MD5s are checked against torchvision's list;
    `files` (sha256 of each, which checksums, fixture or not) goes into the record.
    """
    cls = _published(tv_name)
    folder = root / cls.base_folder
    entries = cls.train_list if train else cls.test_list
    paths = [folder / name for name, _ in entries]
    if download and not all(p.is_file() for p in paths):
        _download(cls, dataset, root, folder)
    require_files(dataset, paths, _HOW)
    files = check_published(dataset, [(folder / name, md5) for name, md5 in entries], "torchvision")
    chunks, labels = [], []
    label_key = "labels" if tv_name == "CIFAR10" else "fine_labels"
    for path in paths:
        entry = load_pickle(path)
        if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
            raise DataFileError(f"{dataset}: {path} holds no 'data' and {label_key!r}")
        try:
            chunks.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[label_key], dtype=np.int64).reshape(-1))
        except (TypeError, ValueError) as exc:
            raise DataFileError(f"{dataset}: {path} is not a CIFAR batch ({exc})") from None
        if len(chunks[-1]) != len(labels[-1]):
            raise DataFileError(
                f"{dataset}: {path} has {len(chunks[-1])} images but {len(labels[-1])} labels"
            )
    data = np.concatenate(chunks).transpose(0, 2, 3, 1)  # torchvision's HWC layout
    return np.ascontiguousarray(data), np.concatenate(labels), files


class _Cifar(DataSource):
    native_size = 32
    # `nb201-single-level`: GAEA-ERM's data (datasets/base.py single_level_parts), NB201
    # augmentation, on whichever dataset GAEA searches (its README: cifar10, cifar100)
    protocols = ("nb201", "darts", "nb201-single-level")
    tv_name: ClassVar[str]

    def _images(
        self, part: str, root: Path | None, download: bool, protocol: str, augment: bool
    ) -> ImageArrayDataset:
        if part not in ("train", "test"):
            raise ValueError(f"{self.name} has parts 'train' and 'test', not {part!r}")
        data, targets, files = load_cifar(
            self.tv_name, self.name, resolve_root(root), train=part == "train", download=download
        )
        make = train_transform if augment else eval_transform
        images = ImageArrayDataset(data, targets, make(self.name, protocol))
        images.files = files
        return images

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
    # `darts-single-level`: SNAS' data, the single-level sides with DARTS' augmentation
    # (SNAS-Series SNAS/train_search.py: one train_queue over all 50,000 training images,
    # crop + flip); `nb201-single-level` is _Cifar's.
    protocols = (*_Cifar.protocols, "darts-single-level")

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
        if protocol in ("nb201-single-level", "darts-single-level"):
            style = protocol.split("-")[0]
            return single_level_parts(self._images("train", root, download, style, True))
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
        if protocol == "nb201-single-level":
            return single_level_parts(self._images("train", root, download, "nb201", True))
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
