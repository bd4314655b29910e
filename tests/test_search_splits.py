"""Search data built the way a trial builds it, for every space × dataset the suites use.

The image arrays are replaced by full-size stand-ins (one shared zero image, broadcast) whose
labels say where each item came from: train item i has label i, test item i has label
TEST + i. The split files and halves therefore run on the real dataset sizes, and the labels
reaching the loader prove which images train the weights and which steer α.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasrepro._compat import ensure_torchvision

ensure_torchvision()

from nasrepro.datasets import SearchSplitLeak, build_search_data, trial_search_data  # noqa: E402
from nasrepro.datasets.imagenet16 import ImageNet16_120  # noqa: E402
from nasrepro.plan import expand  # noqa: E402
from nasrepro.suite import load_suite  # noqa: E402

SUITES = sorted((Path(__file__).resolve().parents[1] / "suites").glob("*.yaml"))
TEST = 10_000_000
SIZES = {
    "cifar": {"train": 50_000, "test": 10_000},
    "svhn": {"train": 73_257, "test": 26_032},
    "imagenet16-120": {"train": 151_700, "test": 6_000},
}


class _Labelled:
    """FIXTURE: a full-size ImageNet16-120 stand-in (zero images, labels as for CIFAR)."""

    def __init__(self, n: int, test: bool) -> None:
        self.n, self.offset = n, TEST if test else 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        return torch.zeros(3, 16, 16), self.offset + int(i)


def _stand_in(n: int, test: bool) -> tuple[np.ndarray, np.ndarray]:
    images = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (n, 32, 32, 3))
    return images, np.arange(n, dtype=np.int64) + (TEST if test else 0)


@pytest.fixture
def full_size_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import nasrepro.datasets.cifar as cifar
    import nasrepro.datasets.svhn as svhn

    # stand-ins for the file readers: (images, labels, the files' checksums: none here)
    def fake_cifar(tv_name: str, dataset: str, root: Path, *, train: bool, download: bool):
        return (*_stand_in(SIZES["cifar"]["train" if train else "test"], not train), {})

    def fake_svhn(root: Path, *, part: str, download: bool):
        return (*_stand_in(SIZES["svhn"][part], part == "test"), {})

    def fake_in16(self, part, root=None, *, download=False, augment=False, protocol=None):
        return _Labelled(SIZES["imagenet16-120"][part], part == "test")

    monkeypatch.setattr(cifar, "load_cifar", fake_cifar)
    monkeypatch.setattr(svhn, "load_svhn", fake_svhn)
    monkeypatch.setattr(ImageNet16_120, "dataset", fake_in16)
    _imagenet_tree(tmp_path)
    return tmp_path


def _imagenet_tree(root: Path, per_class: int = 40) -> None:
    """FIXTURE: an ImageFolder tree of two classes of tiny PNGs (train and val)."""
    from PIL import Image

    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for part in ("train", "val"):
        for c in ("n01440764", "n01443537"):
            folder = root / "imagenet" / part / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                img.save(folder / f"{c}_{i}.png")


# Searches that steer α with test images on purpose: NAS-Bench-201's own protocol on CIFAR-100
# and ImageNet16-120 (α on the test set's xvalid half), named in the suite (`data_protocol:
# nb201`). Only GAEA's own NB201 protocol (its README: bilevel searched on each dataset) does.
NAMED_TEST_ALPHA = {
    "ex_ss_darts/nb201-gaea-bilevel-nozero-c100",
    "ex_ss_darts/nb201-gaea-bilevel-nozero-in16",
}
TEST_ALPHA: dict[str, dict[str, Any]] = {}


def _suite_configs() -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """(space, dataset) -> [(suite/experiment, full-budget config)] over all suites, less
    the searches that name a protocol steering α with test images (TEST_ALPHA)."""
    out: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for path in SUITES:
        suite = load_suite(path)
        seen: set[str] = set()
        for t in expand(suite, path, "full", seeds=1):
            # a published cell or a search by benchmark queries reads no search data
            if t.experiment in seen or t.given_cell or t.benchmark_query:
                continue
            seen.add(t.experiment)
            if t.config["dataset"] in ("cifar100", "imagenet16-120") and (
                t.config["search"].get("data_protocol") == "nb201"
            ):
                TEST_ALPHA[f"{path.stem}/{t.experiment}"] = t.config
                continue
            key = (t.config["space"], t.config["dataset"])
            out.setdefault(key, []).append((f"{path.stem}/{t.experiment}", t.config))
    return out


def _distinct(configs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One config per combination of the settings that shape the search data."""
    seen: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    for where, c in configs:
        s = c["search"]
        key = (s.get("data_protocol"), s.get("image_size"), s.get("train_limit"), s["batch_size"])
        seen.setdefault(key, (where, c))
    return list(seen.values())


