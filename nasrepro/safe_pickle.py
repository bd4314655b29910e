"""Unpickling data files without running code from them.

NAS-Bench-201 / NATS-Bench files, CIFAR's python batches and ImageNet16's batches are
pickles, and `pickle.load` calls whatever callable the file names: a forged file runs its
payload however its hash was checked. These loaders resolve only an allow-list of globals:
the plain containers these formats hold, `collections.OrderedDict`, and numpy's array and
scalar reconstructors for numeric (never object) dtypes. Anything else is refused with
`UnsafePickleError`, before it is called.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import codecs
import collections
import functools
import io
import math
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


class UnsafePickleError(ValueError):
    """A data file is not a plain-data pickle (it names a forbidden global) or is corrupt."""


def _numeric_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:  # an object array would unpickle its items as arbitrary objects
        raise UnsafePickleError("object arrays are not allowed in a data file")
    return dtype


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # protocol-2 pickles written by Python 3 carry bytes as _codecs.encode(str, "latin1");
    # other codecs (zlib, rot13 ...) have no place in a data file
    if codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise UnsafePickleError(f"codec {encoding!r} is not allowed in a data file")
    return codecs.encode(text, encoding, errors)


# Bytes of arrays a file may create without filling them from its own bytes, per load:
# at most the file's size, and 1 MiB for a small one. numpy's reducers build an empty
# array and fill it from the pickled bytes, so an honest file needs none of this; a 63-byte
# file naming `numpy.ndarray((106250000,))` allocated 850 MB. (In fixture mode a dataset
# file's MD5 is not checked: this unpickler is then the only guard.)
MIN_UNFILLED_BYTES = 1 << 20


class _Allocations:
    """What one load has allocated for unfilled arrays, against its budget."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0

    def charge(self, shape: Any, dtype: np.dtype) -> None:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(type(d) is int and d >= 0 for d in dims):
            raise UnsafePickleError(f"array shape {shape!r} is not a tuple of sizes")
        nbytes = math.prod(dims) * dtype.itemsize
        self.used += nbytes
        if self.used > self.budget:
            raise UnsafePickleError(
                f"an array of shape {dims} and dtype {dtype} would allocate {nbytes:,} bytes "
                f"the file does not hold (at most {self.budget:,} here): not a data file"
            )


class _ArrayType:
    """`numpy.ndarray` as a data file sees it: the class `_reconstruct` names, and a
    constructor whose unfilled memory is charged to the load."""

    def __init__(self, allocations: _Allocations) -> None:
        self.allocations = allocations

    def __call__(self, shape: Any, dtype: Any = float, buffer: Any = None, *args: Any) -> Any:
        dtype = _numeric_dtype(dtype)
        if buffer is None:
            self.allocations.charge(shape, dtype)
        elif not isinstance(buffer, bytes | bytearray):
            raise UnsafePickleError("an array's buffer in a data file must be its bytes")
        return np.ndarray(shape, dtype, buffer, *args)


def _reconstruct(
    allocations: _Allocations, subtype: Any, shape: Any, dtype: Any
) -> np.ndarray:
    if subtype is not np.ndarray and not isinstance(subtype, _ArrayType):
        raise UnsafePickleError(f"array subclass {subtype!r} is not allowed in a data file")
    dtype = _numeric_dtype(dtype)
    allocations.charge(shape, dtype)
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype: np.dtype, *args: Any) -> Any:
    from numpy._core.multiarray import scalar  # type: ignore[attr-defined]

    return scalar(_numeric_dtype(dtype), *args)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    # numpy's protocol-5 reducer: an array over the pickled bytes (copied: they are ours);
    # anything but bytes would be a size (`bytes(10**9)` allocates a gigabyte)
    if not isinstance(buf, bytes | bytearray | memoryview | pickle.PickleBuffer):
        raise UnsafePickleError(
            f"_frombuffer needs the pickled bytes, not {type(buf).__name__} (a size would "
            "allocate that many bytes the file does not hold)"
        )
    array = np.frombuffer(bytes(buf), dtype=_numeric_dtype(dtype))
    return array.reshape(shape, order=order).copy(order=order)  # type: ignore[arg-type]


