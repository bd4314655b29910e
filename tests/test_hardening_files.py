"""Forged and garbage data files: nothing in a file runs, each refusal is one line.

Every "payload" here would create a marker file if it ran; each test checks it did not.
The dataset files are FIXTURES written here (made-up pixels), never the published ones.
"""

from __future__ import annotations

import bz2
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasrepro import datafiles
from nasrepro.cli import main
from nasrepro.datafiles import ENV_FIXTURE_DATA, DataFileError, check_published
from nasrepro.evaluate import nb201
from nasrepro.evaluate.nb201 import Nb201ApiEvaluator, Nb201FileError
from nasrepro.safe_pickle import UnsafePickleError, load_pickle, loads


class Payload:
    """Unpickling this calls os.system: it creates `marker` if a loader runs it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(autouse=True)
def _cold_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb201, "_API_CACHE", {})
    monkeypatch.setattr(datafiles, "_DIGEST_CACHE", {})
    monkeypatch.delenv(nb201.ENV_FILE, raising=False)


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text, text
    assert "Traceback" not in text
    return text


# ----------------------------------------------------------------- the restricted unpickler


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_round_trips(protocol: int) -> None:
    from collections import OrderedDict

    obj = {
        "data": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "f": np.asfortranarray(np.ones((2, 3))),
        "labels": [1, 2, 3],
        "acc": np.float64(93.5),
        "od": OrderedDict(a=1),
        "set": {1, 2},
        "raw": b"\x00\xff",
    }
    got = loads(pickle.dumps(obj, protocol=protocol))
    assert got["data"].dtype == np.uint8 and (got["data"] == obj["data"]).all()
    assert (got["f"] == 1).all() and got["acc"] == 93.5 and type(got["od"]) is OrderedDict
    assert got["set"] == {1, 2} and got["raw"] == b"\x00\xff" and got["labels"] == [1, 2, 3]


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_code_is_refused_before_it_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(UnsafePickleError, match="refuses to load global posix.system"):
        loads(pickle.dumps({"data": [Payload(marker)]}, protocol=protocol))
    assert not marker.exists()


def test_object_arrays_and_other_codecs_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="object arrays"):
        loads(pickle.dumps(np.array([1, "x"], dtype=object), protocol=2))
    # _codecs.encode is allowed for latin1 bytes only (protocol-2 bytes); zlib is not data
    forged = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlibq\x00\x86R."
    with pytest.raises(UnsafePickleError, match="codec 'zlib'"):
        loads(forged)


def test_allocation_bombs_are_refused() -> None:
    # builtins.bytearray(10**12): valid pickle, 1 TB of zeros
    bomb = b"\x80\x02c__builtin__\nbytearray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85R."
    assert pickle.loads(bomb.replace(b"bytearray", b"int")) == 10**12  # the size it asks for
    with pytest.raises(UnsafePickleError, match=r"bytearray\(<size>\) is not allowed"):
        loads(bomb)
    assert loads(pickle.dumps(bytearray(b"ok"), protocol=2)) == bytearray(b"ok")
    assert loads(pickle.dumps(b"", protocol=2)) == b""


def test_garbage_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(b"\x80\x04garbage, not a pickle" * 3)
    with pytest.raises(UnsafePickleError) as err:
        load_pickle(bad)
    assert str(bad) in _one_line(str(err.value))
    bad.write_bytes(b"")
    with pytest.raises(UnsafePickleError, match="not a pickle data file"):
        load_pickle(bad)


# ------------------------------------------------------------------------ benchmark files


def forge_md5_prefix(body: bytes, prefix: str) -> bytes:
    """`body` + a suffix no reader reaches, chosen so the MD5 starts with `prefix`: what the
    issue calls forged in seconds (16**5 tries on average for a 5-hex prefix)."""
    base = hashlib.md5(body, usedforsecurity=False)
    for counter in range(1 << 28):
        suffix = counter.to_bytes(4, "little")
        h = base.copy()
        h.update(suffix)
        if h.hexdigest().startswith(prefix):
            return body + suffix
    raise AssertionError("no suffix found")


@pytest.fixture(scope="module")
def forged_nats(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(file, marker): a bz2 pickle with a payload, padded until its MD5 starts like
    NATS-tss-v1_0-3ffb9 (forged once per module: about a million MD5s)."""
    folder = tmp_path_factory.mktemp("forged")
    marker = folder / "ran"
    payload = bz2.compress(pickle.dumps({"meta_archs": [Payload(marker)]}, protocol=2))
    forged = folder / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    forged.write_bytes(forge_md5_prefix(payload, "3ffb9"))
    return forged, marker


