"""Suite validation: every malformed suite gets one `file:line: field: problem` line."""

import pytest

from nasrepro.suite import SuiteError, load_suite

VALID = """\
suite: demo
version: 1
paper:
  file: 003_55655e6ae543df8d.txt
  title: Demo
budgets:
  smoke:
    description: tiny
    seeds: 1
    dataset: digits
    search: {epochs: 1, steps_per_epoch: 2}
experiments:
  darts1:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search:
      epochs: 50
      batch_size: 64
      lr: 0.025
      lr_min: 0.001
      momentum: 0.9
      weight_decay: 5.0e-4
      arch_lr: 3.0e-4
      arch_weight_decay: 1.0e-3
    eval_datasets: [cifar10]
    seeds: 4
claims:
  - id: c1
    paper_file: 003_55655e6ae543df8d.txt
    table: Table 1
    row: DARTS (1st)
    method: DARTS (1st)
    space: nb201
    dataset: cifar10
    metric: test_acc
    value: 54.30
    std: 0.0
    n_seeds: 4
    experiment: darts1
"""


def _write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_valid_suite_loads(tmp_path):
    suite = load_suite(_write(tmp_path, VALID))
    assert suite.experiments["darts1"].search.order == 1
    assert suite.claims[0].value == 54.30


def test_shipped_suites_validate():
    from pathlib import Path

    paths = sorted(Path(__file__).resolve().parents[1].joinpath("suites").glob("*.yaml"))
    assert paths
    for path in paths:
        load_suite(path)


CASES = [
    # (description, old text, new text, expected line, expected field, expected problem)
    (
        "unknown top-level key",
        "version: 1\n",
        "version: 1\ncolour: red\n",
        3,
        "colour",
        "unknown key",
    ),
    (
        "unknown key in search",
        "      epochs: 50\n",
        "      epochs: 50\n      epoch: 3\n",
        19,
        "experiments.darts1.search.epoch",
        "unknown key",
    ),
    (
        "missing required field",
        "    metric: test_acc\n",
        "",
        29,
        "claims[0].metric",
        "required field is missing",
    ),
    (
        "wrong type",
        "      lr: 0.025\n",
        "      lr: fast\n",
        20,
        "experiments.darts1.search.lr",
        "valid number",
    ),
    (
        "negative learning rate",
        "      lr: 0.025\n",
        "      lr: -0.1\n",
        20,
        "experiments.darts1.search.lr",
        "greater than 0",
    ),
    (
        "unknown metric",
        "    metric: test_acc\n",
        "    metric: accuracy\n",
        36,
        "claims[0].metric",
        "got 'accuracy'",
    ),
    (
        "unknown method",
        "    methods: [darts]\n",
        "    methods: [darts, magic]\n",
        16,
        "experiments.darts1.methods[1]",
        "unknown method 'magic'",
    ),
    (
        "unknown space",
        "    space: nb201\n    dataset: cifar10\n    methods",
        "    space: nb301\n    dataset: cifar10\n    methods",
        14,
        "experiments.darts1.space",
        "unknown space 'nb301'",
    ),
    (
        "unknown dataset",
        "    dataset: cifar10\n    methods",
        "    dataset: cifar11\n    methods",
        15,
        "experiments.darts1.dataset",
        "unknown dataset 'cifar11'",
    ),
    (
        "claim names a missing experiment",
        "    experiment: darts1\n",
        "    experiment: darts9\n",
        40,
        "claims[0].experiment",
        "no experiment 'darts9'",
    ),
    (
        "claim without experiment or reason",
        "    experiment: darts1\n",
        "",
        29,
        "claims[0]",
        "needs `experiment` or a `not_runnable` reason",
    ),
    (
        "duplicate YAML key",
        "  title: Demo\n",
        "  title: Demo\n  title: Again\n",
        6,
        "",
        "duplicate key 'title'",
    ),
    ("invalid YAML", "suite: demo\n", "suite: [demo\n", None, "", "invalid YAML"),
    ("unknown budget name", "  smoke:\n", "  tiny:\n", 7, "budgets.tiny", "'reduced' or 'smoke'"),
    (
        "budget sets an unknown search field",
        "search: {epochs: 1, steps_per_epoch: 2}",
        "search: {epochs: 1, step_per_epoch: 2}",
        11,
        "budgets.smoke.search.step_per_epoch",
        "unknown search setting",
    ),
    (
        "budget sets an invalid value",
        "search: {epochs: 1, steps_per_epoch: 2}",
        "search: {epochs: 0, steps_per_epoch: 2}",
        11,
        "budgets.smoke.search.epochs",
        "greater than 0",
    ),
    (
        "order must be 1 or 2",
        "      epochs: 50\n",
        "      epochs: 50\n      order: 3\n",
        19,
        "experiments.darts1.search.order",
        "got 3",
    ),
    (
        "claim space differs from experiment",
        "    space: nb201\n    dataset: cifar10\n    metric",
        "    space: darts\n    dataset: cifar10\n    metric",
        34,
        "claims[0].space",
        "differs",
    ),
    ("no claims", "claims:\n", "claims: []\n#", 28, "claims", "at least 1 item"),
    ("not a mapping", "suite: demo\n", "- suite\n- demo\n#", 1, "", "must be a YAML mapping"),
]


@pytest.mark.parametrize("desc,old,new,line,field,problem", CASES, ids=[c[0] for c in CASES])
def test_malformed_suite(tmp_path, desc, old, new, line, field, problem):
    assert old in VALID, desc
    text = VALID.replace(old, new, 1)
    if new.endswith("#"):  # cut the rest of the document
        text = text[: text.index(new) + len(new) - 1]
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    assert f": {field or '<root>'}: " in message
    assert err.field == field, message
    assert problem in err.problem, message
    if line is not None:
        assert err.line == line, message
    else:
        assert err.line is not None


def test_missing_file(tmp_path):
    with pytest.raises(SuiteError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_pending_experiment_may_name_future_components_and_is_skipped(tmp_path):
    from nasrepro.plan import expand

    text = VALID.replace(
        "    eval_datasets: [cifar10]\n    seeds: 4\n",
        "    eval_datasets: [cifar10]\n    seeds: 4\n"
        "  future:\n    space: nb301\n    dataset: cifar10\n    methods: [magic]\n"
        "    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,\n"
        "             weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}\n"
        "    evaluator: retrain\n    eval_datasets: [cifar10]\n    seeds: 4\n"
        "    pending: needs the retraining evaluator\n",
    )
    path = _write(tmp_path, text)
    suite = load_suite(path)
    assert suite.experiments["future"].pending
    trials = expand(suite, path, "smoke")
    assert {t.experiment for t in trials} == {"darts1"}
    with pytest.raises(SuiteError, match="pending: needs the retraining evaluator"):
        expand(suite, path, "smoke", experiments=["future"])
    # without `pending`, the same names are errors
    with pytest.raises(SuiteError, match="unknown space .nb301."):
        load_suite(
            _write(tmp_path, text.replace("    pending: needs the retraining evaluator\n", ""))
        )
