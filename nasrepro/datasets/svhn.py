"""SVHN through torchvision (`train_32x32.mat`, `test_32x32.mat` directly under the root)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def load_svhn(
    root: Path, *, part: str, download: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(images uint8 (N, 32, 32, 3), labels 0..9, files) of one part; the file's label 10
    means 0. The .mat is checked against torchvision's MD5 (`files` goes into the record);
    scipy's MATLAB reader builds arrays only, it runs nothing from the file."""
    cls = _existence_only()
    url, filename, md5 = cls.split_list[part]
    path = root / filename
    if download and not path.is_file():
        from torchvision.datasets.utils import download_url

        try:  # verified against the same MD5 by torchvision
            download_url(url, str(root), filename, md5)
        except (OSError, RuntimeError) as exc:
            raise download_failed("svhn", path, exc) from exc
    require_files("svhn", [path], _HOW)
    files = check_published("svhn", [(path, md5)], "torchvision")
    try:
        tv = cls(str(root), split=part, download=False)
    except (ValueError, TypeError, KeyError, OSError) as exc:  # scipy raises many kinds
        raise DataFileError(f"svhn: {path} is not a readable .mat file ({exc})") from None
    # torchvision stores (N, C, H, W) and has already mapped label 10 to 0.
    data = np.ascontiguousarray(tv.data.transpose(0, 2, 3, 1))
    return data, np.asarray(tv.labels, np.int64), files


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
        data, targets, files = load_svhn(resolve_root(root), part=part, download=download)
        make = train_transform if augment else eval_transform
        images = ImageArrayDataset(data, targets, make("svhn", protocol))
        images.files = files
        return images

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
