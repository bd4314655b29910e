"""NAS-Bench-201 lookups: the embedded table (real numbers) and the API backend (fixtures).

Everything under "API backend" runs on tiny benchmark FIXTURE files built here: their
accuracies are MADE UP and say nothing about NAS-Bench-201; only the table tests check real
benchmark numbers.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path
from typing import Any

import nas_201_api
import nats_bench
import pytest
import torch

from nasrepro import catalog, datafiles
from nasrepro.evaluate import nb201
from nasrepro.evaluate.nb201 import (
    LookupResult,
    Nb201ApiEvaluator,
    Nb201FileError,
    Nb201Table,
    Nb201TableEvaluator,
    UnknownArchError,
)

ALL_SKIP = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|"
    "+|skip_connect~0|skip_connect~1|skip_connect~2|"
)
BEST_C100 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
ALL_DATASETS = ["cifar10", "cifar100", "imagenet16-120"]


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    # every test sees cold caches and no benchmark path from the environment
    monkeypatch.setattr(nb201, "_TABLE_CACHE", {})
    monkeypatch.setattr(datafiles, "_DIGEST_CACHE", {})
    monkeypatch.setattr(nb201, "_API_CACHE", {})
    monkeypatch.delenv(nb201.ENV_FILE, raising=False)


# ------------------------------------------------------------------ embedded table (real data)


def test_table_size_and_known_cells() -> None:
    table = Nb201Table.load()
    assert len(table) == 15625
    assert table.arch_str(1835) == ALL_SKIP
    assert table.index_of(ALL_SKIP) == 1835
    got = [round(table.test_acc(1835, ds), 2) for ds in ALL_DATASETS]
    assert got == [54.30, 15.61, 16.32]
    assert table.arch_str(9930) == BEST_C100
    got = [round(table.test_acc(9930, ds), 2) for ds in ALL_DATASETS]
    assert got == [94.36, 73.51, 46.34]


def test_table_maxima() -> None:
    table = Nb201Table.load()
    best = {ds: max(table.test_acc(i, ds) for i in range(len(table))) for ds in ALL_DATASETS}
    assert {ds: round(v, 2) for ds, v in best.items()} == {
        "cifar10": 94.37,
        "cifar100": 73.51,
        "imagenet16-120": 47.31,
    }


def test_table_round_trip_and_errors() -> None:
    table = Nb201Table.load()
    for i in random.Random(0).sample(range(len(table)), 200) + [0, len(table) - 1]:
        assert table.index_of(table.arch_str(i)) == i
    with pytest.raises(UnknownArchError, match="not a cell of NAS-Bench-201") as err:
        table.index_of("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert isinstance(err.value, KeyError)
    with pytest.raises(IndexError, match="out of range"):
        table.arch_str(15625)
    with pytest.raises(ValueError, match="unknown NB201 dataset"):
        table.test_acc(0, "ImageNet16-120")
    assert Nb201Table.load() is table  # cached


def test_table_evaluator_omits_valid_acc() -> None:
    assert catalog._REGISTRIES["evaluator"]["nb201-table"] is Nb201TableEvaluator
    ev = Nb201TableEvaluator()
    res = ev.score(ALL_SKIP, ALL_DATASETS, ["test_acc", "valid_acc"])
    assert isinstance(res, LookupResult)
    assert res.arch_index == 1835 and res.arch_str == ALL_SKIP
    assert round(res.metrics["cifar100"]["test_acc"], 2) == 15.61
    for ds in ALL_DATASETS:
        assert set(res.metrics[ds]) == {"test_acc"}
    src = res.source
    assert src["unavailable"] == ["valid_acc"]
    assert src["backend"] == "nb201-table" and src["sha256"] == nb201.TABLE_SHA256
    assert src["hp"] == "200" and src["is_random"] is False and src["fixture"] is False
    assert src["dataset_keys"]["cifar10"] == {"test_acc": "CIFAR10TestAccuracy200Epochs"}
    with pytest.raises(ValueError, match="takes no options"):
        Nb201TableEvaluator(path="x")
    with pytest.raises(ValueError, match="unknown NB201 metric"):
        ev.score(ALL_SKIP, ["cifar10"], ["test_err"])


def test_corrupted_table_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "nats_tss_test_acc_hp200.csv"
    text = nb201.TABLE_FILE.read_text()
    bad.write_text(text.replace("54.29666666666666", "64.29666666666666", 1))
    monkeypatch.setattr(nb201, "TABLE_FILE", bad)
    with pytest.raises(Nb201FileError, match="fails its checksum") as err:
        Nb201Table.load()
    assert str(bad) in str(err.value)


# ------------------------------------------------------------------ API backend (FIXTURES)

# FIXTURE: three real cell strings; every accuracy below is made up.
FIXTURE_ARCHS = [
    ALL_SKIP,
    BEST_C100,
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]
SEEDS = (777, 888)
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
_DS_BASE = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}
_SET_OFFSET = {"train": 5.0, "x-valid": 0.25, "x-test": 0.5, "ori-test": 0.75}


def fixture_acc(arch: int, dataset: str, setname: str, seed: int, hp: str, epoch: int) -> float:
    """FIXTURE accuracy (made up): distinct per arch/dataset/set, seed 888 is +1.5 over 777,
    hp '12' is 40 lower, and only the last epoch has the final value."""
    epochs = 200 if hp == "200" else 12
    final = _DS_BASE[dataset] + 2.0 * arch + _SET_OFFSET[setname] + 1.5 * (seed == 888)
    final -= 40.0 if hp == "12" else 0.0
    return final if epoch == epochs - 1 else final * (epoch + 1) / epochs / 2


def fixture_mean(arch: int, dataset: str, setname: str) -> float:
    """The hp=200, last-epoch mean over the fixture's two seeds."""
    return sum(fixture_acc(arch, dataset, setname, s, "200", 199) for s in SEEDS) / len(SEEDS)


