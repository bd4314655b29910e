"""Suites that parse but must not run: includes from outside the repository or too many
bytes of them, ids that collide once YAML reads them or cannot name a file, genotype
strings that would allocate gigabytes, non-finite claims. `validate` and `run` refuse each
with exit 2 and one `file:line: field: problem` line, before any trial, writing nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nasrepro.cli import main
from nasrepro.suite import (
    MAX_GENOTYPE_CHARS,
    MAX_ID_CHARS,
    MAX_INCLUDED_BYTES,
    MAX_INCLUDES,
    load_suite,
)
from tests.hardening_checks import enter_workdir, one_line, tiny_suite, written


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_workdir(tmp_path, monkeypatch)


def refused(path: Path, capsys: pytest.CaptureFixture[str], run: bool = True) -> str:
    """`validate` (and `run` at the smoke budget) exit 2 with the same one line naming
    `path`, and write nothing; returns the line."""
    assert main(["validate", str(path)]) == 2
    err = one_line(capsys.readouterr().err)
    if run:
        assert main(["run", str(path), "--budget", "smoke", "--device", "cpu"]) == 2
        assert one_line(capsys.readouterr().err) == err
    assert not written(Path.cwd()), written(Path.cwd())
    return err


def _experiment(text: str) -> str:
    """The `d1:` block of the tiny suite."""
    return text[text.index("  d1:\n") : text.index("claims:")]


# ---------------------------------------------------------------------------- includes

INCLUDED = """\
experiments:
  shared:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 1
"""


def _including(suite: Path, *names: str) -> Path:
    text = tiny_suite(suite).read_text()
    listed = ", ".join(f"'{n}'" for n in names)
    suite.write_text(text.replace("experiments:\n", f"include: [{listed}]\nexperiments:\n", 1))
    return suite


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "symlink"])
def test_include_outside_the_repository_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    outside = workdir.parent / "elsewhere" / "shared.yaml"
    outside.parent.mkdir()
    outside.write_text(INCLUDED)
    name = {"absolute": str(outside), "dot-dot": "../elsewhere/shared.yaml"}.get(how, "link.yaml")
    if how == "symlink":  # a link inside the suite's folder to a file outside it
        (workdir / "link.yaml").symlink_to(outside)
    path = _including(workdir / "s.yaml", name)
    err = refused(path, capsys)
    assert err.startswith(f"{path}:11: include[0]: "), err
    assert f"{outside} is outside the suite's repository {workdir}" in err
    assert "NASREPRO_INCLUDE_DIRS" in err


def test_include_allow_list_and_repository(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = workdir.parent / "elsewhere" / "shared.yaml"
    outside.parent.mkdir()
    outside.write_text(INCLUDED)
    path = _including(workdir / "s.yaml", "../elsewhere/shared.yaml")
    monkeypatch.setenv("NASREPRO_INCLUDE_DIRS", str(outside.parent))
    assert "shared" in load_suite(path).experiments
    # in a git repository, a suite in suites/ includes from anywhere in the repository
    monkeypatch.delenv("NASREPRO_INCLUDE_DIRS")
    repo = workdir.parent / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "baselines").mkdir()
    (repo / "baselines" / "shared.yaml").write_text(INCLUDED)
    (repo / "suites").mkdir()
    inside = _including(repo / "suites" / "s.yaml", "../baselines/shared.yaml")
    assert "shared" in load_suite(inside).experiments
    escape = _including(repo / "suites" / "t.yaml", "../../elsewhere/shared.yaml")
    err = refused(escape, capsys, run=False)
    assert f"outside the suite's repository {repo}" in err


def test_included_bytes_are_capped_before_reading(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2,000 includes of a 1 MB file used to take 29.5 s; refused in well under a second."""
    padding = "# padding\n" * 100_000  # 1 MB of comments: valid, and holds no experiment
    big = [workdir / f"big{i}.yaml" for i in range(5)]
    for path in big:
        path.write_text("experiments: {}\n" + padding)
    assert sum(p.stat().st_size for p in big) > MAX_INCLUDED_BYTES
    path = _including(workdir / "s.yaml", *(p.name for p in big))
    start = time.monotonic()
    err = refused(path, capsys, run=False)
    assert time.monotonic() - start < 5
    assert f"{path}:11: include[4]: " in err, err
    assert f"included files exceed {MAX_INCLUDED_BYTES:,} bytes" in err
    again = _including(workdir / "t.yaml", *(["big0.yaml"] * 2000))
    start = time.monotonic()
    err = refused(again, capsys)
    assert time.monotonic() - start < 10  # validate and run
    assert f"{again}:11: include: 2,000 files; a suite includes at most {MAX_INCLUDES}" in err
    twice = _including(workdir / "u.yaml", "big0.yaml", "./big0.yaml")
    assert "include[1]: includes ./big0.yaml twice" in refused(twice, capsys, run=False)


