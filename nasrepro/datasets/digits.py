"""scikit-learn's bundled handwritten digits: real images that need no download.

1797 grey 8x8 images (values 0..16) of the digits 0..9, upscaled bilinearly to
`image_size` and repeated to 3 channels so the CIFAR search spaces run on them unchanged.
A fixed permutation (seed `SPLIT_SEED`) splits them 50% search-train (weights), 25%
search-valid (α) and 25% test; `train` is search-train + search-valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasrepro._compat import ensure_torchvision
from nasrepro.datasets.base import DataSource, SearchParts, TensorImageDataset, register

SPLIT_SEED = 0  # fixed so every run and every seed sees the same three parts
DEFAULT_IMAGE_SIZE = 16


def digit_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 images as float (N, 3, image_size, image_size) in [0, 1], and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x.clamp_(0.0, 1.0).repeat(1, 3, 1, 1)
    return x, torch.from_numpy(bunch.target.astype(np.int64))


def split_indices(n: int) -> dict[str, list[int]]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n).tolist()
    n_train, n_valid = n // 2, n // 4
    return {
        "train": perm[:n_train],
        "valid": perm[n_train : n_train + n_valid],
        "test": perm[n_train + n_valid :],
    }


@register("digits")
class Digits(DataSource):
    """sklearn digits (embedded, offline): 10 classes, 3-channel, any image_size (default 16)."""

    num_classes = 10
    protocols = ("holdout",)
    needs_root = False

    def __init__(self, image_size: int | None = None) -> None:
        self.image_size = image_size or DEFAULT_IMAGE_SIZE
        self.images, self.targets = digit_images(self.image_size)
        # Normalize with the statistics of the rendered images (one grey value per channel);
        # padding for the random crop happens before it, so pads are background (0).
        self.mean = float(self.images.mean())
        self.std = float(self.images.std())

    def transform(self, augment: bool) -> Any:
        ensure_torchvision()
        from torchvision import transforms as T

        norm = T.Normalize([self.mean] * 3, [self.std] * 3)
        if not augment:
            return norm
        # No flip: mirrored digits are different (or no) digits.
        return T.Compose([T.RandomCrop(self.image_size, padding=self.image_size // 8), norm])

    def dataset(
        self,
        part: str,
        root: Path | None = None,
        *,
        download: bool = False,
        augment: bool = False,
        protocol: str | None = None,
    ) -> TensorImageDataset:
        self.check_protocol(protocol)
        split = split_indices(len(self.images))
        if part == "train":
            idx = split["train"] + split["valid"]
        elif part == "test":
            idx = split["test"]
        else:
            raise ValueError(f"digits has parts 'train' and 'test', not {part!r}")
        sel = torch.tensor(idx)
        return TensorImageDataset(self.images[sel], self.targets[sel], self.transform(augment))

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        self.check_protocol(protocol)
        split = (
            dict(split_override) if split_override is not None else split_indices(len(self.images))
        )
        source = "override" if split_override is not None else f"permutation(seed={SPLIT_SEED})"
        data = TensorImageDataset(self.images, self.targets, self.transform(augment=True))
        return SearchParts(
            data,
            list(split["train"]),
            data,
            list(split["valid"]),
            {
                "weights": {"part": "all 1797", "split": source, "half": "search-train 50%"},
                "arch": {"part": "all 1797", "split": source, "half": "search-valid 25%"},
            },
        )
