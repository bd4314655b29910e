"""Where a result came from: code version, packages, machine."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "nasrepro",
    "torch",
    "torchvision",
    "timm",
    "mlflow",
    "optuna",
    "numpy",
    "pandas",
    "pydantic",
    "nas-bench-201",
    "nats_bench",
    "scikit-learn",
)


@cache
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout nasrepro runs from, or (None, None) outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            != ""
        )
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        gpus = device.partition(":")[2].split(",")
        name = torch.cuda.get_device_name(torch.device(device.split(",")[0]))
        return f"cuda:{name}" + (f" x{len(gpus)}" if len(gpus) > 1 else "")
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def provenance(
    device: str, deterministic: bool, wall_time_s: float, created_at: str
) -> dict[str, Any]:
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": device_name(device),
        "deterministic": deterministic,
        "wall_time_s": round(wall_time_s, 3),
        "created_at": created_at,
    }
