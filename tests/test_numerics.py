"""TF32 is off for searches unless a suite opts in, and provenance records the flags."""

from __future__ import annotations

import torch

from nasrepro.provenance import numerics, provenance, set_tf32
from nasrepro.suite import SearchSettings


def test_tf32_switch_sets_both_backends_and_is_recorded() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        set_tf32(True)
        assert numerics()["tf32_matmul"] is True and numerics()["tf32_cudnn"] is True
        set_tf32(False)
        flags = provenance("cpu", True, 0.0, "now")["numerics"]
        assert flags["tf32_matmul"] is False and flags["tf32_cudnn"] is False
        assert {"cudnn_deterministic", "cudnn_benchmark", "deterministic_algorithms"} <= set(flags)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_searches_default_to_tf32_off() -> None:
    s = SearchSettings(
        epochs=1, batch_size=2, lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=0.0,
        arch_lr=1e-3, arch_weight_decay=0.0,
    )  # fmt: skip
    assert s.tf32 is False and s.data_protocol is None
