"""Search-time augmentations of the reference implementations.

`nb201`: D-X-Y/AutoDL-Projects xautodl/datasets/get_dataset_with_transform.py
(`get_datasets`): RandomHorizontalFlip, RandomCrop(32, padding=4) (16 / padding 2 for
ImageNet16), ToTensor, Normalize with the per-dataset means and stds below.
`darts`: the DARTS-space scripts (quark0/darts cnn/utils.py `_data_transforms_cifar10`,
automl/RobustDARTS src/utils.py `_data_transforms_cifar100` / `_data_transforms_svhn`):
RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from nasrepro._compat import ensure_torchvision


class Recipe(NamedTuple):
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    padding: int
    flip_first: bool  # AutoDL flips before cropping; the DARTS scripts crop first


def _over255(*values: float) -> tuple[float, ...]:
    return tuple(v / 255 for v in values)


RECIPES: dict[tuple[str, str], Recipe] = {
    # AutoDL get_dataset_with_transform.py: mean/std per dataset, in 0..255 units.
    ("nb201", "cifar10"): Recipe(
        _over255(125.3, 123.0, 113.9), _over255(63.0, 62.1, 66.7), 32, 4, True
    ),
    ("nb201", "cifar100"): Recipe(
        _over255(129.3, 124.1, 112.4), _over255(68.2, 65.4, 70.4), 32, 4, True
    ),
    ("nb201", "imagenet16-120"): Recipe(
        _over255(122.68, 116.66, 104.01), _over255(63.22, 61.26, 65.09), 16, 2, True
    ),
    # quark0/darts cnn/utils.py CIFAR_MEAN / CIFAR_STD.
    ("darts", "cifar10"): Recipe(
        (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768), 32, 4, False
    ),
    # automl/RobustDARTS src/utils.py (also used by darts-pt, SDARTS).
    ("darts", "cifar100"): Recipe((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 32, 4, False),
    ("darts", "svhn"): Recipe((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), 32, 4, False),
}


def recipe(dataset: str, protocol: str = "nb201") -> Recipe:
    key = (protocol, dataset)
    if key not in RECIPES:
        known = ", ".join(f"{p}/{d}" for p, d in RECIPES)
        raise KeyError(f"no augmentation recipe for {protocol}/{dataset} (known: {known})")
    return RECIPES[key]


def train_transform(dataset: str, protocol: str = "nb201") -> Any:
    """Augmentation for the search (both weight and α batches) and for training."""
    ensure_torchvision()
    from torchvision import transforms as T

    r = recipe(dataset, protocol)
    flip = T.RandomHorizontalFlip()
    crop = T.RandomCrop(r.size, padding=r.padding)
    geometric = [flip, crop] if r.flip_first else [crop, flip]
    return T.Compose([*geometric, T.ToTensor(), T.Normalize(r.mean, r.std)])


def eval_transform(dataset: str, protocol: str = "nb201") -> Any:
    ensure_torchvision()
    from torchvision import transforms as T

    r = recipe(dataset, protocol)
    return T.Compose([T.ToTensor(), T.Normalize(r.mean, r.std)])


def describe_transform(transform: Any) -> str:
    """One-line description of a (composed) transform, for provenance records."""
    if transform is None:
        return "none"
    steps = getattr(transform, "transforms", [transform])
    return ", ".join(" ".join(repr(t).split()) for t in steps)
