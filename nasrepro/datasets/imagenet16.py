"""ImageNet16-120: NAS-Bench-201's 16x16 downsampled ImageNet restricted to 120 classes.

On-disk format (as read by D-X-Y/AutoDL-Projects xautodl/datasets/DownsampledImageNet.py,
class `ImageNet16`): a folder with pickles `train_data_batch_1` … `train_data_batch_10` and
`val_data`, each `{"data": uint8 (N, 768) laid out RRR…GGG…BBB, "labels": [1-based ints]}`.
ImageNet16-120 keeps the images labelled 1..120 and shifts labels to 0..119.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nasrepro.datafiles import DataFileError, check_published
from nasrepro.datasets.base import (
    DataSource,
    ImageArrayDataset,
    SearchParts,
    Transform,
    register,
    require_files,
    resolve_root,
    single_level_parts,
)
from nasrepro.datasets.splits import load_split
from nasrepro.datasets.transforms import eval_transform, train_transform
from nasrepro.safe_pickle import load_pickle

TRAIN_FILES = tuple(f"train_data_batch_{k}" for k in range(1, 11))
VALID_FILES = ("val_data",)
# The MD5s AutoDL publishes with the loader (xautodl/datasets/DownsampledImageNet.py).
PUBLISHED_MD5 = {
    "train_data_batch_1": "27846dcaa50de8e21a7d1a35f30f0e91",
    "train_data_batch_2": "c7254a054e0e795c69120a5727050e3f",
    "train_data_batch_3": "4333d3df2e5ffb114b05d2ffc19b1e87",
    "train_data_batch_4": "1620cdf193304f4a92677b695d70d10f",
    "train_data_batch_5": "348b3c2fdbb3940c4e9e834affd3b18d",
    "train_data_batch_6": "6e765307c242a1b3d7d5ef9139b48945",
    "train_data_batch_7": "564926d8cbf8fc4818ba23d2faac7564",
    "train_data_batch_8": "f4755871f718ccb653440b9dd0ebac66",
    "train_data_batch_9": "bb6dd660c38c58552125b1a92f86b5d4",
    "train_data_batch_10": "8f03f34ac4b42271a294f91bf480f29b",
    "val_data": "3410e3017fdaefba8d5073aaa65e4bd6",
}
_HOW = (
    "place NAS-Bench-201's ImageNet16 pickles (train_data_batch_1..10, val_data) there; "
    "they cannot be downloaded automatically"
)


def imagenet16_folder(root: Path) -> Path:
    """`root/ImageNet16` when it exists, else `root` itself when it holds the pickles."""
    sub = root / "ImageNet16"
    if not sub.is_dir() and (root / VALID_FILES[0]).is_file():
        return root
    return sub


class ImageNet16(ImageArrayDataset):
    """Downsampled ImageNet 16x16; `num_classes` keeps labels 1..num_classes (0-based here)."""

    def __init__(
        self,
        root: str | Path,
        train: bool,
        transform: Transform | None = None,
        num_classes: int | None = 120,
        dataset_name: str = "imagenet16-120",
    ) -> None:
        folder = Path(root)
        files = [folder / name for name in (TRAIN_FILES if train else VALID_FILES)]
        require_files(dataset_name, files, _HOW)
        checked = check_published(
            dataset_name, [(p, PUBLISHED_MD5.get(p.name)) for p in files], "AutoDL"
        )
        chunks, labels = [], []
        for path in files:
            # pickles written by Python 2 (latin1, as AutoDL reads them), read by the
            # restricted unpickler: a crafted file cannot run code
            entry = load_pickle(path)
            if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
                raise DataFileError(f"{dataset_name}: {path} holds no 'data' and 'labels'")
            try:
                chunks.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 768))
                labels.append(np.asarray(entry["labels"], dtype=np.int64).reshape(-1))
            except (TypeError, ValueError) as exc:
                raise DataFileError(
                    f"{dataset_name}: {path} is not an ImageNet16 batch ({exc})"
                ) from None
            if len(chunks[-1]) != len(labels[-1]):
                raise DataFileError(
                    f"{dataset_name}: {path} has {len(chunks[-1])} images but "
                    f"{len(labels[-1])} labels"
                )
        data = np.concatenate(chunks).reshape(-1, 3, 16, 16)
        targets = np.concatenate(labels)
        if num_classes is not None:
            keep = (targets >= 1) & (targets <= num_classes)
            data, targets = data[keep], targets[keep]
        super().__init__(np.ascontiguousarray(data.transpose(0, 2, 3, 1)), targets - 1, transform)
        self.root = folder
        self.train = train
        self.files = checked


@register("imagenet16-120")
class ImageNet16_120(DataSource):
    """ImageNet16-120 (NB201 pickles); search: weights on train, α on val `xvalid`."""

    num_classes = 120
    native_size = 16
    # `nb201-single-level`: GAEA-ERM's data (datasets/base.py single_level_parts)
    protocols = ("nb201", "nb201-single-level")

    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> ImageNet16:
        if part not in ("train", "test"):
            raise ValueError(f"imagenet16-120 has parts 'train' and 'test', not {part!r}")
        protocol = self.check_protocol(protocol)
        if protocol == "nb201-single-level":
            protocol = "nb201"  # GAEA-ERM reads the data with NB201's transforms
        make = train_transform if augment else eval_transform
        return ImageNet16(
            imagenet16_folder(resolve_root(root)),
            train=part == "train",
            transform=make(self.name, protocol),
            num_classes=self.num_classes,
        )

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        if self.check_protocol(protocol) == "nb201-single-level":
            return single_level_parts(self.dataset("train", root, augment=True))
        # AutoDL get_nas_search_loaders: full training set for the weights, the xvalid half of
        # the (120-class) validation set with the training augmentation for α.
        split = (
            dict(split_override)
            if split_override is not None
            else load_split("imagenet-16-120-test-split.txt")
        )
        source = "override" if split_override is not None else "imagenet-16-120-test-split.txt"
        train = self.dataset("train", root, augment=True)
        valid = self.dataset("test", root, augment=True)
        return SearchParts(
            train,
            list(range(len(train))),
            valid,
            list(split["xvalid"]),
            {
                "weights": {"part": "train", "split": "all"},
                "arch": {"part": "test (val_data)", "split_file": source, "half": "xvalid"},
            },
        )
