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


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions, both at once.

    PyTorch leaves cuDNN convolutions on TF32 by default on Ampere and later; the papers'
    GPUs had no TF32, and Λ-DARTS' finite differences at ε0 = 1e-4 are below TF32's 10-bit
    mantissa, so searches run with it off unless a suite opts in (`search.tf32`).
    """
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def numerics() -> dict[str, Any]:
    """The numeric switches in effect: TF32 (matmul, cuDNN), cuDNN determinism/benchmark,
    the float32 matmul precision and whether torch runs deterministic algorithms."""
    import torch

    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_enabled": torch.backends.cudnn.enabled,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_version": torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available()
        else None,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


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
        "numerics": numerics(),
        "wall_time_s": round(wall_time_s, 3),
        "created_at": created_at,
    }