def test_forged_nats_release_runs_nothing(forged_nats: tuple[Path, Path]) -> None:
    forged, marker = forged_nats
    assert nb201.file_digest(forged).md5.startswith("3ffb9")
    with pytest.raises(Nb201FileError) as err:
        Nb201ApiEvaluator(path=str(forged))
    message = _one_line(str(err.value))
    assert str(forged) in message and "refuses to load global posix.system" in message
    assert not marker.exists()


def test_forged_pth_runs_nothing_even_when_pinned(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    forged = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save({"meta_archs": [Payload(marker)]}, forged, _use_new_zipfile_serialization=False)
    pin = hashlib.sha256(forged.read_bytes()).hexdigest()
    with pytest.raises(Nb201FileError) as err:
        Nb201ApiEvaluator(path=str(forged), sha256=pin)
    message = _one_line(str(err.value))
    assert "weights_only" in message and str(forged) in message
    assert not marker.exists()


def test_garbage_benchmark_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bench.pickle.pbz2"
    bad.write_bytes(b"BZh9 not really bzip2")
    pin = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(Nb201FileError) as err:
        Nb201ApiEvaluator(path=str(bad), sha256=pin)
    assert str(bad) in _one_line(str(err.value))
    plain = tmp_path / "plain.pickle.pbz2"  # a harmless pickle of the wrong shape
    plain.write_bytes(bz2.compress(pickle.dumps({"hello": 1})))
    pin = hashlib.sha256(plain.read_bytes()).hexdigest()
    with pytest.raises(Nb201FileError, match="not a NAS-Bench-201 benchmark"):
        Nb201ApiEvaluator(path=str(plain), sha256=pin)


def test_pin_mismatch_from_option_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bench.pickle.pbz2"
    bad.write_bytes(bz2.compress(pickle.dumps({"hello": 1})))
    with pytest.raises(Nb201FileError, match="does not match the pinned sha256 0000"):
        Nb201ApiEvaluator(path=str(bad), sha256="0" * 64)
    monkeypatch.setenv(nb201.ENV_FILE, str(bad))
    monkeypatch.setenv(nb201.ENV_SHA256, "1" * 64)
    with pytest.raises(Nb201FileError, match="does not match the pinned sha256 1111"):
        Nb201ApiEvaluator()


def test_forged_benchmark_via_cli_is_exit_2_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    forged_nats: tuple[Path, Path],
) -> None:
    from tests.test_cli import SUITE

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    forged, marker = forged_nats
    monkeypatch.setenv(nb201.ENV_FILE, str(forged))
    suite = tmp_path / "forged.yaml"
    suite.write_text(SUITE.format(order=1, evaluator="nb201-api"))
    assert main(["run", str(suite), "--budget", "smoke", "--device", "cpu"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "refuses to load global posix.system" in err
    assert not marker.exists()
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "registry").exists()


# -------------------------------------------------------------------------- dataset files


def _cifar10_batch(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "labels": [i % 10 for i in range(n)],
    }


def _write_cifar10(root: Path) -> Path:
    """FIXTURE cifar-10-batches-py (made-up pixels)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k in range(1, 6):
        (folder / f"data_batch_{k}").write_bytes(pickle.dumps(_cifar10_batch(4, k), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_cifar10_batch(6, 9), protocol=2))
    return folder


def test_forged_cifar_batch_runs_nothing(tmp_path: Path) -> None:
    from nasrepro.datasets.cifar import load_cifar

    folder = _write_cifar10(tmp_path)
    marker = tmp_path / "ran"
    (folder / "data_batch_3").write_bytes(
        pickle.dumps({"data": Payload(marker), "labels": []}, protocol=2)
    )
    with pytest.raises(UnsafePickleError) as err:
        load_cifar("CIFAR10", "cifar10", tmp_path, train=True, download=False)
    assert "data_batch_3" in _one_line(str(err.value))
    assert not marker.exists()
    (folder / "data_batch_3").write_bytes(b"garbage" * 100)
    with pytest.raises(UnsafePickleError, match="data_batch_3: not a pickle data file"):
        load_cifar("CIFAR10", "cifar10", tmp_path, train=True, download=False)


def test_dataset_checksums_refuse_unmarked_fixtures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasrepro.datasets.cifar import load_cifar

    _write_cifar10(tmp_path)
    monkeypatch.delenv(ENV_FIXTURE_DATA)
    with pytest.raises(DataFileError) as err:
        load_cifar("CIFAR10", "cifar10", tmp_path, train=True, download=False)
    message = _one_line(str(err.value))
    assert "data_batch_1" in message and "c99cafc152244af753f735de768cd75f" in message
    assert ENV_FIXTURE_DATA in message
    monkeypatch.setenv(ENV_FIXTURE_DATA, "1")
    data, labels, files = load_cifar("CIFAR10", "cifar10", tmp_path, train=True, download=False)
    assert data.shape == (20, 32, 32, 3) and len(labels) == 20
    assert files["fixture"] is True and files["checked_against"] == "torchvision MD5s"
    sha = hashlib.sha256((tmp_path / "cifar-10-batches-py" / "data_batch_2").read_bytes())
    assert files["files"]["data_batch_2"] == sha.hexdigest()


def test_published_files_pass_without_the_fixture_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself: files whose MD5 is the listed one pass and are not fixtures (the
    list here stands in for torchvision's, since the 160 MB real files cannot ship)."""
    from nasrepro.datasets import cifar

    folder = _write_cifar10(tmp_path)
    real = cifar._published("CIFAR10")

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes(), usedforsecurity=False).hexdigest()

    listed = type(
        "Listed",
        (real,),
        {
            "train_list": [[n, md5(n)] for n, _ in real.train_list],
            "test_list": [[n, md5(n)] for n, _ in real.test_list],
        },
    )
    monkeypatch.setattr(cifar, "_published", lambda tv_name: listed)
    monkeypatch.delenv(ENV_FIXTURE_DATA)
    _, _, files = cifar.load_cifar("CIFAR10", "cifar10", tmp_path, train=False, download=False)
    assert files["fixture"] is False and "fixture_files" not in files
    assert set(files["files"]) == {"test_batch"}


