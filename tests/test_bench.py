"""Benchmark switches: fp32 switches keep the search step's math; the CLI writes results."""

import json
import os

import pytest
import torch

from nasrepro import rounding
from nasrepro.bench import (
    BenchCase,
    check_switch,
    max_rel_diff,
    short_search_genotype,
    state_after_one_step,
)
from nasrepro.cli import main

TINY = {
    order: BenchCase("nb201", f"darts-{'1st' if order == 1 else '2nd'}", 4, 8, {"c": 2, "n": 1})
    for order in (1, 2)
}


def _assert_same_step(case, switch):
    """One step of `switch` equals the plain step in float64, per tensor, within the rounding
    bound 2·κ_t·γ_nD of nasrepro/rounding.py (κ_t measured on the plain step)."""
    check = check_switch(case, switch, torch.device("cpu"), torch.float64)
    assert check.worst <= 1.0, (switch, check.rel_diffs, check.tolerances)
    # the bound discriminates: far below the plain step's own change of the state
    assert max(check.tolerances) < 1e-3 * check.plain_moved
    assert check.plain_moved > 1e-4


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("switch", ["channels_last", "fused"])
def test_fp32_switch_equals_plain(order, switch):
    _assert_same_step(TINY[order], switch)


def test_a_real_difference_fails_the_bound():
    # A 1% change of one weight of the initial state is not rounding: the check must see it.
    case = TINY[1]
    cpu = torch.device("cpu")
    plain = state_after_one_step(case, "plain", cpu, torch.float64)
    check = check_switch(case, "plain", cpu, torch.float64)
    assert check.worst <= 1.0  # plain against itself: equal
    moved = [t.clone() for t in plain]
    moved[-1] = moved[-1] * 1.01
    diffs = rounding.relative_diffs(plain, moved)
    assert max(d / t for d, t in zip(diffs, check.tolerances, strict=True)) > 1.0


@pytest.mark.skipif(
    os.environ.get("NASREPRO_SLOW_TESTS") != "1",
    reason="inductor compiles for 3-6 min on 2 CPU cores; NASREPRO_SLOW_TESTS=1 runs it",
)
def test_compile_equals_plain():
    # torch.compile (inductor) of each cell, first order: a bench-only switch (not in --fast)
    _assert_same_step(TINY[1], "compile")


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


@pytest.mark.parametrize("order", [1, 2])
def test_fp32_switches_select_the_plain_genotype(order):
    """A short fp32 search (20 steps) selects the same genotype with every CPU switch, and
    that is decided by α, not by rounding: each edge's top two α differ by more than the
    switches' largest α difference."""
    cpu = torch.device("cpu")
    start, plain, alpha = short_search_genotype(TINY[order], "plain", cpu, 20)
    assert plain != start  # the search, not the initialisation, decided the genotype
    top2 = alpha.view(6, 5).topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).min().item()
    for switch in ("channels_last", "fused"):
        _, genotype, other = short_search_genotype(TINY[order], switch, cpu, 20)
        assert genotype == plain, switch
        assert (other - alpha).abs().max().item() < margin, switch


def _gpu_session():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "gpu_session.py"
    spec = importlib.util.spec_from_file_location("gpu_session", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_session_script_dry_run(tmp_path, capsys):
    """benchmarks/gpu_session.py --tiny on the CPU: every part runs, in the trials' numeric
    mode, and the summary has the issues' figures (the GPU run is the same code at full
    size); the end-to-end part runs `nasrepro run` with 4 seeds packed on a generated
    CIFAR-10. Without the reference it says so, loudly and in the file."""
    module = _gpu_session()
    out = tmp_path / "session.json"
    result = module.main(out, tiny=True, reference=False)
    saved = json.loads(out.read_text())
    assert saved["summary"] == result["summary"]
    mode = saved["numeric_mode"]
    assert mode["deterministic_algorithms"] and not mode["cudnn_benchmark"]
    assert mode["tf32_matmul"] is False and mode["tf32_cudnn"] is False
    assert saved["reference"].startswith("REFERENCE MISSING")
    assert capsys.readouterr().err.count("*** REFERENCE MISSING") == 2
    errors = {k: v for k, v in saved["parts"].items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    assert {"nb201_1st/plain", "nb201_1st/fused", "nb201_2nd/plain", "lambda_overhead",
            "darts_1st/plain", "packed/step", "packed/pays", "data/device_loader",
            "data/cpu_loader",
            "e2e/run_4_seeds"} <= set(saved["parts"])  # fmt: skip
    assert "nb201_1st/reference" not in saved["parts"]
    e2e = saved["parts"]["e2e/run_4_seeds"]
    assert e2e["all_packed"] and e2e["packed"]["seeds"] == [0, 1, 2, 3]
    assert e2e["projected_50_epochs_min"] >= e2e["wall_s"] / 60
    summary = saved["summary"]
    for key in (
        "nb201_one_search_minutes",
        "second_order_over_first_plain",
        "lambda_over_darts",
        "darts_50_epoch_gpu_days",
        "claim_4_seeds_minutes",
        "gpu_waits_for_data_pct",
        "e2e_4_seeds_50_epochs_min",
    ):
        assert summary[key] is not None, key
    assert summary["data_included"] is True


def test_gpu_session_refuses_full_size_without_cuda(tmp_path, capsys):
    module = _gpu_session()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(module.SessionError, match="full size needs CUDA"):
        module.main(tmp_path / "s.json", tiny=False)
    assert not (tmp_path / "s.json").exists()
    # the command line: exit 2 with one line, nothing written; unknown flags refused
    assert module.cli([str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gpu_session: error: full size needs CUDA and torch sees none (--tiny: CPU "
                   "dry run)"]  # fmt: skip
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(SystemExit) as exc:
        module.cli([str(tmp_path / "s.json"), "--tinyy"])
    assert exc.value.code == 2 and "unrecognized arguments: --tinyy" in capsys.readouterr().err


def test_gpu_session_help(capsys):
    """`python benchmarks/gpu_session.py --help` (its `cli`, in process: a subprocess would
    spend seconds importing torch) prints the usage and exits 0."""
    module = _gpu_session()
    with pytest.raises(SystemExit) as exc:
        module.cli(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "usage: python benchmarks/gpu_session.py" in out and "--no-reference" in out


def test_pick_fastest_never_picks_a_slower_switch():
    from nasrepro.bench import pick_fastest

    times = {"plain": [10.0, 11.0, 9.0], "fused": [9.8, 9.7, 9.9], "channels_last": [12.0] * 3}
    assert pick_fastest(times) == "plain"  # 2% faster is within the 5% margin
    times["fused"] = [7.0, 8.0, 7.5]
    assert pick_fastest(times) == "fused"
    assert pick_fastest({"plain": [1.0], "x": [2.0]}) == "plain"


def test_fast_switches_measures_the_candidates_of_the_device():
    from nasrepro.bench import fast_switches

    out = fast_switches(
        "nb201", {"c": 2, "n": 1}, 1, 4, 8, 10, 3, torch.device("cpu"), graphable=True
    )
    assert set(out["timings"]["median_ms"]) == {
        "plain", "fused", "channels_last", "fused+channels_last"
    }  # fmt: skip
    assert out["cuda_graph"] is False  # CUDA graphs are no CPU candidate
    assert out["fused"] == ("fused" in out["chosen"])
    assert out["channels_last"] == ("channels_last" in out["chosen"])
