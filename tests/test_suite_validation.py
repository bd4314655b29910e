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


# ------------------------------------------------------------------ issue-10 schema fields

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ARTIFACT = f"""\
  optimum:
    genotype: '{OPTIMUM}'
    space: nb201
    dataset: cifar10
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 1
"""
ART_CLAIM = """\
  - id: opt
    paper_file: 003_55655e6ae543df8d.txt
    table: Table 1
    row: optimal
    method: optimal
    space: nb201
    dataset: cifar10
    metric: test_acc
    value: 94.370
    protocol: cell_property
    experiment: optimum
"""


def _with_artifact(extra_claim: str = ART_CLAIM, artifact: str = ARTIFACT) -> str:
    text = VALID.replace("claims:\n", artifact + "claims:\n")
    return text + extra_claim


def test_artifact_experiment_resolves_without_search_and_ignores_budgets(tmp_path):
    from nasrepro.plan import expand

    path = _write(tmp_path, _with_artifact())
    suite = load_suite(path)
    exp = suite.experiments["optimum"]
    assert exp.search is None and exp.is_artifact
    full = [t for t in expand(suite, path, "full") if t.experiment == "optimum"]
    smoke = [t for t in expand(suite, path, "smoke") if t.experiment == "optimum"]
    assert len(full) == len(smoke) == 1
    assert full[0].config == smoke[0].config  # a deterministic evaluator ignores the budget
    assert full[0].config_hash == smoke[0].config_hash and smoke[0].budget == "full"
    assert full[0].given_cell and "search" not in full[0].config
    assert full[0].config["genotype"] == OPTIMUM
    # the printed digits of the value survive (94.370 has three decimals)
    assert suite.claims[1].judged_text == "94.370"


SCHEMA_CASES = [
    (
        "search and genotype together",
        ARTIFACT.replace(
            "    seeds: 1\n",
            "    seeds: 1\n    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, "
            "momentum: 0.9, weight_decay: 3.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}\n",
        ),
        ART_CLAIM,
        "experiments.optimum",
        "exactly one of `search`, `genotype` and `query`",
    ),
    (
        "genotype experiment with methods",
        ARTIFACT.replace("    seeds: 1\n", "    seeds: 1\n    methods: [darts]\n"),
        ART_CLAIM,
        "experiments.optimum",
        "drop methods",
    ),
    (
        "not an NB201 arch string",
        ARTIFACT.replace("skip_connect~0", "sep_conv_3x3~0"),
        ART_CLAIM,
        "experiments.optimum.genotype",
        "unknown NB201 op",
    ),
    (
        "artifact claim with the mean protocol",
        ARTIFACT,
        ART_CLAIM.replace("    protocol: cell_property\n", ""),
        "claims[1].protocol",
        "use protocol cell_property",
    ),
    (
        "cell_property on a searched experiment",
        ARTIFACT,
        ART_CLAIM.replace("experiment: optimum", "experiment: darts1"),
        "claims[1].protocol",
        "needs an experiment with a fixed `genotype`",
    ),
    (
        "retrain_k on a searched experiment",
        ARTIFACT,
        ART_CLAIM.replace("    protocol: cell_property\n", "    protocol: retrain_k\n").replace(
            "experiment: optimum", "experiment: darts1"
        ),
        "claims[1].protocol",
        "its experiment needs a `genotype`",
    ),
    (
        "select_by without best_by_valid",
        ARTIFACT,
        ART_CLAIM.replace(
            "    protocol: cell_property\n",
            "    protocol: cell_property\n    select_by: valid_acc\n",
        ),
        "claims[1]",
        "`select_by` goes only with protocols best_by_valid, best_by_test",
    ),
    (
        "corrected_value without correction",
        ARTIFACT,
        ART_CLAIM.replace("    value: 94.370\n", "    value: 94.370\n    corrected_value: 94.37\n"),
        "claims[1]",
        "`corrected_value` and `correction` go together",
    ),
    (
        "unknown protocol",
        ARTIFACT,
        ART_CLAIM.replace("protocol: cell_property", "protocol: best"),
        "claims[1].protocol",
        "got 'best'",
    ),
    (
        "comparison of different metrics",
        ARTIFACT,
        ART_CLAIM.replace("metric: test_acc", "metric: params_m")
        + "comparisons:\n  - id: cmp\n    paper_file: p.txt\n    table: Table 1\n"
        "    statement: optimal beats DARTS\n    better: opt\n    worse: c1\n",
        "comparisons[0].worse",
        "differ in metric/dataset",
    ),
    (
        "comparison names a missing claim",
        ARTIFACT,
        ART_CLAIM + "comparisons:\n  - id: cmp\n    paper_file: p.txt\n    table: Table 1\n"
        "    statement: optimal beats DARTS\n    better: opt\n    worse: nope\n",
        "comparisons[0].worse",
        "no claim 'nope'",
    ),
]


@pytest.mark.parametrize(
    "desc,artifact,claim,field,problem", SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
def test_malformed_schema_fields(tmp_path, desc, artifact, claim, field, problem):
    path = _write(tmp_path, _with_artifact(claim, artifact))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.field == field, str(info.value)
    assert problem in info.value.problem, str(info.value)


def test_valid_comparison_and_correction_load(tmp_path):
    claim = ART_CLAIM.replace(
        "    value: 94.370\n",
        "    value: 93.37\n    corrected_value: 94.37\n    correction: digit typo\n",
    )
    comp = (
        "comparisons:\n  - id: cmp\n    paper_file: p.txt\n    table: Table 1\n"
        "    statement: optimal beats DARTS\n    better: opt\n    worse: c1\n    margin: 0.5\n"
    )
    suite = load_suite(_write(tmp_path, _with_artifact(claim + comp)))
    assert suite.claims[1].judged_value == 94.37 and suite.claims[1].judged_text == "94.37"
    assert suite.comparisons[0].margin == 0.5
