"""Reference implementations as oracles.

AutoDL-Projects is on the package index (`pip install --no-deps xautodl==1.0.0`): its tests
skip when it is missing, except under CI=true, where a missing oracle is an error. The other
references are not packaged; their tests run when an environment variable names a local
checkout (docs/fidelity.md lists them) and skip otherwise.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

CHECKOUT_VARS = {
    "quark0/darts": "NASREPRO_REF_DARTS",
    "automl/RobustDARTS": "NASREPRO_REF_ROBUSTDARTS",
    "ruocwang/darts-pt": "NASREPRO_REF_DARTS_PT",
    "yuhuixu1993/PC-DARTS": "NASREPRO_REF_PC_DARTS",
    "Meituan-AutoML/DARTS-": "NASREPRO_REF_DARTS_MINUS",
    "dr-faustus/Lambda-DARTS": "NASREPRO_REF_LAMBDA_DARTS",
    "xiangning-chen/DrNAS": "NASREPRO_REF_DRNAS",
    "chenxin061/pdarts": "NASREPRO_REF_PDARTS",
    "Sunshine-Ye/Beta-DARTS": "NASREPRO_REF_BETA_DARTS",
    "liamcli/gaea_release": "NASREPRO_REF_GAEA",
    # GAEA's fork of AutoDL (its docker/config.dockerfile clones it to /code/AutoDL): the NB201
    # cells and op lists GAEA's search_spaces/nasbench_201/model_search.py imports
    "liamcli/AutoDL-Projects": "NASREPRO_REF_GAEA_AUTODL",
    "xiangning-chen/SmoothDARTS": "NASREPRO_REF_SMOOTHDARTS",
    "D-X-Y/AutoDL-Projects": "NASREPRO_REF_AUTODL",
    "SNAS-Series/SNAS-Series": "NASREPRO_REF_SNAS",
    "lightaime/sgas": "NASREPRO_REF_SGAS",
    "liamcli/randomNAS_release": "NASREPRO_REF_RANDOMNAS",
    # the fork of darts whose cnn/ the RandomNAS wrapper imports (model_search discrete=True)
    "liamcli/darts": "NASREPRO_REF_RANDOMNAS_DARTS",
    "xiaomi-automl/FairDARTS": "NASREPRO_REF_FAIRDARTS",
}


def require_xautodl() -> ModuleType:
    try:
        return importlib.import_module("xautodl")
    except ImportError:
        if os.environ.get("CI") == "true":
            raise RuntimeError(
                "xautodl is the NB201 oracle and must be installed in CI: "
                "pip install --no-deps xautodl==1.0.0"
            ) from None
        pytest.skip("xautodl not installed (pip install --no-deps xautodl==1.0.0)")


def checkout(repo: str) -> Path:
    """The local checkout of `repo` named by its environment variable, or skip."""
    var = CHECKOUT_VARS[repo]
    path = os.environ.get(var)
    if not path:
        pytest.skip(f"set {var} to a checkout of {repo} to run this oracle test")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{var}={path} is not a directory")
    return root


@contextmanager
def reference_modules(root: Path, *names: str, cuda_to_cpu: bool = True) -> Iterator[list[Any]]:
    """Import `names` from the checkout at `root` (its folder first on sys.path), with
    `.cuda()` a no-op (the references hard-code it), and forget them afterwards so that
    two references with the same module names (model_search, operations) do not mix."""
    saved_path = list(sys.path)
    saved_cuda = torch.Tensor.cuda, nn.Module.cuda
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    if cuda_to_cpu:
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
        nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        yield [importlib.import_module(n) for n in names]
    finally:
        sys.path[:] = saved_path
        torch.Tensor.cuda, nn.Module.cuda = saved_cuda  # type: ignore[method-assign]
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(str(root)) or name.split(".")[0] in {n.split(".")[0] for n in names}:
                del sys.modules[name]


def copy_by_structure(
    src: nn.Module, dst: nn.Module, skip: tuple[str, ...] = (), skip_dst: tuple[str, ...] = ()
) -> None:
    """Copy every parameter and buffer of `src` into `dst` in registration order, checking
    shapes: the two networks are built in the same order by construction. Entries whose
    name contains one of `skip` (of `src`) or `skip_dst` (of `dst`) are left out."""
    s = [(k, v) for k, v in src.state_dict().items() if not any(x in k for x in skip)]
    d = [(k, v) for k, v in dst.state_dict().items() if not any(x in k for x in skip_dst)]
    assert len(s) == len(d), (len(s), len(d))
    new = {}
    for (ks, vs), (kd, vd) in zip(s, d, strict=True):
        assert vs.shape == vd.shape, (ks, kd, vs.shape, vd.shape)
        new[kd] = vs.clone()
    dst.load_state_dict(new, strict=not skip_dst)
