"""Datasets: registered sources (`@register_dataset`), NB201 split files, search loaders.

Importing this package imports every dataset module, so their decorators fill the catalog.
"""

from nasrepro.datasets import cifar, digits, imagenet16, svhn, synthetic  # noqa: F401
from nasrepro.datasets.base import (
    DatasetNotFound,
    DataSource,
    ImageArrayDataset,
    SearchParts,
    SplitOutOfRange,
    TensorImageDataset,
    get_source,
    resolve_root,
)
from nasrepro.datasets.imagenet16 import ImageNet16
from nasrepro.datasets.search import (
    SearchData,
    SearchLoader,
    SearchProtocolError,
    SearchSplitLeak,
    build_search_data,
    trial_search_data,
)
from nasrepro.datasets.splits import available_splits, load_split
from nasrepro.datasets.transforms import eval_transform, train_transform

__all__ = [
    "DataSource",
    "DatasetNotFound",
    "ImageArrayDataset",
    "ImageNet16",
    "SearchData",
    "SearchLoader",
    "SearchParts",
    "SplitOutOfRange",
    "TensorImageDataset",
    "available_splits",
    "SearchProtocolError",
    "SearchSplitLeak",
    "build_search_data",
    "trial_search_data",
    "eval_transform",
    "get_source",
    "load_split",
    "resolve_root",
    "train_transform",
]