def _arch_results(mod: Any, arch: int, hp: str) -> dict[str, Any]:
    """One ArchResults state built through the API's own classes (`mod` is the package)."""
    epochs = 200 if hp == "200" else 12
    results = mod.ArchResults(arch, FIXTURE_ARCHS[arch])
    for dataset, sets in EVAL_SETS.items():
        for seed in SEEDS:
            config = {"name": "infer.tiny", "C": 16, "N": 5, "arch_str": FIXTURE_ARCHS[arch]}
            r = mod.ResultsCount(dataset, None, None, None, 1.0, 10.0, config, seed, epochs, None)
            r.update_train_info(
                {e: fixture_acc(arch, dataset, "train", seed, hp, e) for e in range(epochs)},
                {e: 99.0 for e in range(epochs)},
                {e: 0.1 for e in range(epochs)},
                {e: 1.0 for e in range(epochs)},
            )
            accs, losses, times = {}, {}, {}
            for setname in sets:
                for e in range(epochs):
                    accs[f"{setname}@{e}"] = fixture_acc(arch, dataset, setname, seed, hp, e)
                    losses[f"{setname}@{e}"] = 0.5
                    times[f"{setname}@{e}"] = 0.1
            r.update_eval(accs, losses, times)
            results.update(dataset, seed, r)
    return results.state_dict()


@pytest.fixture(scope="module")
def nb201_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FIXTURE NAS-Bench-201-style .pth (made-up numbers), as NASBench201API loads it."""
    data = {
        "meta_archs": list(FIXTURE_ARCHS),
        "evaluated_indexes": list(range(len(FIXTURE_ARCHS))),
        "arch2infos": {
            i: {
                "less": _arch_results(nas_201_api, i, "12"),
                "full": _arch_results(nas_201_api, i, "200"),
            }
            for i in range(len(FIXTURE_ARCHS))
        },
    }
    path = tmp_path_factory.mktemp("nb201") / "fixture-nb201.pth"
    torch.save(data, path)
    return path


def _nats_hp2infos(i: int) -> dict[str, Any]:
    return {"12": _arch_results(nats_bench, i, "12"), "200": _arch_results(nats_bench, i, "200")}


@pytest.fixture(scope="module")
def nats_pickle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FIXTURE NATS-Bench tss single pickle (made-up numbers), as nats_bench.create loads it."""
    data = {
        "meta_archs": list(FIXTURE_ARCHS),
        "evaluated_indexes": list(range(len(FIXTURE_ARCHS))),
        "arch2infos": {i: _nats_hp2infos(i) for i in range(len(FIXTURE_ARCHS))},
    }
    stem = tmp_path_factory.mktemp("nats") / "fixture-tss.pickle"
    nats_bench.pickle_save(data, str(stem))  # writes fixture-tss.pickle.pbz2
    return Path(f"{stem}.pbz2")


