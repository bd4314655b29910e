"""The five suites agree with each other and with suites/README.md.

Schema-level validation is in test_suite_validation.py; these tests read the shipped suites
(C YAML loader, no budget resolution, so they run in seconds) and check what a reviewer of
the claims would otherwise check by hand.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from nasrepro.report.analysis import claim_class
from nasrepro.suite import Suite

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def suites() -> dict[str, Suite]:
    out = {}
    for path in SUITES:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506
        out[data["suite"]] = Suite.model_validate(data)
    return out


def test_one_published_number_has_one_protocol_in_every_suite(suites):
    # The same number reproduced by the same experiment in several suites (e.g. Zela et al.'s
    # S1-S4 columns, copied into four papers) must be judged the same way wherever it is
    # copied. Within one paper an "avg." and a "(best)" row may share a value and differ.
    seen: dict[tuple, set[tuple]] = defaultdict(set)
    where: dict[tuple, set[str]] = defaultdict(set)
    for name, suite in suites.items():
        for c in suite.claims:
            if c.experiment is None:
                continue
            key = (c.experiment, c.dataset, c.metric, c.value)
            select = c.resolved_select_by if c.protocol == "best_by_valid" else None
            seen[key].add((name, c.protocol, select))
            where[key].add(name)
    clashes = {
        k: sorted(seen[k])
        for k in seen
        if len(where[k]) > 1 and len({(p, s) for _, p, s in seen[k]}) > 1
    }
    assert not clashes


def test_claim_n_seeds_never_contradicts_its_experiment(suites):
    bad = []
    for name, suite in suites.items():
        for c in suite.claims:
            exp = suite.experiments.get(c.experiment or "")
            if exp is None or c.n_seeds is None or c.protocol in ("single", "cell_property"):
                continue
            if c.n_seeds != exp.seeds:
                bad.append(
                    f"{name}/{c.id}: n_seeds {c.n_seeds} vs {c.experiment} seeds {exp.seeds}"
                )
    assert not bad


def test_runnable_best_by_valid_claims_select_on_a_metric_their_records_have(suites):
    # `retrain` and `nb201-table` records carry no valid_acc: selecting on it would pick no seed.
    bad = [
        f"{name}/{c.id}"
        for name, suite in suites.items()
        for c in suite.claims
        if c.protocol == "best_by_valid"
        and c.experiment is not None
        and suite.experiments[c.experiment].evaluator in ("retrain", "nb201-table")
        and c.resolved_select_by != "search_valid_acc"
    ]
    assert not bad


def test_readme_class_counts_match_the_suites(suites):
    # suites/README.md's summary table: | suite | claims | artifact | GPU + data | not runnable |
    # comparisons | experiments (artifact) |, the numbers `nasrepro report --json` gives.
    text = (ROOT / "suites" / "README.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): [int(x) for x in m.groups()[1:]]
        for m in re.finditer(
            r"^\| (\w+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \((\d+)\) \|$",
            text,
            flags=re.M,
        )
    }
    assert set(rows) == set(suites)
    for name, suite in suites.items():
        classes = Counter(claim_class(suite, c) for c in suite.claims)
        expected = [
            len(suite.claims),
            classes["artifact"],
            classes["needs GPU + data"],
            classes["not runnable"],
            len(suite.comparisons),
            len(suite.experiments),
            sum(1 for e in suite.experiments.values() if e.is_artifact),
        ]
        assert rows[name] == expected, name