# ---------------------------------------------------------------------------------- ids


@pytest.mark.parametrize(("first", "second"), [("1", "'1'"), ("true", "'true'"), ("1.5", '"1.5"')])
def test_ids_that_collide_once_read_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    """`1:` (an int) and `'1':` (a string) were two keys to YAML and one id to the suite:
    the last won silently (epochs 7, not 50)."""
    path = tiny_suite(workdir / "s.yaml")
    text = path.read_text()
    block = _experiment(text)
    twice = block.replace("  d1:", f"  {first}:") + block.replace("  d1:", f"  {second}:").replace(
        "epochs: 50", "epochs: 7"
    )
    path.write_text(text.replace(block, twice).replace("experiment: d1", f"experiment: {second}"))
    err = refused(path, capsys)
    line = text[: text.index("  d1:")].count("\n") + 1 + block.count("\n")
    assert err.startswith(f"{path}:{line}: <root>: invalid YAML: duplicate key "), err
    assert "are the same key once read" in err


def test_ids_that_collide_across_an_include_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = INCLUDED.replace("  shared:", "  1:")
    (workdir / "shared.yaml").write_text(shared)
    path = _including(workdir / "s.yaml", "shared.yaml")
    path.write_text(path.read_text().replace("  d1:", "  '1':").replace("experiment: d1", "experiment: '1'"))
    err = refused(path, capsys)
    assert err.startswith(f"{path}:13: experiments.1: also defined in {workdir / 'shared.yaml'}:2")


@pytest.mark.parametrize(
    ("key", "problem"),
    [("2020-01-01", "is a date, not text: quote it"), ("? [a, b]\n  ", "is a list, not text")],
)
def test_keys_that_are_not_text_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], key: str, problem: str
) -> None:
    path = tiny_suite(workdir / "s.yaml")
    path.write_text(path.read_text().replace("  d1:", f"  {key}:", 1))
    err = refused(path, capsys)
    assert problem in err, err


def test_long_experiment_id_is_refused_before_any_trial(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 300-character id passed validate; the trial ran, then its record could not be
    written ("File name too long")."""
    path = tiny_suite(workdir / "s.yaml")
    long_id = "x" * 300
    path.write_text(path.read_text().replace("d1", long_id))
    err = refused(path, capsys)
    assert err.startswith(f"{path}:12: experiments.{'x' * 20}"), err
    assert f"is 300 characters; an id names a registry folder: at most {MAX_ID_CHARS}" in err
    ok = tiny_suite(workdir / "ok.yaml")
    ok.write_text(ok.read_text().replace("d1", "x" * MAX_ID_CHARS))
    assert main(["validate", str(ok)]) == 0


@pytest.mark.parametrize("bad_id", ["../up", ".hidden", "a/b", "sp ace"])
def test_experiment_ids_are_file_names(
    workdir: Path, capsys: pytest.CaptureFixture[str], bad_id: str
) -> None:
    path = tiny_suite(workdir / "s.yaml")
    path.write_text(path.read_text().replace("  d1:", f"  '{bad_id}':"))
    assert "must be letters, digits, - _ ." in refused(path, capsys, run=False)


# ---------------------------------------------------------------------------- genotypes

GENOTYPE_SUITE = """\
suite: geno
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: geno}}
budgets: {{}}
experiments:
  art:
    genotype: "{genotype}"
    space: darts
    dataset: cifar10
    evaluator: complexity
    eval_datasets: [cifar10]
    seeds: 1
claims:
  - {{id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: darts, dataset: cifar10, metric: params_m, value: 3.3, protocol: cell_property,
     experiment: art}}
