"""Data files that allocate instead of running code, and torch's refusal in one line.

In fixture mode (NASREPRO_FIXTURE_DATA=1, set for the tests) a CIFAR batch's MD5 is not
checked, so the restricted unpickler is the only guard: a few bytes naming
`numpy.ndarray(shape)` allocated 850 MB (the issue's batch: 89 bytes). The dataset files here are FIXTURES.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasrepro.datafiles import ENV_FIXTURE_DATA
from nasrepro.evaluate.nb201 import Nb201ApiEvaluator, Nb201FileError
from nasrepro.safe_pickle import UnsafePickleError, load_pickle, loads, torch_load_safe
from tests.hardening_checks import one_line

N = 106_250_000  # float64 elements: 850 MB


def _int4(n: int) -> bytes:
    return b"J" + n.to_bytes(4, "little", signed=True)


def _ndarray_batch() -> bytes:
    """{'data': numpy.ndarray((N,)), 'labels': []}: a CIFAR batch of 63 bytes."""
    return (
        b"\x80\x02}q\x00(X\x04\x00\x00\x00dataq\x01cnumpy\nndarray\nq\x02"
        + _int4(N)
        + b"\x85q\x03Rq\x04X\x06\x00\x00\x00labelsq\x05]q\x06u."
    )


def _reconstruct_bomb() -> bytes:
    """numpy's own reducer asked for N elements instead of the usual empty (0,)."""
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _int4(N)
        + b"\x85C\x01b\x87R."
    )


def _frombuffer_bomb() -> bytes:
    """numpy's protocol-5 reducer handed a size where the pickled bytes go: bytes(N)."""
    return (
        b"\x80\x02cnumpy._core.numeric\n_frombuffer\n("
        + _int4(8 * N)
        + b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x85R"
        + _int4(N)
        + b"\x85X\x01\x00\x00\x00CtR."
    )


def test_the_batch_is_what_the_issue_describes() -> None:
    batch = _ndarray_batch()
    assert len(batch) < 100
    pickletools.dis(batch, out=open(os.devnull, "w"))  # a well-formed pickle
    for bomb in (_reconstruct_bomb(), _frombuffer_bomb()):
        pickletools.dis(bomb, out=open(os.devnull, "w"))


@pytest.mark.parametrize("bomb", [_ndarray_batch, _reconstruct_bomb, _frombuffer_bomb])
def test_arrays_larger_than_their_file_are_refused(bomb: Any) -> None:
    with pytest.raises(UnsafePickleError) as err:
        loads(bomb())
    assert "allocate" in one_line(str(err.value))


def test_fixture_cifar_batch_that_allocates_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasrepro.datasets.cifar import load_cifar

    monkeypatch.setenv(ENV_FIXTURE_DATA, "1")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "labels": [0, 1]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "data_batch_2").write_bytes(_ndarray_batch())
    with pytest.raises(UnsafePickleError) as err:
        load_cifar("CIFAR10", "cifar10", tmp_path, train=True, download=False)
    message = one_line(str(err.value))
    assert message.startswith(f"{folder / 'data_batch_2'}: ")
    assert f"would allocate {8 * N:,} bytes" in message


def test_real_arrays_still_load(tmp_path: Path) -> None:
    """numpy's own pickles (protocols 2 and 5) stay within the cap: their arrays are filled
    from the file's bytes."""
    data = np.arange(300_000, dtype=np.float64).reshape(1000, 300)
    for protocol in (2, 5):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps({"data": data}, protocol=protocol))
        assert np.array_equal(load_pickle(path)["data"], data)


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def test_forged_pth_names_the_refused_global(tmp_path: Path) -> None:
    """torch's refusal began with its boilerplate about PyTorch 2.6 defaults; the line now
    names the global the file asked for."""
    forged = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save({"meta_archs": [_Payload()]}, forged, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafePickleError) as err:
        torch_load_safe(forged)
    message = one_line(str(err.value))
    assert message.startswith(f"{forged}: refuses to load global posix.system")
    assert "PyTorch 2.6" not in message and "Weights only load failed" not in message
    pin = hashlib.sha256(forged.read_bytes()).hexdigest()  # past the release check
    with pytest.raises(Nb201FileError) as err2:
        Nb201ApiEvaluator(path=str(forged), sha256=pin)
    assert "refuses to load global posix.system" in one_line(str(err2.value))


class _ReconstructBomb:
    """Pickles as numpy's own `_reconstruct(ndarray, (N,), 'b')`: 106 MB from a tiny file."""

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (N,), "b"))


def test_pth_arrays_are_capped_and_numpy1_names_load(tmp_path: Path) -> None:
    """The `.pth` loader (torch's weights_only unpickler) gets the same cap; it also reads
    numpy's reconstructors under numpy 1's module names, as the released files have them."""
    bomb = tmp_path / "bomb.pth"
    torch.save({"a": _ReconstructBomb()}, bomb, _use_new_zipfile_serialization=False)
    assert bomb.stat().st_size < 2000
    with pytest.raises(UnsafePickleError) as err:
        torch_load_safe(bomb)
    assert f"would allocate {N:,} bytes" in one_line(str(err.value))
    legacy = tmp_path / "numpy1.pth"
    data = {"a": np.arange(10.0), "s": np.float64(3.5)}
    torch.save(data, legacy, _use_new_zipfile_serialization=False)
    raw = legacy.read_bytes()
    assert b"numpy._core.multiarray" in raw
    legacy.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    loaded = torch_load_safe(legacy)
    assert np.array_equal(loaded["a"], data["a"]) and loaded["s"] == 3.5
