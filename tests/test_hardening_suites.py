"""Malformed suites and command lines: `validate` and `run` refuse each one with exit 2 and
one line `file:line: field: problem`, before anything is logged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nasrepro import catalog
from nasrepro.cli import main
from nasrepro.suite import MAX_SUITE_BYTES, load_suite

BASE = """\
suite: hardening
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: Hardening test}}
budgets:
  smoke:
    description: "tests only"
    seeds: 1
    dataset: digits
    search: {{epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8{budget_search}}}
    space_args: {{c: 2, n: 1}}
{budget_extra}
experiments:
  d1:
    space: {space}
    space_args: {space_args}
    dataset: cifar10
    methods: [darts]
    search: {{epochs: {epochs}, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 3e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}}
    selector: {selector}
    selector_args: {selector_args}
    evaluator: {evaluator}
    evaluator_args: {evaluator_args}
    eval_datasets: {eval_datasets}
    seeds: 2
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: d1}}
"""
DEFAULTS = {
    "budget_search": "",
    "budget_extra": "",
    "space": "nb201",
    "space_args": "{c: 16, n: 5}",
    "epochs": "50",
    "selector": "argmax",
    "selector_args": "{}",
    "evaluator": "nb201-table",
    "evaluator_args": "{}",
    "eval_datasets": "[cifar10, cifar100]",
}


def write_suite(path: Path, **changes: str) -> Path:
    path.write_text(BASE.format(**{**DEFAULTS, **changes}))
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def refused(path: Path, capsys: pytest.CaptureFixture[str], run: bool = False) -> str:
    """validate (and run, if asked) exit 2 with one `file:line: field: problem` line and
    leave no MLflow store or registry behind; returns that line."""
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"{path}:"), err
    if run:
        assert main(["run", str(path), "--budget", "smoke", "--device", "cpu"]) == 2
        assert capsys.readouterr().err.strip() == err
        assert not Path("mlflow.db").exists() and not Path("registry").exists()
    return err


def test_the_base_suite_is_valid(workdir: Path) -> None:
    suite = load_suite(write_suite(workdir / "ok.yaml"))
    # `3e-4` (YAML 1.1 would read a string) is the number it means
    assert suite.experiments["d1"].search.weight_decay == pytest.approx(3e-4)


CASES = {
    # name: (changes, line, field, problem regex)
    "selector_args typo": (
        {"selector": "pt", "selector_args": "{proj_intervl: 5}"},
        r"experiments\.d1\.selector_args\.proj_intervl",
        r"unknown argument of selector 'pt' \(did you mean 'proj_interval'\?\)",
    ),
    "argument of an argument-less selector": (
        {"selector_args": "{edge_selection: random}"},
        r"experiments\.d1\.selector_args\.edge_selection",
        r"selector 'argmax' takes no arguments",
    ),
    "selector arg type": (
        {"selector": "pt", "selector_args": "{proj_interval: 2.5}"},
        r"experiments\.d1\.selector_args\.proj_interval",
        r"must be an integer in \[1, inf\], got 2\.5",
    ),
    "space_args value": (
        {"space_args": "{c: 0, n: 5}"},
        r"experiments\.d1\.space_args\.c",
        r"must be an integer in \[1, inf\], got 0",
    ),
    "space_args bool for int": (
        {"space_args": "{c: 16, n: true}"},
        r"experiments\.d1\.space_args\.n",
        r"must be an integer in \[1, inf\], got True \(true/false\)",
    ),
    "space_args typo": (
        {"space_args": "{c: 16, nn: 5}"},
        r"experiments\.d1\.space_args\.nn",
        r"unknown argument of space 'nb201' \(did you mean 'n'\?\)",
    ),
    "unknown op to drop": (
        {"space_args": "{c: 16, n: 5, drop_ops: [zero]}"},
        r"experiments\.d1\.space_args\.drop_ops",
        r"unknown 'zero': must be a list of distinct entries of 'none', 'skip_connect', ",
    ),
    "every op dropped": (
        {"space_args": "{c: 16, n: 5, drop_ops: [none, skip_connect, nor_conv_1x1, "
         "nor_conv_3x3, avg_pool_3x3]}"},
        r"experiments\.d1\.space_args\.drop_ops",
        r"may name at most 4 of the 5",
    ),
    "unsupported eval dataset": (
        {"eval_datasets": "[cifar10, svhn]"},
        r"experiments\.d1\.eval_datasets\[1\]",
        r"evaluator 'nb201-table' has no 'svhn' results",
    ),
    "evaluator name typo": (
        {"evaluator": "nb201-tabel"},
        r"experiments\.d1\.evaluator",
        r"unknown evaluator 'nb201-tabel' \(did you mean 'nb201-table'\?\)",
    ),
    "evaluator option typo": (
        {"evaluator": "nb201-api", "evaluator_args": "{sha265: abc}"},
        r"experiments\.d1\.evaluator_args\.sha265",
        r"did you mean 'sha256'",
    ),
    "pin not hex": (
        {"evaluator": "nb201-api", "evaluator_args": "{sha256: abc}"},
        r"experiments\.d1\.evaluator_args",
        r"sha256: 'abc' is not 64 hex digits",
    ),
    "epochs true": (
        {"epochs": "true"},
        r"experiments\.d1\.search\.epochs",
        r"valid integer",
    ),
    "epochs string": (
        {"epochs": '"50"'},
        r"experiments\.d1\.search\.epochs",
        r"valid integer",
    ),
    "budget search override coerced": (
        {"budget_search": ", deterministic: 1"},
        r"budgets\.smoke\.search\.deterministic",
        r"valid boolean, got 1 \(experiment d1\)",
    ),
    "budget selector_args typo": (
        {"budget_extra": "    selector_args: {argmax: {seed: 1}}"},
        r"budgets\.smoke\.selector_args\.argmax\.seed",
        r"takes no arguments",
    ),
    "budget space_args for another space": (
        {"budget_extra": "    space_args_by_space: {nb201: {layers: 3}}"},
        r"budgets\.smoke\.space_args_by_space\.nb201\.layers",
        r"unknown argument of space 'nb201'",
    ),
    "method name typo": (
        {"budget_extra": "    method_args: {dart: {}}"},
        r"budgets\.smoke\.method_args\.dart",
        r"unknown method 'dart' \(did you mean 'darts'\?\)",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_suite(workdir: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    changes, field, problem = CASES[name]
    path = write_suite(workdir / "bad.yaml", **changes)
    err = refused(path, capsys, run=name in ("selector_args typo", "unsupported eval dataset"))
    m = re.fullmatch(rf"{re.escape(str(path))}:(\d+): ({field}): (.*)", err)
    assert m, err
    assert re.search(problem, m.group(3)), err
    # the line points at the offending key
    lines = path.read_text().splitlines()
    last = field.replace("\\", "").split(".")[-1].split("[")[0]
    assert last in lines[int(m.group(1)) - 1], (lines[int(m.group(1)) - 1], err)


def test_method_argument_checked_before_the_search(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in a method's arguments fails at validate, not when the hook is built."""
    path = workdir / "m.yaml"
    text = BASE.format(**DEFAULTS).replace(
        "    methods: [darts]",
        "    methods: [darts_minus]\n    method_args: {darts_minus: {beta_0: 1.0}}",
    )
    path.write_text(text)
    err = refused(path, capsys, run=True)
    assert "experiments.d1.method_args.darts_minus.beta_0" in err
    assert "did you mean 'beta0'" in err