def test_check_published_reports_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"alpha")
    b.write_bytes(b"beta")
    good = hashlib.md5(b"alpha", usedforsecurity=False).hexdigest()
    monkeypatch.delenv(ENV_FIXTURE_DATA)
    out = check_published("toy", [(a, good), (b, None)], "toy-publisher")
    assert out == {
        "files": {
            "a": hashlib.sha256(b"alpha").hexdigest(),
            "b": hashlib.sha256(b"beta").hexdigest(),
        },
        "checked_against": "toy-publisher MD5s",
        "fixture": False,
    }
    with pytest.raises(DataFileError, match="b has MD5"):
        check_published("toy", [(a, good), (b, good)], "toy-publisher")


def test_imagenet16_forged_batch_runs_nothing(tmp_path: Path) -> None:
    from nasrepro.datasets.imagenet16 import ImageNet16

    marker = tmp_path / "ran"
    (tmp_path / "val_data").write_bytes(pickle.dumps({"data": Payload(marker)}, protocol=2))
    with pytest.raises(UnsafePickleError) as err:
        ImageNet16(tmp_path, train=False)
    assert "val_data" in _one_line(str(err.value))
    assert not marker.exists()


def test_search_record_names_the_files_it_read(tmp_path: Path) -> None:
    from nasrepro.datasets import build_search_data

    _write_cifar10(tmp_path)
    data = build_search_data(
        "cifar10",
        root=tmp_path,
        batch_size=4,
        seed=0,
        protocol="darts",
    )
    for side in ("weights", "arch"):
        files = data.split[side]["data_files"]
        assert set(files["files"]) == {f"data_batch_{k}" for k in range(1, 6)}
        assert files["fixture"] is True
