"""Images held on the device and augmented there: the GPU never waits for the CPU.

For the datasets held as uint8 arrays (CIFAR-10/100, SVHN, ImageNet16-120: 50k 32×32 images
are 150 MB), the images go to the device once; every batch is then gathered, padded,
cropped, flipped, normalised (and cut out, for retraining recipes that have it) there, as a
few batched tensor operations instead of 128 PIL images per step in the main process.

Same data, same distribution as the torchvision pipeline (datasets/transforms.py):
- RandomCrop(size, padding=p): the image zero-padded by p, the crop's top-left corner
  uniform over the (2p+1)² offsets; RandomHorizontalFlip: probability ½; in the recipe's
  order (AutoDL flips first, the DARTS scripts crop first); ToTensor (÷255) then Normalize;
- Cutout(L) (quark0 cnn/utils.py, after Normalize): a centre uniform over the H×W pixels,
  the L×L square around it clipped at the border set to 0.
Given the same offsets, flip and centre, the result equals torchvision's for that image
(tests/test_device_data.py); the offsets are drawn differently (below), so the batches are
not the CPU loader's bit for bit, but they follow the same law.

Determinism: which items form a batch is the CPU loader's (`EpochKeys`: the same order, the
same α draws per seed and epoch); each item's augmentation is a pure function of the
augmentation seed that key carries (search), or of (seed, epoch, index) (retraining), hashed
with SplitMix64 into independent uniform draws. Nothing reads a global RNG, so a resumed
epoch sees the same crops, on any device.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from nasrepro.datasets.base import ImageArrayDataset
from nasrepro.datasets.transforms import Recipe, describe_transform, recipe, train_transform

__all__ = [
    "AugmentParams",
    "DeviceSearchLoader",
    "DeviceTrainLoader",
    "augment",
    "draw_params",
    "splitmix64",
]

_MASK = (1 << 64) - 1
# Stream constants: each draw of an item hashes its seed with its own odd constant, so the
# draws are independent functions of one seed.
_STREAMS = {"dy": 0x9E3779B97F4A7C15, "dx": 0xBF58476D1CE4E5B9, "flip": 0x94D049BB133111EB,
            "cy": 0xD6E8FEB86659FD93, "cx": 0xA0761D6478BD642F}  # fmt: skip


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 (Steele, Lea & Flood 2014): a bijection of
    2^64 whose outputs pass BigCrush; vectorised over an array."""
    z = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform_int(seeds: np.ndarray, stream: str, n: int) -> np.ndarray:
    """Per seed, an integer uniform on 0..n-1 (64-bit hash mod n: bias below n/2^64)."""
    h = splitmix64(seeds.astype(np.uint64) ^ np.uint64(_STREAMS[stream]))
    return (h % np.uint64(n)).astype(np.int64)


class AugmentParams:
    """Per item: crop offsets (dy, dx) in 0..2p, flip (0/1), cutout centre (cy, cx)."""

    def __init__(self, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray,
                 cy: np.ndarray, cx: np.ndarray) -> None:  # fmt: skip
        self.dy, self.dx, self.flip, self.cy, self.cx = dy, dx, flip, cy, cx

    def to(self, device: torch.device) -> dict[str, torch.Tensor]:
        stacked = torch.from_numpy(np.stack([self.dy, self.dx, self.flip, self.cy, self.cx]))
        on = stacked.to(device, non_blocking=True)
        return dict(zip(("dy", "dx", "flip", "cy", "cx"), on, strict=True))


def draw_params(seeds: np.ndarray | Sequence[int], r: Recipe) -> AugmentParams:
    """The augmentation of items with these seeds under recipe `r` (module docstring)."""
    s = np.asarray(seeds, dtype=np.int64).astype(np.uint64)
    span = 2 * r.padding + 1
    return AugmentParams(
        _uniform_int(s, "dy", span),
        _uniform_int(s, "dx", span),
        _uniform_int(s, "flip", 2),
        _uniform_int(s, "cy", r.size),
        _uniform_int(s, "cx", r.size),
    )