def _sized(kind: type) -> Callable[..., Any]:
    # bytes(n) / bytearray(n) would allocate n zero bytes: a memory bomb, not data
    def make(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise UnsafePickleError(f"{kind.__name__}(<size>) is not allowed in a data file")
        return kind(*args)

    return make


_BUILTINS = {
    name: getattr(__import__("builtins"), name)
    for name in (
        "dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "complex",
        "bool", "slice",
    )
}  # fmt: skip
ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    **{("builtins", name): obj for name, obj in _BUILTINS.items()},
    ("builtins", "bytes"): _sized(bytes),
    ("builtins", "bytearray"): _sized(bytearray),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,  # as _ArrayType, charged to the load
    ("numpy", "dtype"): _numeric_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # charged to the load
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` resolves only `ALLOWED` globals, and whose
    arrays allocate at most `unfilled_budget` bytes beyond what the file holds."""

    def __init__(
        self, fh: IO[bytes], *, encoding: str, unfilled_budget: int = MIN_UNFILLED_BYTES
    ) -> None:
        super().__init__(fh, encoding=encoding)
        self.allocations = _Allocations(unfilled_budget)
        self.array_type = _ArrayType(self.allocations)

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__.set) mapped as pickle's own fix_imports does; no
        # Python 3 module name is a key of these tables
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(_refused_global(f"{module}.{name}"))
        if found is np.ndarray:
            return self.array_type
        if found is _reconstruct:
            return functools.partial(_reconstruct, self.allocations)
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent references are not allowed in a data file")


def _refused_global(name: str) -> str:
    return (
        f"refuses to load global {name}: a data file holds only plain containers and "
        "numeric arrays (it may be forged)"
    )


def _load(fh: IO[bytes], encoding: str, size: int) -> Any:
    budget = max(MIN_UNFILLED_BYTES, size)
    return RestrictedUnpickler(fh, encoding=encoding, unfilled_budget=budget).load()


def load_pickle(path: str | Path, *, encoding: str = "latin1", bz2_compressed: bool = False) -> Any:
    """The plain data a pickle file holds; UnsafePickleError (one line, naming the file) if
    it names any other global or cannot be read as a pickle at all.

    latin1: CIFAR's and ImageNet16's batches were written by Python 2 (numpy arrays as
    byte strings); it is also how torchvision and AutoDL read them.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            fh: IO[bytes] = bz2.BZ2File(raw) if bz2_compressed else raw  # type: ignore[assignment]
            return _load(fh, encoding, os.fstat(raw.fileno()).st_size)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise UnsafePickleError(f"{path}: not a readable data file ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001  (truncated/garbage bytes raise many kinds)
        raise UnsafePickleError(f"{path}: not a pickle data file ({_first_line(exc)})") from None


def loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """`load_pickle` for bytes in memory (tests, archives read elsewhere)."""
    return _load(io.BytesIO(data), encoding, len(data))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else type(exc).__name__) or type(exc).__name__


# numpy globals torch's weights_only unpickler needs for NAS-Bench-201's arrays and numpy
# scalars, under numpy 1's module names (the released files) and numpy 2's; the array
# reconstructors charged to the load as in RestrictedUnpickler
def _torch_numpy_globals(allocations: _Allocations) -> list[Any]:
    from numpy._core.multiarray import scalar as np_scalar  # type: ignore[attr-defined]

    capped = functools.partial(_reconstruct, allocations)
    dtype_classes = [
        type(np.dtype(code)) for code in ("b", "B", "h", "H", "i", "I", "l", "L", "q", "Q",
                                          "e", "f", "d", "g", "?")
    ]  # fmt: skip
    modules = ("numpy.core.multiarray", "numpy._core.multiarray")
    named = [(capped, f"{m}._reconstruct") for m in modules]
    named += [(np_scalar, f"{m}.scalar") for m in modules]
    return [
        *named,
        (_ArrayType(allocations), "numpy.ndarray"),
        (np.ndarray, "nasrepro.safe_pickle.ndarray"),  # torch fills (BUILDs) allowed types only
        np.dtype,
        *dtype_classes,
    ]


def torch_load_safe(path: str | Path) -> Any:
    """`torch.load(weights_only=True)` with numpy's numeric reconstructors allowed
    explicitly (arrays capped like load_pickle's); UnsafePickleError (one line, naming the
    file) for anything else."""
    import torch

    path = Path(path)
    try:
        allocations = _Allocations(max(MIN_UNFILLED_BYTES, path.stat().st_size))
        with torch.serialization.safe_globals(_torch_numpy_globals(allocations)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except UnsafePickleError as exc:  # our reconstructors' refusals pass through torch
        raise UnsafePickleError(f"{path}: {exc}") from None
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"{path}: {_torch_refusal(str(exc))}") from None
    except Exception as exc:  # noqa: BLE001  (truncated/garbage bytes raise many kinds)
        raise UnsafePickleError(f"{path}: not a torch data file ({_first_line(exc)})") from None


# torch's weights_only refusal opens with paragraphs about its defaults; the global the
# file asked for comes after them ("Unsupported global: GLOBAL posix.system ...", "Trying
# to load unsupported GLOBAL posix.system whose module ...").
_TORCH_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")
_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file")


def _torch_refusal(text: str) -> str:
    """One line for torch's weights_only refusal: the refused global when it names one,
    else its first line that is not boilerplate."""
    found = _TORCH_GLOBAL.search(text)
    if found:
        return _refused_global(f"{found.group(1)} (torch's weights_only loader)")
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    specific = [s for s in lines if not s.startswith(_TORCH_BOILERPLATE)]
    reason = (specific or lines or ["no reason given"])[0][:200]
    return (
        f"refused by torch's weights_only loader ({reason}); a data file holds only plain "
        "containers and numeric arrays (it may be forged)"
    )