CONFIGS = _suite_configs()


def _labels(data: Any, keys: list[tuple[int, int, int, int]]) -> tuple[list[int], list[int]]:
    items = [data.loader._loader.dataset[k] for k in keys]
    return [int(i[1]) for i in items], [int(i[3]) for i in items]


def test_the_suites_search_these_space_dataset_pairs() -> None:
    # a new pair must get its expected protocol in EXPECTED below
    assert set(CONFIGS) <= set(EXPECTED), sorted(set(CONFIGS) - set(EXPECTED))


DARTS_SPACES = ("darts", "s1", "s2", "s3", "s4")
EXPECTED = {
    **{(s, d): "darts" for s in DARTS_SPACES for d in ("cifar10", "cifar100", "svhn")},
    ("darts", "imagenet"): "darts",
    ("nb201", "cifar10"): "nb201",
    # NB201's own protocol here steers α with test images: a search must name its protocol
    ("nb201", "cifar100"): "nb201",
    ("nb201", "imagenet16-120"): "nb201",
}


@pytest.mark.parametrize("pair", sorted(CONFIGS), ids=lambda p: f"{p[0]}-{p[1]}")
def test_trial_search_data_keeps_test_images_out(pair: tuple[str, str], full_size_data: Path):
    space, dataset = pair
    for where, config in _distinct(CONFIGS[pair]):
        data = trial_search_data(config, root=str(full_size_data), seed=0)
        split = data.split
        # a protocol the experiment names (DrNAS' and β-DARTS' NB201 scripts split like DARTS;
        # GAEA-ERM reads the whole training set) wins over the space's own
        assert split["protocol"] == (config["search"].get("data_protocol") or EXPECTED[pair]), where
        assert split["test_images_reach"] == [], where
        assert split["weights"]["part"] == split["arch"]["part"] == "train", where
        keys = data.loader.sampler.keys(0)
        w_idx = {k[0] for k in keys}
        a_idx = set(data.loader.sampler.arch_indices.tolist())
        n = SIZES[dataset if dataset in SIZES else "cifar"]["train"]
        if split["protocol"].endswith("single-level"):  # single level: both sides all of train
            assert w_idx == a_idx == set(range(n)), where
            continue
        assert not w_idx & a_idx, where
        if dataset == "imagenet":
            continue  # the proxy subsets: per-class 10% / 2.5% of train (test_retrain)
        if split["protocol"] == "darts":
            # quark0/darts, RobustDARTS, DARTS-, darts-pt: indices[:n//2] / indices[n//2:]
            assert w_idx == set(range(n // 2)) and a_idx == set(range(n // 2, n)), where
        else:  # AutoDL's cifar-split.txt: 25k/25k of the training set
            assert len(w_idx) == len(a_idx) == 25_000, where
        y_w, y_a = _labels(data, keys[:8])
        assert all(y < TEST for y in y_w + y_a), where  # no test image reaches the loader
        assert [k[0] for k in keys[:8]] == y_w and [k[1] for k in keys[:8]] == y_a


def test_cifar100_in_darts_spaces_uses_training_halves(full_size_data: Path) -> None:
    # The defect this guards against: the DARTS-type spaces read NB201's CIFAR-100 protocol
    # (weights on all 50k training images, α on the test set's xvalid half).
    (where, config), *_ = CONFIGS[("s3", "cifar100")]
    data = trial_search_data(config, root=str(full_size_data), seed=0)
    assert data.split["weights"]["size"] == data.split["arch"]["size"] == 25_000
    assert data.split["protocol_from"] == "space s3"


def test_test_split_needs_the_suite_to_name_it(full_size_data: Path) -> None:
    root = str(full_size_data)
    with pytest.raises(SearchSplitLeak, match="search.data_protocol: nb201"):
        build_search_data("cifar100", root=root, batch_size=8, seed=0, space="nb201")
    with pytest.raises(SearchSplitLeak, match="test images"):
        build_search_data("cifar100", root=root, batch_size=8, seed=0)
    # named: NAS-Bench-201's own protocol, weights on all of train, α on the xvalid half
    data = build_search_data(
        "cifar100", root=root, batch_size=8, seed=0, space="nb201", protocol="nb201"
    )
    assert data.split["test_images_reach"] == ["arch"]
    assert data.split["protocol_from"] == "named by the suite"
    assert data.split["weights"]["size"] == 50_000 and data.split["arch"]["size"] == 5_000
    _, y_a = _labels(data, data.loader.sampler.keys(0)[:8])
    assert all(y >= TEST for y in y_a)
    # the same through a trial config that names it
    (_, config), *_ = CONFIGS[("nb201", "cifar10")]
    named = {**config, "dataset": "cifar100", "search": {**config["search"]}}
    named["search"]["data_protocol"] = "nb201"
    assert trial_search_data(named, root=root, seed=0).split["test_images_reach"] == ["arch"]
    named["search"]["data_protocol"] = None
    with pytest.raises(SearchSplitLeak):
        trial_search_data(named, root=root, seed=0)


def test_runner_preflight_names_the_file_and_field(full_size_data: Path) -> None:
    from nasrepro.plan import Trial
    from nasrepro.runner import preflight
    from nasrepro.suite import SuiteError

    (_, config), *_ = CONFIGS[("nb201", "cifar10")]

    def trial(**search: Any) -> Trial:
        cfg = {**config, "dataset": "cifar100", "search": {**config["search"], **search}}
        return Trial("s", 1, "suites/x.yaml", "h", "nb201-c100", "full", "", 0, (), cfg)

    field = "experiments.nb201-c100.search.data_protocol"
    with pytest.raises(SuiteError, match=f"suites/x.yaml: {field}: .*test images") as err:
        preflight([trial()], str(full_size_data))
    assert "\n" not in str(err.value)
    with pytest.raises(SuiteError, match=f"{field}: cifar100 has no search protocol 'xvalid'"):
        preflight([trial(data_protocol="xvalid")], str(full_size_data))
    preflight([trial(data_protocol="nb201")], str(full_size_data))  # named: accepted


def test_only_named_searches_steer_alpha_with_test_images(full_size_data: Path) -> None:
    """The suites' searches whose α reads test images are exactly the named ones, each naming
    NB201's protocol; on their data the weights see all of train and α only the xvalid half."""
    assert set(TEST_ALPHA) == NAMED_TEST_ALPHA
    for where, config in sorted(TEST_ALPHA.items()):
        data = trial_search_data(config, root=str(full_size_data), seed=0)
        assert data.split["test_images_reach"] == ["arch"], where
        assert data.split["protocol_from"] == "named by the suite", where
        n = SIZES["imagenet16-120" if "in16" in where else "cifar"]["train"]
        assert data.split["weights"]["size"] == n, where
        _, y_a = _labels(data, data.loader.sampler.keys(0)[:8])
        assert all(y >= TEST for y in y_a), where
