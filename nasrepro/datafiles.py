"""Which data files a result was computed from: full digests, and published checksums.

Every dataset and benchmark file a trial reads is identified in its record by its full
sha256. Dataset files are also checked against the MD5s their publishers list
(torchvision for CIFAR and SVHN, AutoDL for ImageNet16): a file that differs is refused,
unless the caller marked the data as a test fixture (env NASREPRO_FIXTURE_DATA=1), in
which case the record says `"fixture": true`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_FIXTURE_DATA = "NASREPRO_FIXTURE_DATA"
_CHUNK = 8 << 20


class DataFileError(ValueError):
    """A dataset file that is not the published one (and was not marked a fixture)."""


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    md5: str


_DIGEST_CACHE: dict[tuple[object, ...], FileDigest] = {}


def _dir_files(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            found.append((full.relative_to(root).as_posix(), full, full.stat()))
    found.sort(key=lambda item: item[0])
    return found


def file_digest(path: str | os.PathLike[str]) -> FileDigest:
    """SHA-256 and MD5 of a file, or of a directory's sorted (name, size, content) listing;
    streamed in chunks (benchmark files are 2-5 GB) and cached per (path, size, mtime)."""
    path = Path(path).resolve()
    if path.is_dir():
        files = _dir_files(path)
        key: tuple[object, ...] = (
            "dir",
            str(path),
            tuple((rel, st.st_size, st.st_mtime_ns) for rel, _, st in files),
        )
    else:
        st = path.stat()
        files = [("", path, st)]
        key = ("file", str(path), st.st_size, st.st_mtime_ns)
    cached = _DIGEST_CACHE.get(key)
    if cached is not None:
        return cached
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    for rel, full, st in files:
        if key[0] == "dir":  # names and sizes are part of the listing, not just contents
            header = f"{rel}\0{st.st_size}\0".encode()
            sha.update(header)
            md5.update(header)
        with open(full, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
    digest = FileDigest(sha.hexdigest(), md5.hexdigest())
    _DIGEST_CACHE[key] = digest
    return digest


def fixture_data_allowed() -> bool:
    return os.environ.get(ENV_FIXTURE_DATA, "").strip().lower() in ("1", "true", "yes")


def check_published(
    dataset: str, files: Sequence[tuple[Path, str | None]], publisher: str
) -> dict[str, Any]:
    """Check each (path, published MD5) and describe the files for the record.

    Returns {"files": {name: sha256}, "checked_against": publisher, "fixture": bool}.
    A mismatch raises DataFileError naming the file, unless fixture data is allowed.
    """
    digests: dict[str, str] = {}
    mismatched: list[str] = []
    for path, md5 in files:
        try:
            digest = file_digest(path)
        except OSError as exc:
            raise DataFileError(f"{dataset}: {path} cannot be read: {exc.strerror}") from None
        digests[path.name] = digest.sha256
        if md5 is not None and digest.md5 != md5:
            if not fixture_data_allowed():
                raise DataFileError(
                    f"{dataset}: {path} has MD5 {digest.md5}, not the {md5} {publisher} "
                    f"publishes: a corrupt or foreign file; replace it (for a test fixture, "
                    f"set {ENV_FIXTURE_DATA}=1)"
                )
            mismatched.append(path.name)
    return {
        "files": digests,
        "checked_against": f"{publisher} MD5s",
        "fixture": bool(mismatched),
        **({"fixture_files": mismatched} if mismatched else {}),
    }
