"""One bad registry file never stops `run`, `report` or `plan` (issue #23, Registry).

Each hostile file is named on one line and skipped; the command exits 0, the genuine record
still counts, and nothing is written (the registry's files are unchanged, `report --json` and
`plan` write nothing). Also the integrity checks of issue #18: an edited record, a forged one,
a registry directory that does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nasrepro.cli import main

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SUITE = f"""\
suite: tiny
version: 1
paper: {{file: tiny.pdf, title: A tiny paper}}
budgets:
  smoke: {{description: the same published cell, seeds: 1}}
experiments:
  opt:
    genotype: "{OPTIMUM}"
    space: nb201
    dataset: cifar10
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {{id: opt-c10, paper_file: tiny.pdf, table: Table 1, row: optimal, method: optimal,
     space: nb201, dataset: cifar10, metric: test_acc, value: 94.37, protocol: cell_property,
     experiment: opt}}
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite and a registry holding its one genuine record (the trial executed for real,
    without MLflow, and written as `run` writes it)."""
    from nasrepro.plan import expand
    from nasrepro.registry import write_record
    from nasrepro.suite import load_suite
    from nasrepro.tracking import NullTracker
    from nasrepro.trial import execute_trial

    root = tmp_path_factory.mktemp("hostile")
    suite = root / "tiny.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    (trial,) = expand(load_suite(suite), suite, "full", ["opt"])
    record = execute_trial(
        trial,
        tracker=NullTracker(),
        experiment_id="",
        parent_run_id="",
        data_root=None,
        device="cpu",
        progress=lambda line: None,
    )
    assert record is not None
    write_record(root / "registry", record)
    return root


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def _record_with(field_path: tuple[str, ...], value: object) -> str:
    return json.dumps({"schema": "nasrepro.record/3", "metrics": {field_path[-1]: value}})


HOSTILE = {
    "int-400-digits": lambda p: p.write_text('{"schema": "nasrepro.record/3", "seed": 1' + "0" * 400 + "}"),
    "int-5000-digits": lambda p: p.write_text('{"seed": ' + "9" * 5000 + "}"),
    "nested-100000": lambda p: p.write_text(_deep(100_000)),
    "metrics-list": "list",
    "metrics-number": "number",
    "symlink-dev-zero": lambda p: p.symlink_to("/dev/zero"),
    "fifo": lambda p: os.mkfifo(p),
}


def _plant(case: str, registry: Path) -> Path:
    folder = registry / "tiny" / "opt" / "full"
    bad = folder / f"seed7-000000000000-{case}.json"
    make = HOSTILE[case]
    if isinstance(make, str):  # a well-formed record whose metrics.cifar10 is not an object
        genuine = json.loads(next(folder.glob("seed0-*.json")).read_text())
        genuine["seed"] = 7
        genuine["metrics"]["cifar10"] = [94.37] if make == "list" else 94.37
        bad.write_text(json.dumps(genuine))
    else:
        make(bad)
    return bad


def _files(registry: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(registry.rglob("*")):
        if p.is_symlink() or not p.is_file():
            out[str(p)] = "special"
        else:
            out[str(p)] = p.read_bytes()
    return out


def test_bad_registry_files_are_named_once_and_skipped(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every hostile file of the battery at once, each in its own file
    shutil.copy(recorded / "tiny.yaml", tmp_path / "tiny.yaml")
    shutil.copytree(recorded / "registry", tmp_path / "registry")
    bad = [_plant(case, tmp_path / "registry") for case in sorted(HOSTILE)]
    before = _files(tmp_path / "registry")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        commands = {
            "run": ["run", "tiny.yaml", "--registry", "registry", "--tracking-uri",
                    f"sqlite:///{tmp_path}/mlflow.db"],
            "report": ["report", "tiny.yaml", "--registry", "registry", "--json"],
            "plan": ["plan", "tiny.yaml", "--registry", "registry"],
        }
        for name, argv in commands.items():
            capsys.readouterr()
            assert main(argv) == 0, name
            out, err = capsys.readouterr()
            assert "Traceback" not in out + err
            for path in bad:
                named = [ln for ln in (out + err).splitlines() if path.name in ln]
                assert len(named) == 1 and "skipped" in named[0], (name, path.name, named)
            if name == "report":  # the genuine record still judges the claim
                (claim,) = json.loads(out)["claims"]
                assert claim["verdict"] == "reproduced"
            if name == "run":
                assert "1 trial(s) already in registry/" in out + err
    finally:
        os.chdir(cwd)
    assert _files(tmp_path / "registry") == before  # nothing written, nothing removed
    assert not (tmp_path / "reports").exists()


def _copy(recorded: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copy(recorded / "tiny.yaml", tmp_path / "tiny.yaml")
    shutil.copytree(recorded / "registry", tmp_path / "registry")
    (rec,) = (tmp_path / "registry").rglob("*.json")
    return tmp_path / "tiny.yaml", rec


def test_an_edited_record_is_set_aside_with_the_reason_on_the_page(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite, rec = _copy(recorded, tmp_path)
    data = json.loads(rec.read_text())
    data["metrics"]["cifar10"]["test_acc"] = 50.0  # flips the verdict if it were believed
    rec.write_text(json.dumps(data))
    out = tmp_path / "pages"
    assert main(["report", str(suite), "--registry", str(tmp_path / "registry"), "--out",
                 str(out)]) == 0
    page = (out / "tiny.md").read_text(encoding="utf-8")
    assert "## Records set aside" in page and "digest mismatch" in page
    assert "0 reproduced · 0 not reproduced · 0 inconclusive · 1 not run" in page
    (row,) = [line for line in page.splitlines() if "opt-c10 |" in line]
    assert "no records" in row and "1 record(s) set aside" in row
    assert "digest mismatch" in capsys.readouterr().err


def test_a_forged_record_with_a_later_time_does_not_win(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A forger who recomputes the digest gets past the digest, but two disagreeing records of
    # one trial are a conflict: neither is judged, and the page says so.
    from nasrepro.registry import record_digest

    suite, rec = _copy(recorded, tmp_path)
    forged = json.loads(rec.read_text())
    forged["metrics"]["cifar10"]["test_acc"] = 50.0
    forged["provenance"]["created_at"] = "2099-01-01T00:00:00+00:00"
    forged["digest"] = record_digest(forged)
    rec.with_name("seed0-forged.json").write_text(json.dumps(forged))
    assert main(["report", str(suite), "--registry", str(tmp_path / "registry"), "--json"]) == 0
    (claim,) = json.loads(capsys.readouterr().out)["claims"]
    assert claim["verdict"] == "not run" and claim["reproduced"] is None
    assert any("disagree" in n for n in claim["notes"])


def test_an_identity_that_does_not_rederive_is_set_aside(recorded: Path, tmp_path: Path) -> None:
    from nasrepro.registry import record_digest, scan_registry

    _, rec = _copy(recorded, tmp_path)
    data = json.loads(rec.read_text())
    data["config"]["eval_datasets"] = ["cifar100"]  # another trial's config, same hash
    data["digest"] = record_digest(data)
    rec.write_text(json.dumps(data))
    scan = scan_registry(tmp_path / "registry")
    assert scan.records == [] and "identity: config_hash" in scan.rejected[0][1]


def test_a_registry_that_does_not_exist_is_an_error(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = recorded / "tiny.yaml"
    typo = str(tmp_path / "reports" / "record")
    for argv in (
        ["report", str(suite), "--registry", typo, "--out", str(tmp_path / "pages")],
        ["report", str(suite), "--registry", typo, "--check", "--out", str(tmp_path / "p")],
        ["plan", str(suite), "--registry", typo],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"nasrepro: error: --registry {typo}: the registry directory does not exist"
    assert not (tmp_path / "pages").exists()


def test_metrics_must_be_finite_numbers(recorded: Path, tmp_path: Path) -> None:
    from nasrepro.registry import record_digest, scan_registry

    _, rec = _copy(recorded, tmp_path)
    for value, why in (("94.37", "got '94.37'"), (True, "got True"), (None, "got None")):
        data = json.loads(rec.read_text())
        data["metrics"]["cifar10"]["test_acc"] = value
        data["digest"] = record_digest(data)
        path = rec.with_name(f"seed0-{why[4:8].strip(chr(39))}.json")
        path.write_text(json.dumps(data))
        scan = scan_registry(tmp_path / "registry")
        line = next(p for p in scan.problems if path.name in p)
        assert f"metrics.cifar10.test_acc: expected a finite number, {why}" in line
        path.unlink()
    path = rec.with_name("seed0-nan.json")
    path.write_text(rec.read_text().replace('"test_acc": 94.37', '"test_acc": NaN'))
    assert any("NaN is not JSON" in p for p in scan_registry(tmp_path / "registry").problems)
