"""Benchmark switches: fp32 switches keep the search step's math; the CLI writes results."""

import json

import pytest
import torch

from nasrepro.bench import BenchCase, build_step, max_rel_diff, state_after_one_step
from nasrepro.cli import main

TINY = {
    order: BenchCase("nb201", f"darts-{'1st' if order == 1 else '2nd'}", 4, 8, {"c": 2, "n": 1})
    for order in (1, 2)
}


@pytest.mark.parametrize("order", [1, 2])
def test_channels_last_equals_plain(order):
    cpu = torch.device("cpu")
    plain = state_after_one_step(TINY[order], "plain", cpu)
    other = state_after_one_step(TINY[order], "channels_last", cpu)
    assert max_rel_diff(plain, other) < 1e-5
    # and the step really changed the state (the comparison is not vacuous)
    _, ctx = build_step(TINY[order], "plain", cpu)
    net = ctx.supernet
    initial = [p.detach().clone() for p in [*net.arch_parameters(), *net.weight_parameters()]]
    assert max_rel_diff(initial, plain) > 1e-4


@pytest.mark.parametrize("order", [1, 2])
def test_fused_equals_plain(order):
    cpu = torch.device("cpu")
    plain = state_after_one_step(TINY[order], "plain", cpu)
    assert max_rel_diff(plain, state_after_one_step(TINY[order], "fused", cpu)) < 1e-5


def test_compile_equals_plain():
    # torch.compile (inductor) of each cell, first order; ~3 min of compiling on 2 CPU cores.
    cpu = torch.device("cpu")
    plain = state_after_one_step(TINY[1], "plain", cpu)
    assert max_rel_diff(plain, state_after_one_step(TINY[1], "compile", cpu)) < 1e-5


def test_plain_is_reproducible_and_bf16_differs():
    cpu = torch.device("cpu")
    a = state_after_one_step(TINY[1], "plain", cpu)
    b = state_after_one_step(TINY[1], "plain", cpu)
    assert max_rel_diff(a, b) == 0.0
    assert max_rel_diff(a, state_after_one_step(TINY[1], "bf16", cpu)) > 1e-6


def test_bench_cli_quick_json(tmp_path, capsys):
    assert (
        main(
            [
                "bench",
                "--quick",
                "--device",
                "cpu",
                "--steps",
                "1",
                "--switch",
                "plain",
                "--switch",
                "channels_last",
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in rows} == {"darts-1st", "darts-2nd", "retrain"}
    for r in rows:
        assert set(r) >= {
            "space",
            "method",
            "batch",
            "device",
            "step_ms",
            "images_per_s",
            "peak_mem_mb",
            "ratio_to_plain",
        }
        assert r["step_ms"] > 0 and r["images_per_s"] > 0
    assert all(r["ratio_to_plain"] == 1.0 for r in rows if r["switch"] == "plain")
    saved = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert saved["rows"] and saved["torch"] == torch.__version__