def augment(
    images: torch.Tensor,
    params: dict[str, torch.Tensor],
    r: Recipe,
    cutout: int = 0,
    train: bool = True,
) -> torch.Tensor:
    """uint8 images (B, H, W, C) → normalised float (B, C, H, W), augmented per `params`
    (train) or only normalised (not train), on the images' device."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)  # ToTensor
    b, c, h, w = x.shape
    mean = torch.tensor(r.mean, device=x.device).view(1, c, 1, 1)
    std = torch.tensor(r.std, device=x.device).view(1, c, 1, 1)
    if not train:
        return (x - mean) / std
    flip = params["flip"].view(b, 1, 1, 1).bool()
    if r.flip_first:  # AutoDL: flip, then pad and crop
        x = torch.where(flip, x.flip(-1), x)
    p = r.padding
    if p:
        x = torch.nn.functional.pad(x, (p, p, p, p))  # zeros, as RandomCrop's fill=0
    rows = (params["dy"].view(b, 1) + torch.arange(r.size, device=x.device)).view(b, 1, r.size, 1)
    cols = (params["dx"].view(b, 1) + torch.arange(r.size, device=x.device)).view(b, 1, 1, r.size)
    x = x.gather(2, rows.expand(b, c, r.size, x.shape[-1]))
    x = x.gather(3, cols.expand(b, c, r.size, r.size))
    if not r.flip_first:  # the DARTS scripts: crop, then flip
        x = torch.where(flip, x.flip(-1), x)
    x = (x - mean) / std
    if cutout:
        half = cutout // 2
        ys = torch.arange(r.size, device=x.device).view(1, r.size, 1)
        xs = torch.arange(r.size, device=x.device).view(1, 1, r.size)
        cy, cx = params["cy"].view(b, 1, 1), params["cx"].view(b, 1, 1)
        # quark0: rows max(0, y-half) .. min(h, y+half) (end exclusive), likewise columns
        inside = (ys >= cy - half) & (ys < cy + half) & (xs >= cx - half) & (xs < cx + half)
        x = x.masked_fill(inside.unsqueeze(1), 0.0)
    return x


def _key_of(data: ImageArrayDataset) -> str:
    files = getattr(data, "files", None)
    return json.dumps(files, sort_keys=True, default=str) if files else f"id:{id(data.data)}"


_HELD: dict[tuple[str, str], tuple[Any, torch.Tensor, torch.Tensor]] = {}


def hold(data: ImageArrayDataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's uint8 images and labels on `device`, once per file set and device
    (packed seeds and a retraining after the search share one copy)."""
    key = (_key_of(data), str(device))
    if key not in _HELD:
        images = torch.from_numpy(data.data).to(device)
        labels = torch.from_numpy(data.targets).to(device)
        _HELD[key] = (data.data, images, labels)  # the array kept: its id stays unique
    _, images, labels = _HELD[key]
    return images, labels


def release() -> None:
    """Drop every held copy (tests; a worker between trials)."""
    _HELD.clear()


def supported(data: Any, dataset: str, protocol: str, train: bool = True) -> Recipe | None:
    """The recipe, when `data` is a uint8 image array under exactly the torchvision train
    (or, `train` False, evaluation) transform of (dataset, protocol); None: the CPU loader
    stays."""
    from nasrepro.datasets.transforms import eval_transform

    if not isinstance(data, ImageArrayDataset):
        return None
    try:
        r = recipe(dataset, protocol)
    except KeyError:
        return None
    if data.data.shape[1:3] != (r.size, r.size):
        return None
    make = train_transform if train else eval_transform
    want = describe_transform(make(dataset, protocol))
    return r if describe_transform(data.transform) == want else None


