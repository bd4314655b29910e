"""ImageNet (ILSVRC-2012) from a standard ImageFolder tree, and PC-DARTS' proxy subsets.

Layout under the data root: `imagenet/train/<wnid>/*.JPEG` and `imagenet/val/<wnid>/*`
(the validation images sorted into class folders, as torchvision's ImageFolder and the
reference scripts read them; the papers' "test" accuracy is this validation set). Images are
decoded with PIL: torchvision.io's decoders do not load beside this machine's CPU torch
(docs/stack.md).

Augmentation, from quark0/darts cnn/train_imagenet.py and yuhuixu1993/PC-DARTS
train_imagenet.py (identical): RandomResizedCrop(224), RandomHorizontalFlip,
ColorJitter(0.4, 0.4, 0.4, 0.2), ToTensor, Normalize; evaluation: Resize(256), CenterCrop(224).
Built with timm's `create_transform` (bilinear, scale (0.08, 1), ratio (3/4, 4/3): torchvision's
RandomResizedCrop defaults; crop_pct 0.875 = 224/256). The search sides use PC-DARTS
train_search_imagenet.py's transform: RandomResizedCrop(224) and flip, no colour jitter.

Search (PC-DARTS): "we randomly sample 10% and 2.5% images from the training set of ImageNet
per class" for the weights and for α (PC-DARTS paper §4.3 / train_search_imagenet.py, which
reads pre-sampled folders; no sampling script is published, PC-DARTS issues #45/#47).
`proxy_subsets` is that sampling, reproducible and disjoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasrepro._compat import ensure_torchvision
from nasrepro.datasets.base import (
    DatasetNotFound,
    DataSource,
    SearchParts,
    not_found,
    register,
    resolve_root,
)

FOLDER = "imagenet"
PART_DIRS = {"train": "train", "test": "val", "val": "val"}
DEFAULT_IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # quark0 train_imagenet.py transforms.Normalize
IMAGENET_STD = (0.229, 0.224, 0.225)
COLOR_JITTER = (0.4, 0.4, 0.4, 0.2)  # brightness, contrast, saturation, hue (train_imagenet.py)
CROP_PCT = 0.875  # Resize(256) before CenterCrop(224)
PROXY_FRACTIONS = (0.10, 0.025)  # PC-DARTS: 10% of each class for weights, 2.5% for α
PROXY_SEED = 0  # fixed, so every search seed sees the same proxy subsets
_HOW = (
    "ImageNet cannot be downloaded automatically: put the ILSVRC-2012 train and val images in "
    "ImageFolder layout under <root>/imagenet/train/<wnid>/ and <root>/imagenet/val/<wnid>/"
)


def proxy_subsets(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float] = PROXY_FRACTIONS,
    seed: int = PROXY_SEED,
) -> tuple[list[int], ...]:
    """Disjoint per-class random subsets of a labelled set: one index list per fraction.

    For each class (in label order) its indices are permuted with one `numpy` PCG64 generator
    seeded by `seed`; the first round(f0·n) go to subset 0, the next round(f1·n) to subset 1,
    and so on (half-way rounds up; at least one image per class and subset). The lists are
    sorted. With the defaults this is PC-DARTS' (10% weights, 2.5% α) ImageNet proxy.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    fracs = [float(f) for f in fractions]
    if not fracs or any(not 0.0 < f <= 1.0 for f in fracs) or sum(fracs) > 1.0 + 1e-12:
        raise ValueError(f"fractions must be in (0, 1] and sum to at most 1, got {fracs}")
    rng = np.random.default_rng(seed)
    order = np.argsort(y, kind="stable")
    classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    out: list[list[int]] = [[] for _ in fracs]
    for c, start, n in zip(classes.tolist(), starts.tolist(), counts.tolist(), strict=True):
        members = rng.permutation(order[start : start + n])
        takes = [max(1, int(np.floor(f * n + 0.5))) for f in fracs]
        if sum(takes) > n:
            raise ValueError(
                f"class {c} has {n} images, too few for disjoint subsets of {fracs} "
                f"({sum(takes)} images needed)"
            )
        offset = 0
        for part, k in zip(out, takes, strict=True):
            part.extend(members[offset : offset + k].tolist())
            offset += k
    return tuple(sorted(int(i) for i in part) for part in out)