def _as_darts(text: str) -> str:
    # the smoke budget's `n` is an NB201 argument: a DARTS suite would be refused for it
    text = text.replace("space_args: {c: 2, n: 1}", "space_args: {c: 2}")
    return text.replace("space: nb201, dataset", "space: darts, dataset")


def test_retrain_needs_a_recipe_per_eval_dataset(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(
        workdir / "r.yaml",
        space="darts",
        space_args="{c: 16, layers: 8}",
        evaluator="retrain",
        evaluator_args="{recipes: {cifar10: {epochs: 600}}}",
        eval_datasets="[cifar10, cifar100]",
    )
    path.write_text(_as_darts(path.read_text()))
    err = refused(path, capsys)
    assert "experiments.d1.evaluator_args: no recipe for eval dataset(s) ['cifar100']" in err
    path2 = write_suite(
        workdir / "r2.yaml", space="darts", space_args="{c: 16, layers: 8}", evaluator="retrain"
    )
    path2.write_text(_as_darts(path2.read_text()))
    assert "evaluator 'retrain' needs argument 'recipes'" in refused(path2, capsys)


def test_yaml_alias_bomb_is_refused_quickly(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        levels.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = workdir / "bomb.yaml"
    path.write_text("\n".join(levels) + "\nsuite: bomb\n")
    assert len(path.read_bytes()) < 1500  # 10**10 nodes once expanded
    err = refused(path, capsys, run=True)
    assert "YAML aliases expand to more than" in err


def test_recursive_alias_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = workdir / "loop.yaml"
    path.write_text("a: &a [1, *a]\nsuite: loop\n")
    assert "YAML aliases" in refused(path, capsys)


def test_huge_and_binary_files_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = workdir / "huge.yaml"
    huge.write_bytes(b"# padding\n" * (MAX_SUITE_BYTES // 10 + 1))
    assert "a suite is at most" in refused(huge, capsys)
    latin = workdir / "latin.yaml"
    latin.write_bytes(b"suite: x\ntitle: caf\xe9\n")
    err = refused(latin, capsys)
    assert f"{latin}:2: <root>: not UTF-8 text (byte 0xe9" in err
    empty = workdir / "empty.yaml"
    empty.write_text("")
    assert "a suite must be a YAML mapping" in refused(empty, capsys)


@pytest.mark.parametrize("option", ["--search-processes", "--gpus-per-trial", "--seeds"])
def test_non_positive_counts_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path = write_suite(workdir / "ok.yaml")
    assert main(["run", str(path), option, "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"nasrepro: error: {option}: must be at least 1, got 0"
    assert not Path("mlflow.db").exists()


def test_every_component_declares_its_arguments() -> None:
    for kind in ("space", "method", "selector", "evaluator", "dataset"):
        for name in catalog.names(kind):
            assert catalog.declaration(kind, name) is not None, f"{kind} {name} declares nothing"


def test_arg_declarations_are_strict() -> None:
    spec = catalog.Float(0, lo_open=True)
    assert spec.problem(1) is None and spec.problem(0.5) is None
    assert "got True" in spec.problem(True)
    assert "got '0.1'" in spec.problem("0.1")
    assert "(0, inf]" in spec.problem(0.0)
    assert "finite" in spec.problem(float("nan"))
    assert catalog.Int(1, nullable=True).problem(None) is None
    assert "must not be null" in catalog.Int(1).problem(None)
    assert catalog.Choice("a", "b").problem("c") == "must be one of 'a', 'b', got 'c'"
    assert catalog.Choice(1, 2).problem(True) is not None  # True == 1, still not a choice


@pytest.mark.parametrize(
    ("old", "new", "field", "hint"),
    [
        ("    seeds: 2\n", "    seedz: 2\n", "experiments.d1.seedz", "seeds"),
        ("nesterov: true", "nesterv: true", "experiments.d1.search.nesterv", "nesterov"),
        ("  - {id: c1,", "  - {idd: c1,", "claims[0].idd", "id"),
    ],
)
def test_misspelt_keys_get_a_hint(
    workdir: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str, hint: str
) -> None:
    """A misspelt key is reported as the unknown spelling (not as the missing field)."""
    path = workdir / "typo.yaml"
    path.write_text(BASE.format(**DEFAULTS).replace(old, new, 1))
    err = refused(path, capsys)
    assert f": {field}: unknown key (did you mean '{hint}'?)" in err


def test_unknown_budget_search_setting_and_experiment_get_hints(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(workdir / "b.yaml", budget_search=", epoch: 1")
    assert "budgets.smoke.search.epoch: unknown search setting (did you mean 'epochs'?)" in (
        refused(path, capsys)
    )
    ok = write_suite(workdir / "ok.yaml")
    assert main(["run", str(ok), "--budget", "smoke", "--experiment", "d11"]) == 2
    err = _one_line_err(capsys)
    assert "--experiment: no experiment 'd11' in the suite (did you mean 'd1'?)" in err
    assert not Path("mlflow.db").exists()


def _one_line_err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err
