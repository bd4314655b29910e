"""SVHN through torchvision (`train_32x32.mat`, `test_32x32.mat` directly under the root)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from nasrepro.datasets.transforms import eval_transform, train_transform

_HOW = "download it with download=True (CLI: --download)"


@functools.cache
def _existence_only() -> Any:
    """torchvision's SVHN checking that the .mat file exists rather than its MD5.

    The MD5 in `split_list` stays, so `download()` still verifies what it fetches.
    """
    ensure_torchvision()
    from torchvision import datasets

    def _check_integrity(self: Any) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))

    return type("SVHNFilesOnly", (datasets.SVHN,), {"_check_integrity": _check_integrity})


def load_svhn(root: Path, *, part: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels 0..9) of one part; the file's label 10 means 0."""
    cls = _existence_only()
    path = root / cls.split_list[part][1]
    if download and not path.is_file():  # torchvision would re-fetch any file failing its MD5
        try:
            tv = cls(str(root), split=part, download=True)
        except (OSError, RuntimeError) as exc:
            raise download_failed("svhn", path, exc) from exc
    else:
        require_files("svhn", [path], _HOW)
        tv = cls(str(root), split=part, download=False)
    # torchvision stores (N, C, H, W) and has already mapped label 10 to 0.
    return np.ascontiguousarray(tv.data.transpose(0, 2, 3, 1)), np.asarray(tv.labels, np.int64)


@register("svhn")
class Svhn(DataSource):
    """SVHN (torchvision .mat files); DARTS-space search on the two halves of `train`."""

    num_classes = 10
    native_size = 32
    protocols = ("darts",)

    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> ImageArrayDataset:
        if part not in ("train", "test"):
            raise ValueError(f"svhn has parts 'train' and 'test', not {part!r}")
        protocol = self.check_protocol(protocol)
        data, targets = load_svhn(resolve_root(root), part=part, download=download)
        make = train_transform if augment else eval_transform
        return ImageArrayDataset(data, targets, make("svhn", protocol))

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        self.check_protocol(protocol)
        # RobustDARTS / darts-pt search SVHN on contiguous halves of the training set
        # (train_portion 0.5, no shuffle before the cut), both with training augmentation.
        train = self.dataset("train", root, download=download, augment=True)
        w, a, how = halves(len(train), split_override)
        side = {"part": "train", "split": how}
        return SearchParts(train, w, train, a, {"weights": side, "arch": dict(side)})
