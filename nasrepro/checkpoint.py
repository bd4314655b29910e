"""Crash-safe search checkpoints: written atomically every epoch, loaded with weights_only.

A trial killed at any moment and re-run with the same command resumes from its last
finished epoch and, on CPU in deterministic mode, ends exactly as an uninterrupted run
(tests/test_resume.py). A checkpoint that cannot be read, or that belongs to another
configuration, is refused with a one-line reason and the trial starts over.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "nasrepro.checkpoint/1"


class CheckpointError(RuntimeError):
    """The checkpoint is corrupt, foreign or of another format."""


def checkpoint_path(folder: str | Path, trial: Any) -> Path:
    return (
        Path(folder)
        / trial.suite
        / trial.experiment
        / trial.budget
        / f"seed{trial.seed}-{trial.config_hash[:16]}.pt"
    )


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, config_hash: str) -> dict[str, Any]:
    """The checkpoint's payload, or CheckpointError saying why it cannot be used."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure means: unusable)
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    if payload.get("config_hash") != config_hash:
        raise CheckpointError(
            f"{path}: checkpoint of another configuration ({str(payload.get('config_hash'))[:12]}…)"
        )
    return payload
