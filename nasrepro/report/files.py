"""Atomic file writes for report pages and figures: a reader never sees half a page."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from nasrepro.filemode import publish_mode


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        publish_mode(fd)  # 0644 under the default umask, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def save_figure(fig: Any, path: Path) -> None:
    """A matplotlib Figure as PNG, atomically; no "Software" metadata, so the bytes depend
    only on the data and the renderer."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    write_atomic(path, buf.getvalue())
