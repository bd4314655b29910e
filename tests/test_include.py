"""`include:` — experiments defined once in a shared file and used by several suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasrepro.plan import expand
from nasrepro.suite import SuiteError, load_suite

BASELINES = """\
# shared by several papers' suites
experiments:
  nb201-darts-1st:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             nesterov: true, weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 3
"""

HEAD = """\
suite: {name}
version: 1
paper: {{file: 003_55655e6ae543df8d.txt, title: include test}}
budgets:
  smoke:
    description: "tests only"
    seeds: 1
    dataset: digits
    search: {{epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8}}
    space_args: {{c: 2, n: 1}}
"""

CLAIMS = """\
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: nb201-darts-1st}
"""


def _write(tmp_path: Path, name: str, body: str, baselines: str = BASELINES) -> Path:
    (tmp_path / "baselines").mkdir(exist_ok=True)
    (tmp_path / "baselines" / "nb201.yaml").write_text(baselines)
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD.format(name=name) + body + CLAIMS)
    return path


def test_included_experiments_resolve_like_inline_ones(tmp_path):
    included = _write(tmp_path, "a", "include: [baselines/nb201.yaml]\n")
    inline = _write(tmp_path, "b", BASELINES.split("\n", 1)[1])
    a, b = load_suite(included), load_suite(inline)
    assert list(a.experiments) == ["nb201-darts-1st"]
    for budget in ("full", "smoke"):
        ta, tb = expand(a, included, budget), expand(b, inline, budget)
        assert [t.config_hash for t in ta] == [t.config_hash for t in tb]


def test_an_included_file_and_the_suite_add_up(tmp_path):
    own = """\
experiments:
  mine:
    space: nb201
    dataset: cifar10
    search: {epochs: 5, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    eval_datasets: [cifar10]
    seeds: 1
"""
    suite = load_suite(_write(tmp_path, "a", "include: [baselines/nb201.yaml]\n" + own))
    assert list(suite.experiments) == ["nb201-darts-1st", "mine"]


def test_an_error_in_an_included_experiment_names_that_file_and_line(tmp_path):
    bad = BASELINES.replace("seeds: 3", "seeds: 0")
    path = _write(tmp_path, "a", "include: [baselines/nb201.yaml]\n", bad)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    line = bad.splitlines().index("    seeds: 0") + 1
    assert str(err.value).startswith(f"{tmp_path / 'baselines' / 'nb201.yaml'}:{line}: ")
    assert "experiments.nb201-darts-1st.seeds" in str(err.value)


def test_an_id_defined_twice_names_both_places(tmp_path):
    path = _write(tmp_path, "a", "include: [baselines/nb201.yaml]\n" + BASELINES.split("\n", 1)[1])
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and "experiments.nb201-darts-1st" in message
    assert f"also defined in {tmp_path / 'baselines' / 'nb201.yaml'}:3" in message


def test_bad_includes_are_one_line_errors(tmp_path):
    path = _write(tmp_path, "a", "include: [baselines/missing.yaml]\n")
    with pytest.raises(SuiteError, match=r"a\.yaml:\d+: include\[0\]: file not found"):
        load_suite(path)
    path = _write(tmp_path, "a", "include: baselines/nb201.yaml\n")
    with pytest.raises(SuiteError, match=r"include: must be a list of paths"):
        load_suite(path)
    extra = BASELINES + "claims: []\n"
    path = _write(tmp_path, "a", "include: [baselines/nb201.yaml]\n", extra)
    with pytest.raises(SuiteError, match=r"nb201\.yaml:\d+: claims: unknown key"):
        load_suite(path)