"""
CELL = "[('skip_connect', 0), ('skip_connect', 1)]"


def _genotype(concat: str, cell: str = CELL) -> str:
    return f"Genotype(normal={cell}, normal_concat={concat}, reduce={CELL}, reduce_concat=[2])"


def test_genotype_range_is_bounded_before_it_is_built(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 200-byte genotype with normal_concat=range(0, 100000000) took 29 s and 6.9 GB and
    printed a 0.9 GB error line."""
    path = workdir / "g.yaml"
    path.write_text(GENOTYPE_SUITE.format(genotype=_genotype("range(0, 100000000)")))
    assert len(_genotype("range(0, 100000000)")) < 200
    start = time.monotonic()
    err = refused(path, capsys, run=False)
    assert time.monotonic() - start < 5
    assert err.startswith(f"{path}:7: experiments.art.genotype: normal_concat: range(0, 100000000)")
    assert "names 100,000,000 states" in err
    path.write_text(GENOTYPE_SUITE.format(genotype=_genotype("range(2, 3)")))
    assert main(["validate", str(path)]) == 0


def test_genotype_string_length_is_bounded(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = "[" + ", ".join(["('skip_connect', 0), ('skip_connect', 1)"] * 60) + "]"
    genotype = _genotype("[2]", cell)
    assert len(genotype) > MAX_GENOTYPE_CHARS
    path = workdir / "g.yaml"
    path.write_text(GENOTYPE_SUITE.format(genotype=genotype))
    err = refused(path, capsys, run=False)
    assert f"is {len(genotype):,} characters; at most {MAX_GENOTYPE_CHARS:,}" in err


# ------------------------------------------------------------------------------- claims


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400"])
def test_non_finite_claim_values_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """They passed validate and crashed `report`."""
    path = tiny_suite(workdir / "s.yaml")
    path.write_text(path.read_text().replace("value: 54.30", f"value: {value}"))
    err = refused(path, capsys)
    assert err.startswith(f"{path}:23: claims[0].value: input should be a finite number"), err
    (workdir / "registry").mkdir()  # report refuses a registry that does not exist first
    assert main(["report", str(path), "--registry", "registry", "--out", "pages"]) == 2
    assert one_line(capsys.readouterr().err) == err
    assert not (workdir / "pages").exists()


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("value: 54.30", "value: 54.30, std: .inf", "claims[0].std"),
        ("lr: 0.025", "lr: .inf", "experiments.d1.search.lr"),
        ("title: hard}", "title: hard}\nverdict: {z: .nan}", "verdict.z"),
    ],
)
def test_every_number_of_the_schema_is_finite(
    workdir: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    path = tiny_suite(workdir / "s.yaml")
    path.write_text(path.read_text().replace(old, new))
    assert f": {field}: input should be a finite number" in refused(path, capsys, run=False)


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_integers_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], digits: int
) -> None:
    """A 5,000-digit integer used to raise Python's int-conversion limit as a traceback; a
    400-digit one became an infinite claim."""
    path = tiny_suite(workdir / "s.yaml")
    path.write_text(path.read_text().replace("value: 54.30", "value: 1" + "0" * digits))
    err = refused(path, capsys)
    assert err.startswith(f"{path}:23: <root>: invalid YAML: an integer of {digits + 1:,} digits")


def test_the_limits_quoted_in_the_docs_are_the_code_s() -> None:
    from nasrepro.preflight import MIN_FREE_BYTES
    from nasrepro.safe_pickle import MIN_UNFILLED_BYTES
    from nasrepro.spaces.darts import MAX_CELL_STATES

    root = Path(__file__).resolve().parents[1]
    safety = " ".join((root / "docs" / "safety.md").read_text().split())
    plan = " ".join((root / "docs" / "plan.md").read_text().split())
    mib = MAX_INCLUDED_BYTES >> 20
    for quoted in (
        f"at most {MAX_ID_CHARS} characters, checked before anything else",
        f"genotype strings of at most {MAX_GENOTYPE_CHARS:,} characters",
        f"a `range(...)` of at most {MAX_CELL_STATES} states",
        f"at most {MAX_INCLUDES} of them, each once, {mib} MiB together",
        f"less than {MIN_FREE_BYTES >> 20} MiB under the SQLite store",
        f"({MIN_UNFILLED_BYTES >> 20} MiB for a smaller file)",
    ):
        assert quoted in safety, quoted
    assert f"at most {MAX_INCLUDES} files, each once, of at most {mib} MiB together" in plan