class DeviceSearchLoader:
    """`SearchLoader` on the device: the same batches' items (EpochKeys of the seed), each
    augmented on the device from its key's augmentation seed. Yields device tensors."""

    def __init__(self, cpu_loader: Any, r: Recipe, device: torch.device) -> None:
        self.sampler = cpu_loader.sampler
        self._cpu = cpu_loader  # the validation passes (`arch_pass`) stay its own
        self._loader = cpu_loader._loader  # its dataset and batch size (PT reads them)
        self.batch = cpu_loader._loader.batch_size
        self.recipe = r
        self.device = device
        parts = cpu_loader._loader.dataset
        self.w_images, self.w_labels = hold(parts.weight_data, device)
        self.a_images, self.a_labels = hold(parts.arch_data, device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch)

    def arch_pass(self, epoch: int, **kw: Any) -> Any:
        """The CPU loader's pass over the α split (eval-mode scoring: infer(), sampled_best);
        the same items and keys, moved to the device by its reader."""
        return self._cpu.arch_pass(epoch, **kw)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        keys = np.asarray(self.sampler._mine(self.sampler.keys(self.epoch)), dtype=np.int64)
        self.epoch += 1
        return self._batches(keys.reshape(-1, 4))

    def _batches(self, keys: np.ndarray) -> Iterator[tuple[torch.Tensor, ...]]:
        dev, r = self.device, self.recipe
        # one transfer per epoch: indices and the augmentation of every item
        w_idx = torch.from_numpy(keys[:, 0]).to(dev, non_blocking=True)
        a_idx = torch.from_numpy(keys[:, 1]).to(dev, non_blocking=True)
        w_aug = draw_params(keys[:, 2], r).to(dev)
        a_aug = draw_params(keys[:, 3], r).to(dev)
        for start in range(0, len(keys), self.batch):
            sl = slice(start, start + self.batch)
            wi, ai = w_idx[sl], a_idx[sl]
            x_w = augment(self.w_images[wi], {k: v[sl] for k, v in w_aug.items()}, r)
            x_a = augment(self.a_images[ai], {k: v[sl] for k, v in a_aug.items()}, r)
            yield x_w, self.w_labels[wi], x_a, self.a_labels[ai]


# Retraining: one stream of augmentation seeds per (seed, epoch), indexed by image.
_RETRAIN_STREAM = 0x5851F42D4C957F2D


def retrain_seeds(seed: int, epoch: int, indices: np.ndarray) -> np.ndarray:
    """Augmentation seeds of a retraining epoch's items: a hash of (seed, epoch, index)."""
    key = splitmix64(np.array([seed], dtype=np.uint64) ^ np.uint64(_RETRAIN_STREAM))
    key = splitmix64(key ^ np.uint64(epoch))
    return splitmix64(indices.astype(np.uint64) ^ key).astype(np.int64)


class DeviceTrainLoader:
    """Retraining batches on the device: the sampler's indices (EpochShards: a function of
    seed and epoch), each image augmented from `retrain_seeds`; `train=False`: normalised
    test images in order. Yields (x, y) device tensors."""

    def __init__(
        self,
        data: ImageArrayDataset,
        r: Recipe,
        batch: int,
        sampler: Any,
        seed: int,
        device: torch.device,
        cutout: int = 0,
        train: bool = True,
    ) -> None:
        self.images, self.labels = hold(data, device)
        self.recipe, self.batch, self.sampler = r, batch, sampler
        self.seed, self.device, self.cutout, self.train = seed, device, cutout, train

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        epoch = int(getattr(self.sampler, "epoch", 0))
        idx = torch.from_numpy(order).to(self.device, non_blocking=True)
        aug = draw_params(retrain_seeds(self.seed, epoch, order), self.recipe).to(self.device)
        for start in range(0, len(order), self.batch):
            sl = slice(start, start + self.batch)
            i = idx[sl]
            x = augment(
                self.images[i], {k: v[sl] for k, v in aug.items()}, self.recipe,
                self.cutout, self.train,
            )  # fmt: skip
            yield x, self.labels[i]
