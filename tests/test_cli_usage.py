"""What a new user sees of the command line: help text, `list`, `info` labels, environment."""

import argparse
import json

import pytest

from nasrepro.cli import build_parser, main

SUITE = """\
suite: usagetest
version: 1
paper: {file: 003_55655e6ae543df8d.txt, title: usage test}
budgets:
  smoke:
    description: "tests only"
    seeds: 1
    dataset: digits
    search: {epochs: 1, steps_per_epoch: 2, batch_size: 16, image_size: 8}
    space_args: {c: 2, n: 1}
experiments:
  d1:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 3
  d2:
    space: nb201
    dataset: cifar10
    methods: [darts]
    search: {epochs: 50, batch_size: 64, lr: 0.025, lr_min: 0.001, momentum: 0.9,
             weight_decay: 5.0e-4, arch_lr: 3.0e-4, arch_weight_decay: 1.0e-3}
    evaluator: nb201-table
    eval_datasets: [cifar10]
    seeds: 2
    pending: needs a benchmark nobody has
claims:
  - {id: c1, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar10, metric: test_acc, value: 54.30, experiment: d1}
  - {id: c2, paper_file: 003_55655e6ae543df8d.txt, table: Table 1, row: DARTS, method: DARTS,
     space: nb201, dataset: cifar100, metric: test_acc, value: 15.6, experiment: d1}
"""


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_command_is_documented():
    commands = _commands()
    assert {"run", "tune", "list", "info", "report", "validate", "bench"} <= set(commands)
    for name, command in commands.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"nasrepro {name} {action.option_strings or action.dest}: no help"


def test_help_shows_defaults_and_why_budgets_differ(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    run_help = " ".join(capsys.readouterr().out.split())
    assert "(default: full)" in run_help and "(default: checkpoints)" in run_help
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    tune_help = " ".join(capsys.readouterr().out.split())
    assert "default: smoke, unlike `run`'s full" in tune_help
    assert "(default: None)" not in run_help + tune_help


def test_registry_default_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NASREPRO_REGISTRY", str(tmp_path / "elsewhere"))
    for argv in (["run", "s.yaml"], ["report"]):
        assert build_parser().parse_args(argv).registry == str(tmp_path / "elsewhere")
    monkeypatch.delenv("NASREPRO_REGISTRY")
    assert build_parser().parse_args(["report"]).registry == "registry"


def test_list_names_genotypes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Named genotypes" in out and "DARTS_V2" in out and "PC_DARTS" in out
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "DARTS_V2" in listed["genotype"] and "nb201" in listed["space"]


def test_list_suite_shows_experiments_budgets_and_claims(tmp_path, capsys):
    path = tmp_path / "u.yaml"
    path.write_text(SUITE)
    assert main(["list", str(path), "--json"]) == 0
    rows = {r["experiment"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["d1"]["seeds"] == {"full": 3, "smoke": 1} and rows["d1"]["claims"] == 2
    assert rows["d2"]["pending"] == "needs a benchmark nobody has" and rows["d2"]["claims"] == 0
    assert main(["list", str(path)]) == 0
    out = capsys.readouterr().out
    assert "seeds@full" in out and "seeds@smoke" in out and "pending: needs a benchmark" in out
    assert "usagetest: 2 experiments (1 runnable), budgets full, smoke; 2 claims" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace("seeds: 3", "seeds: 0"))
    assert main(["list", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}:")


def test_info_says_which_network_it_measured(capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"  # noqa: E501
    assert main(["info", "--space", "nb201", "--genotype", arch]) == 0
    assert capsys.readouterr().out.startswith("search-sized discrete network: genotype |nor")
    # a named cell needs no --space/--net: its evaluation network, as the papers report
    assert main(["info", "--genotype", "DARTS_V2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 3_349_342  # quark0/darts: "param size = 3.349342MB"
    assert info["network"] == "cifar evaluation network (20 cells, 36 channels)"
    assert main(["info", "--genotype", "DARTS_V2", "--net", "search", "--json"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["network"] == "search-sized discrete network" and small["params"] < 400_000
    assert main(["info", "--genotype", "DARTS_V2", "--net", "imagenet", "--json"]) == 0
    imagenet = json.loads(capsys.readouterr().out)
    assert imagenet["num_classes"] == 1000 and imagenet["image_size"] == 224
    assert main(["info", "--genotype", "not_a_cell"]) == 2


def test_info_of_an_experiment_builds_its_supernet(tmp_path, capsys):
    from nasrepro.complexity import count_params
    from nasrepro.spaces import build_space

    path = tmp_path / "u.yaml"
    path.write_text(SUITE)
    argv = ["info", "--suite", str(path), "--experiment", "d1", "--budget", "smoke", "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    net = build_space("nb201").build_supernet(10, c=2, n=1)  # digits: 10 classes
    assert info["params"] == count_params(net, exclude=tuple(net.arch_parameters()))
    assert info["arch_params"] == 30 and info["image_size"] == 8
    assert info["network"] == "supernet of usagetest/d1 at budget smoke"
    assert main(["info", "--suite", str(path)]) == 2
    assert "--suite and --experiment go together" in capsys.readouterr().err
