"""A tiny seeded random image dataset for unit tests and smoke runs.

Each class has a fixed random template; an image is its class template plus Gaussian noise,
so a small network can learn the labels within a few steps. The first half of a fixed
permutation is search-train (weights), the second half search-valid (α); `test` is a further
`n // 4` images drawn from the same templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from nasrepro.catalog import Float, Int
from nasrepro.datasets.base import DataSource, SearchParts, TensorImageDataset, register


@register(
    "synthetic",
    args={
        "n": Int(1),
        "num_classes": Int(2),
        "in_channels": Int(1),
        "noise": Float(0),
        "data_seed": Int(0),
    },
)
class Synthetic(DataSource):
    """Seeded random class templates plus noise (tests only): n, num_classes, size, channels."""

    protocols = ("holdout",)
    needs_root = False
    num_classes = 4  # class default; instances may set their own

    def __init__(
        self,
        image_size: int | None = None,
        *,
        n: int = 256,
        num_classes: int = 4,
        in_channels: int = 3,
        noise: float = 0.5,
        data_seed: int = 0,
    ) -> None:
        if n < 2 or num_classes < 1:
            raise ValueError(
                f"synthetic needs n >= 2 and num_classes >= 1 (got {n}, {num_classes})"
            )
        self.image_size = image_size or 8
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.n = n
        gen = torch.Generator().manual_seed(data_seed)
        shape = (in_channels, self.image_size, self.image_size)
        self.templates = torch.randn((num_classes, *shape), generator=gen)

        def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.arange(count) % num_classes
            y = y[torch.randperm(count, generator=gen)]
            x = self.templates[y] + noise * torch.randn((count, *shape), generator=gen)
            return x, y

        self.images, self.targets = draw(n)
        self.test_images, self.test_targets = draw(max(n // 4, 1))
        self.perm = torch.randperm(n, generator=gen).tolist()

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
        if part == "train":
            return TensorImageDataset(self.images, self.targets)
        if part == "test":
            return TensorImageDataset(self.test_images, self.test_targets)
        raise ValueError(f"synthetic has parts 'train' and 'test', not {part!r}")

    def search_parts(
        self,
        root: Path | None = None,
        *,
        download: bool = False,
        protocol: str | None = None,
        split_override: Mapping[str, Sequence[int]] | None = None,
    ) -> SearchParts:
        self.check_protocol(protocol)
        if split_override is not None:
            w, a, source = list(split_override["train"]), list(split_override["valid"]), "override"
        else:
            half = self.n // 2
            w, a, source = self.perm[:half], self.perm[half:], "permutation halves"
        data = self.dataset("train")
        return SearchParts(
            data,
            w,
            data,
            a,
            {
                "weights": {"part": "train", "split": source, "half": "first"},
                "arch": {"part": "train", "split": source, "half": "second"},
            },
        )
