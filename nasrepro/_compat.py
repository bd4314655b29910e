"""Environment fixes that must run before torchvision is imported.

Imported by every module that (transitively) imports torchvision or timm.
"""

from __future__ import annotations

import importlib.util

_patched = False


def ensure_torchvision() -> None:
    """Make `import torchvision` work beside a CPU-only torch.

    CUDA builds of torchvision cannot load their C++ extension against a CPU torch and
    fail with "operator torchvision::nms does not exist". Declaring the two op schemas
    torchvision's Python side registers fake kernels for is enough for datasets,
    transforms and timm (the ops themselves stay unusable). Where torchvision's own
    extension works (a matching build) this does nothing.
    """
    global _patched
    if _patched:
        return
    _patched = True
    import torch

    if importlib.util.find_spec("torchvision") is None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018  (attribute lookup is the probe)
        return
    except (AttributeError, RuntimeError):
        pass
    try:
        from torchvision import _C  # noqa: F401  (a working extension registers the ops)

        return
    except Exception:  # noqa: BLE001  (any load failure means: define the schemas)
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in (
        "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    ):
        try:
            lib.define(schema)
        except RuntimeError:  # already registered (a partly working extension): keep it
            pass
    # keep the library object alive for the process lifetime
    globals()["_torchvision_fragment"] = lib
