"""Paper cuts of the command line: did-you-mean, JSON with the totals first that survives a
closed pipe, unknown genotypes, device profiles, `--table`, and files written with the
process umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_usage import SUITE

from nasrepro.cli import main
from nasrepro.estimate import step_times

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "usage.yaml"
    path.write_text(SUITE)
    return path


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_did_you_mean_for_commands_options_and_choices(capsys):
    assert "invalid choice 'plna' (did you mean 'plan'?)" in _error(capsys, ["plna"])
    err = _error(capsys, ["plan", "--budgte", "full"])
    assert err.startswith("nasrepro plan: error: unrecognized option '--budgte'")
    assert "(did you mean '--budget'?)" in err
    assert "(did you mean '--json'?)" in _error(capsys, ["report", "--jsno"])
    assert "invalid choice 'smok' (did you mean 'smoke'?)" in _error(
        capsys, ["plan", "--budget", "smok"]
    )


def test_did_you_mean_for_experiment_ids_tables_and_devices(suite, capsys):
    assert main(["plan", str(suite), "--experiment", "d11"]) == 2
    assert "no experiment 'd11' in the suites (did you mean 'd1'?)" in capsys.readouterr().err
    assert main(["plan", str(suite), "--table", "Tabel 1"]) == 2
    assert "no claims of table 'Tabel 1' (did you mean 'Table 1'?)" in capsys.readouterr().err
    assert main(["plan", str(suite), "--device", "a10"]) == 2
    assert "unknown device 'a10' (did you mean 'a100'?)" in capsys.readouterr().err
    assert main(["run", str(suite), "--budget", "smoke", "--experiment", "d11"]) == 2
    assert "(did you mean 'd1'?)" in capsys.readouterr().err


def test_table_selects_the_experiments_of_its_claims(suite, capsys):
    assert main(["plan", str(suite), "--table", "Table 1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {n["experiment"] for t in plan["trials"] for n in t["needed_by"]} == {"d1"}
    assert plan["totals"]["unique_trials"] == 3


def test_unknown_genotype_says_so(capsys):
    assert main(["info", "--genotype", "DARTS_V3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nasrepro: error: --genotype: unknown genotype 'DARTS_V3'")
    assert "(did you mean 'DARTS_V2'?)" in err and "--space" not in err


def test_validate_prints_the_comparisons_it_counts(suite, capsys):
    assert main(["validate", str(suite)]) == 0
    assert capsys.readouterr().out.strip() == f"{suite}: ok (2 experiments, 2 claims, 0 comparisons)"


def test_json_puts_totals_first(suite, capsys):
    assert main(["plan", str(suite), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out))[:2] == ["totals", "budget"]
    (suite.parent / "empty").mkdir()
    assert main(["report", str(suite), "--registry", str(suite.parent / "empty"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data)[0] == "summary" and list(data)[-1] == "claims"


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`nasrepro plan suites/*.yaml --json | head`: megabytes for a reader that stops early
    (one suite's plan is already far more than a pipe holds)."""
    suites = [str(ROOT / "suites" / "lambda_darts.yaml")]
    code = "import sys; from nasrepro.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "plan", *suites, "--json", "--registry", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(200).decode()
    proc.stdout.close()  # what `head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141  # 128 + SIGPIPE, as `yes | head` ends
    assert head.startswith('{\n "totals": {')
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_device_profiles_are_scaled_from_published_figures_until_measured(suite, capsys):
    devices = step_times()["devices"]
    h200 = devices["h200"]["cases"]["nb201/first"]["ms"]
    # (FP32 TFLOPS, memory TB/s) as the profiles cite them; H200: 67 and 4.8
    published = {"h100": (67.0, 3.35), "a100": (19.5, 2.039), "v100": (15.7, 0.9)}
    published["rtx4090"] = (82.6, 1.008)
    for name, (tflops, bandwidth) in published.items():
        case = devices[name]["cases"]["nb201/first"]
        assert case["status"] == "scaled"
        assert "datasheet" in case["how"] or "whitepaper" in case["how"]  # cited
        assert "unmeasured" in devices[name]["name"]
        ratio = max(67.0 / tflops, 4.8 / bandwidth)  # roofline bound: the slower resource
        assert case["ms"] == pytest.approx(h200 * ratio, abs=0.01)
        assert main(["plan", str(suite), "--device", name]) == 0
        out = capsys.readouterr().out
        assert f"Device {name}: Scaled, not measured" in out
    assert main(["plan", str(suite), "--device", "a100", "--json"]) == 0
    a100 = json.loads(capsys.readouterr().out)["totals"]["gpu_hours_after_dedup"]
    assert main(["plan", str(suite), "--json"]) == 0
    base = json.loads(capsys.readouterr().out)["totals"]["gpu_hours_after_dedup"]
    # the totals add estimates rounded per trial: equal to a few parts in a thousand
    assert a100 == pytest.approx(base * max(67.0 / 19.5, 4.8 / 2.039), rel=5e-3)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_records_pages_and_figures_follow_the_umask(tmp_path, mask):
    """Atomic writes go through mkstemp (0600); the published files get 0666 & ~umask."""
    from matplotlib.figure import Figure
    from test_report import SUITE_YAML, _record

    from nasrepro.registry import write_record
    from nasrepro.report.files import save_figure, write_text_atomic

    suite_file = tmp_path / "toy_suite.yaml"
    suite_file.write_text(SUITE_YAML, encoding="utf-8")
    old = os.umask(mask)
    try:
        files = [
            write_record(tmp_path / "reg", _record(suite_file, "single", "full", 0, {})),
        ]
        write_text_atomic(tmp_path / "out" / "page.md", "# page\n")
        save_figure(Figure(figsize=(1, 1)), tmp_path / "out" / "figures" / "f.png")
    finally:
        os.umask(old)
    files += [tmp_path / "out" / "page.md", tmp_path / "out" / "figures" / "f.png"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name


def test_data_root_help_names_the_real_default():
    import argparse

    from nasrepro.cli import build_parser
    from nasrepro.datasets.base import DEFAULT_DATA_ROOT, ENV_DATA_ROOT

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("run", "tune"):
        (action,) = [a for a in sub.choices[command]._actions if "--data-root" in a.option_strings]
        assert ENV_DATA_ROOT in action.help and str(DEFAULT_DATA_ROOT) in action.help
