"""Crash-safe search checkpoints: written atomically every epoch, loaded with weights_only.

A trial killed at any moment and re-run with the same command resumes from its last
finished epoch and, on CPU in deterministic mode, ends exactly as an uninterrupted run
(tests/test_resume.py). A checkpoint that cannot be read, or that belongs to another
configuration, is refused with a one-line reason and the trial starts over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

FORMAT = "nasrepro.checkpoint/1"
_TMP = ".tmp-"


class CheckpointError(RuntimeError):
    """The checkpoint is corrupt, foreign or of another format."""


def unit_checkpoint(folder: str | Path, kind: str, key: str) -> Path:
    """A unit's checkpoint, named by the unit's identity (not by the suite or experiment
    asking for it): every trial that shares a search or a retraining resumes the same one.
    Units are locked in the shared store (nasrepro/store.py), not here."""
    return Path(folder) / "units" / f"{kind}-{key[:16]}.pt"


def checkpoint_path(folder: str | Path, trial: Any) -> Path:
    """The checkpoint of a trial's search unit (`unit_checkpoint`); a published cell's
    trial, which searches nothing, by its own identity."""
    key = getattr(trial, "search_key", None)
    if key is None:
        return Path(folder) / "trials" / f"seed{trial.seed}-{trial.config_hash[:16]}.pt"
    return unit_checkpoint(folder, "search", key)


# trial checkpoint stem -> called after any checkpoint of that trial is saved (the trial's
# clock persists its elapsed time with it: nasrepro/cost.py).
_SAVE_HOOKS: dict[str, Callable[[], None]] = {}


def on_save(trial_checkpoint: Path, hook: Callable[[], None]) -> None:
    _SAVE_HOOKS[trial_checkpoint.stem] = hook


def forget_saves(trial_checkpoint: Path) -> None:
    _SAVE_HOOKS.pop(trial_checkpoint.stem, None)


def _after_save(path: Path) -> None:
    stem = path.name.split(".", 1)[0]
    hook = _SAVE_HOOKS.get(stem)
    if hook is not None:
        hook()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGUSR2 and SIGTERM held back in this thread until the block ends (then delivered)."""
    held = {signal.SIGUSR2, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # named after the checkpoint, so the next holder of the unit's lock can tell a
    # temporary file a kill left behind (remove_stale_tmp)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP}{path.stem}-", suffix=".pt", dir=path.parent)
    try:
        # A preemption signal (Slurm's USR2, TERM) waits for the write to end: its handler
        # raising inside torch.save's writer would surface as a RuntimeError, a failure,
        # instead of the requeue that resumes from this checkpoint.
        with _signals_deferred():
            with os.fdopen(fd, "wb") as fh:
                torch.save({"format": FORMAT, **payload}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # say where, not just "[Errno 28]"
            raise OSError(
                exc.errno, "No space left on device writing checkpoint", str(path)
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _after_save(path)


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


def stage_path(trial_checkpoint: Path, stage: str) -> Path:
    """The checkpoint of a stage after the search (PT tuning, a retraining) of one trial:
    beside the trial's own, so that finishing or restarting the trial removes it too."""
    return trial_checkpoint.with_name(f"{trial_checkpoint.stem}.{stage}.pt")


def remove_checkpoints(trial_checkpoint: Path) -> None:
    """The trial's checkpoint, every stage checkpoint and its clock beside it."""
    for path in trial_checkpoint.parent.glob(f"{trial_checkpoint.stem}.*.pt"):
        path.unlink(missing_ok=True)
    trial_checkpoint.with_name(f"{trial_checkpoint.stem}.clock.json").unlink(missing_ok=True)
    trial_checkpoint.unlink(missing_ok=True)


def remove_stale_tmp(trial_checkpoint: Path) -> list[Path]:
    """Temporary checkpoint files of this unit (and its stages) that a killed run left;
    call only while holding the unit's lock (nasrepro/store.py), when no one else can be
    writing them."""
    stale = sorted(trial_checkpoint.parent.glob(f"{_TMP}{trial_checkpoint.stem}*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