def pil_loader(path: str) -> Any:
    """Open an image with PIL and convert it to RGB (torchvision.io does not load here)."""
    from PIL import Image

    with open(path, "rb") as fh:
        img = Image.open(fh)
        return img.convert("RGB")


def imagenet_transform(image_size: int, train: bool, color_jitter: bool = True) -> Any:
    """The reference scripts' train / eval transforms at `image_size`, via timm."""
    ensure_torchvision()
    from timm.data import create_transform

    if train:
        return create_transform(
            image_size,
            is_training=True,
            scale=(0.08, 1.0),
            ratio=(3 / 4, 4 / 3),
            hflip=0.5,
            color_jitter=COLOR_JITTER if color_jitter else None,
            interpolation="bilinear",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )
    return create_transform(
        image_size,
        is_training=False,
        crop_pct=CROP_PCT,
        interpolation="bilinear",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir())


@register("imagenet")
class ImageNet(DataSource):
    """ILSVRC-2012 from an ImageFolder tree (PIL); `test` is the validation set; DARTS-space
    search on PC-DARTS' 10% / 2.5% per-class proxy subsets of `train`."""

    num_classes = 1000
    native_size = DEFAULT_IMAGE_SIZE
    protocols = ("darts",)

    def __init__(self, image_size: int | None = None) -> None:
        # Any size: the transforms crop and resize (224 is the papers' resolution).
        size = image_size or DEFAULT_IMAGE_SIZE
        if size < 8:
            raise ValueError(f"imagenet: image_size must be >= 8, got {size}")
        self.image_size = size

    def folder(self, part: str, root: Path | None) -> Path:
        if part not in PART_DIRS:
            raise ValueError(f"imagenet has parts 'train' and 'test' (= val), not {part!r}")
        path = resolve_root(root) / FOLDER / PART_DIRS[part]
        if not path.is_dir():
            raise not_found("imagenet", path, _HOW)
        return path

    def _image_folder(self, part: str, root: Path | None, transform: Any, download: bool) -> Any:
        if download:
            raise DatasetNotFound(f"imagenet: {_HOW}")
        ensure_torchvision()
        from torchvision.datasets import ImageFolder

        path = self.folder(part, root)
        if PART_DIRS[part] == "val":
            train_classes = _class_dirs(self.folder("train", root))
            val_classes = _class_dirs(path)
            if val_classes != train_classes:
                missing = sorted(set(train_classes) ^ set(val_classes))[:5]
                raise ValueError(
                    f"imagenet: {path} and the train folder hold different class folders "
                    f"(e.g. {missing}); val must be sorted into the train classes' wnid folders"
                )
        try:
            data = ImageFolder(str(path), transform=transform, loader=pil_loader)
        except FileNotFoundError as exc:  # a class folder without images
            raise DatasetNotFound(f"imagenet: {exc}") from exc
        if len(data.classes) > self.num_classes:
            raise ValueError(
                f"imagenet: {path} has {len(data.classes)} class folders, more than "
                f"{self.num_classes}"
            )
        return data

    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> Any:
        """torchvision ImageFolder (items: (transformed image, class index)); `augment` picks
        the training transform."""
        self.check_protocol(protocol)
        transform = imagenet_transform(self.image_size, train=augment)
        return self._image_folder(part, root, transform, download)

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        self.check_protocol(protocol)
        transform = imagenet_transform(self.image_size, train=True, color_jitter=False)
        train = self._image_folder("train", root, transform, download)
        if split_override is not None:
            w, a = list(split_override["train"]), list(split_override["valid"])
            how = "override"
        else:
            w, a = proxy_subsets(train.targets, PROXY_FRACTIONS, PROXY_SEED)
            how = f"proxy_subsets(fractions={PROXY_FRACTIONS}, seed={PROXY_SEED}), per class"
        side = {"part": "train", "split": how, "classes": len(train.classes)}
        halves = ("10%", "2.5%") if split_override is None else ("train", "valid")
        return SearchParts(
            train,
            w,
            train,
            a,
            {"weights": {**side, "half": halves[0]}, "arch": {**side, "half": halves[1]}},
        )