@pytest.fixture(scope="module")
def nats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FIXTURE NATS-Bench tss archive directory (meta + one file per arch; made-up numbers)."""
    root = tmp_path_factory.mktemp("natsdir") / "fixture-tss-simple"
    root.mkdir()
    nats_bench.pickle_save({"meta_archs": list(FIXTURE_ARCHS)}, str(root / "meta.pickle"))
    for i in range(len(FIXTURE_ARCHS)):
        nats_bench.pickle_save(_nats_hp2infos(i), str(root / f"{i:06d}.pickle"))
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_fixture_values(res: LookupResult, arch: int) -> None:
    # FIXTURE numbers: hp=200, last epoch, mean over the two seeds, with the dataset keys
    # docs/fidelity.md prescribes (cifar10 valid from cifar10-valid, test from cifar10 ori-test).
    expect = {
        "cifar10": {
            "test_acc": fixture_mean(arch, "cifar10", "ori-test"),
            "valid_acc": fixture_mean(arch, "cifar10-valid", "x-valid"),
        },
        "cifar100": {
            "test_acc": fixture_mean(arch, "cifar100", "x-test"),
            "valid_acc": fixture_mean(arch, "cifar100", "x-valid"),
        },
        "imagenet16-120": {
            "test_acc": fixture_mean(arch, "ImageNet16-120", "x-test"),
            "valid_acc": fixture_mean(arch, "ImageNet16-120", "x-valid"),
        },
    }
    assert res.metrics.keys() == expect.keys()
    for ds, values in expect.items():
        assert res.metrics[ds] == pytest.approx(values), ds
    assert res.arch_index == arch and res.arch_str == FIXTURE_ARCHS[arch]


def test_api_pth_fixture_with_pin(nb201_pth: Path) -> None:
    assert catalog._REGISTRIES["evaluator"]["nb201-api"] is Nb201ApiEvaluator
    pin = _sha256(nb201_pth)
    ev = Nb201ApiEvaluator(path=str(nb201_pth), sha256=pin)
    res = ev.score(BEST_C100, ALL_DATASETS, ["test_acc", "valid_acc"])
    _check_fixture_values(res, 1)
    assert res.metrics["cifar10"]["test_acc"] == pytest.approx(85.0 + 2.0 + 0.75 + 0.75)  # FIXTURE
    src = res.source
    assert src["backend"] == "nb201-api" and src["sha256"] == pin
    assert src["hp"] == "200" and src["is_random"] is False
    assert src["api_class"] == "nas_201_api.api_201.NASBench201API"
    assert src["verified_by"] == "sha256-pin" and src["fixture"] is True
    assert src["dataset_keys"]["cifar10"] == {"test_acc": "cifar10", "valid_acc": "cifar10-valid"}
    assert src["dataset_keys"]["imagenet16-120"]["valid_acc"] == "ImageNet16-120"
    with pytest.raises(UnknownArchError):
        ev.score("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["cifar10"], ["test_acc"])


@pytest.mark.parametrize("which", ["pickle", "dir"])
def test_api_nats_fixtures_with_pin(which: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue("nats_pickle" if which == "pickle" else "nats_dir")
    pin = nb201.file_digest(path).sha256
    ev = Nb201ApiEvaluator(path=str(path), sha256=pin)
    for arch in range(len(FIXTURE_ARCHS)):
        _check_fixture_values(
            ev.score(FIXTURE_ARCHS[arch], ALL_DATASETS, ["test_acc", "valid_acc"]), arch
        )
    src = ev.score(ALL_SKIP, ["cifar100"], ["valid_acc"]).source
    assert src["api_class"] == "nats_bench.api_topology.NATStopology"
    assert src["sha256"] == pin and src["hp"] == "200"


def test_api_refuses_unpinned_unknown_file(
    nb201_pth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.load called before the checksum was accepted")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(Nb201FileError, match="unknown version") as err:
        Nb201ApiEvaluator(path=str(nb201_pth))
    assert _sha256(nb201_pth) in str(err.value)  # printed so the user can pin it
    with pytest.raises(Nb201FileError, match="does not match the pinned"):
        Nb201ApiEvaluator(path=str(nb201_pth), sha256="0" * 64)


def test_api_release_name_must_match_md5(nb201_pth: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    shutil.copy(nb201_pth, renamed)
    with pytest.raises(Nb201FileError, match="unknown version.*claims MD5 prefix e61699"):
        Nb201ApiEvaluator(path=str(renamed))


def test_api_accepts_known_release_by_md5(nb201_pth: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stand-in release entry whose prefix is the FIXTURE's MD5 (a real 2-5 GB file can't ship)
    prefix = hashlib.md5(nb201_pth.read_bytes()).hexdigest()[:6]
    releases = {**nb201.KNOWN_RELEASES, f"NAS-Bench-201-vX-{prefix}.pth": prefix}
    monkeypatch.setattr(nb201, "KNOWN_RELEASES", releases)
    monkeypatch.setenv(nb201.ENV_FILE, str(nb201_pth))
    # a release holds every cell: a 3-cell file under a release's prefix is refused ...
    with pytest.raises(Nb201FileError, match="holds 3 cells, not 15625"):
        Nb201ApiEvaluator()
    monkeypatch.setattr(nb201, "N_CELLS", len(FIXTURE_ARCHS))  # ... unless releases had 3
    res = Nb201ApiEvaluator().score(ALL_SKIP, ["cifar10"], ["valid_acc"])
    assert res.source["verified_by"] == "md5-prefix"
    assert res.source["release"] == f"NAS-Bench-201-vX-{prefix}.pth"
    assert res.metrics["cifar10"]["valid_acc"] == pytest.approx(
        fixture_mean(0, "cifar10-valid", "x-valid")
    )


def test_api_missing_path_errors(tmp_path: Path) -> None:
    with pytest.raises(Nb201FileError, match="option `path`.*NASREPRO_NB201_FILE"):
        Nb201ApiEvaluator()
    with pytest.raises(Nb201FileError, match="not found.*NASREPRO_NB201_FILE"):
        Nb201ApiEvaluator(path=str(tmp_path / "NAS-Bench-201-v1_0-e61699.pth"))
    odd = tmp_path / "bench.bin"
    odd.write_bytes(b"x")
    with pytest.raises(Nb201FileError, match="unrecognised benchmark format"):
        Nb201ApiEvaluator(path=str(odd))
    with pytest.raises(ValueError, match="unknown option"):
        Nb201ApiEvaluator(path=str(odd), hp="12")


def test_file_digest_streams_and_caches(tmp_path: Path, nats_dir: Path) -> None:
    f = tmp_path / "blob.pth"
    f.write_bytes(b"a" * (datafiles._CHUNK + 123))
    d = nb201.file_digest(f)
    assert d.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert d.md5 == hashlib.md5(f.read_bytes()).hexdigest()
    assert nb201.file_digest(f) is d  # cached per (path, size, mtime)
    f.write_bytes(b"b" * 10)
    assert nb201.file_digest(f).sha256 == hashlib.sha256(b"b" * 10).hexdigest()
    # directories: a deterministic listing, changed by renaming a file
    copy = tmp_path / "copy"
    shutil.copytree(nats_dir, copy)
    assert nb201.file_digest(copy).sha256 == nb201.file_digest(nats_dir).sha256
    (copy / "000002.pickle.pbz2").rename(copy / "000003.pickle.pbz2")
    assert nb201.file_digest(copy).sha256 != nb201.file_digest(nats_dir).sha256
