"""The Python API: everything the command line does, as functions.

The `nasrepro` command is a thin layer over this module (as `lm_eval` is over
`lm_eval.simple_evaluate`)::

    import nasrepro.api as nr

    trials = nr.plan("suites/lambda_darts.yaml", budget="smoke")          # no training
    summary = nr.run("suites/lambda_darts.yaml", budget="smoke",
                     experiments=["nb201-darts-1st"])                       # RunSummary
    df = nr.load_registry()                    # one row per record, a pandas DataFrame
    rows = nr.report(["suites/lambda_darts.yaml"])    # writes reports/, returns verdicts
    nr.suite_overview("suites/darts_pt.yaml")  # experiments, seeds per budget, claims
    nr.network_info(genotype="DARTS_V2")      # parameters/FLOPs, saying which network

Heavy packages (torch, mlflow, pandas) load inside the functions that need them.
Invalid input raises `nasrepro.suite.SuiteError` (suites, with file:line) or `ValueError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasrepro.plan import BUDGETS, Trial, expand, resolve_experiment
from nasrepro.registry import default_registry, load_records
from nasrepro.suite import Suite, load_suite

if TYPE_CHECKING:
    import pandas as pd

    from nasrepro.report import SummaryRow
    from nasrepro.runner import RunSummary

__all__ = [
    "catalog",
    "load",
    "load_registry",
    "network_info",
    "plan",
    "report",
    "run",
    "run_summary",
    "suite_overview",
]

DEFAULT_SUITES = Path("suites")


def load(suite_path: str | Path) -> Suite:
    """The validated suite (raises SuiteError naming file:line and field)."""
    return load_suite(suite_path)


def plan(
    suite_path: str | Path,
    budget: str = "full",
    experiments: Sequence[str] | None = None,
    seeds: int | None = None,
) -> list[Trial]:
    """The trials `run` would execute at `budget`: one per (experiment, seed), each with its
    resolved config and config hash. Pending experiments are left out."""
    return expand(load_suite(suite_path), suite_path, budget, list(experiments or []), seeds)


def run(suite_path: str | Path, **options: Any) -> RunSummary:
    """Run the suite's trials that the registry does not hold yet (`nasrepro run`).

    Options, all keyword (defaults of `nasrepro run`): budget="full", experiments=None,
    seeds=None, tracking_uri=None (MLFLOW_TRACKING_URI or sqlite:///./mlflow.db),
    registry (NASREPRO_REGISTRY or "registry"), data_root=None (NASREPRO_DATA_ROOT),
    device=None (cuda if available), download=False, checkpoint_dir="checkpoints",
    rerun=False, search_processes=None, fast=False, executor=None (local),
    retrain="claims" (what some claim reads; "all": every evaluated dataset and seed),
    pack=1 (CIFAR retrainings run at once on one device),
    progress (a callable taking one line; default: the `nasrepro` logger),
    datasets=None (only experiments these datasets allow), only=None (a plan's trial keys),
    sequential=None (off; the CLI's default is 3: the minimum seeds before stopping early),
    pack_seeds=None (4 on a GPU where it pays), data_on_device=None (on a GPU).
    Raises SuiteError / ValueError on invalid input, runner.TrialFailed when a trial fails.
    """
    from nasrepro.runner import run_suite

    options.setdefault("registry", default_registry())
    return run_suite(suite_path, **options)


def report(
    suites: Sequence[str | Path] | None = None,
    registry: str | Path | None = None,
    out: str | Path = "reports",
    site: str | Path | None = None,
) -> list[SummaryRow]:
    """Write `out/<suite>.md`, `out/index.md` and the figures from suites + registry
    (default: every suites/*.yaml), and the static HTML site under `site` if given; return
    the verdict counts per suite."""
    from nasrepro.report import build_report, summary_table

    paths = [Path(p) for p in suites] if suites else sorted(DEFAULT_SUITES.glob("*.yaml"))
    reg = Path(registry) if registry is not None else default_registry()
    build_report(paths, reg, Path(out), None if site is None else Path(site))
    return summary_table(paths, reg)


def load_registry(registry: str | Path | None = None, suite: str | None = None) -> pd.DataFrame:
    """Every registry record (of one suite) as a DataFrame, oldest first: one row per
    record with suite, experiment, budget, seed, genotype, one column per
    `<dataset>.<metric>`, fixture flag, wall time, device, created_at, MLflow run id,
    config hash and the record's path."""
    import pandas as pd

    rows = []
    for rec in load_records(registry if registry is not None else default_registry(), suite):
        prov = rec.get("provenance") or {}
        row: dict[str, Any] = {
            "suite": rec["suite"],
            "experiment": rec["experiment"],
            "budget": rec["budget"],
            "seed": rec["seed"],
            "genotype": rec.get("genotype"),
            "space": rec.get("space"),
            "search_dataset": rec.get("search_dataset"),
            "evaluator": (rec.get("evaluation") or {}).get("evaluator"),
            "fixture": bool((rec.get("evaluation") or {}).get("fixture", False)),
            "claim_ids": ",".join(rec.get("claim_ids") or []),
            "wall_time_s": prov.get("wall_time_s"),
            "device": prov.get("device"),
            "created_at": prov.get("created_at"),
            "mlflow_run_id": (rec.get("mlflow") or {}).get("run_id"),
            "config_hash": rec["config_hash"],
            "suite_hash": rec.get("suite_hash"),
            "path": rec["_path"],
        }
        for ds, values in (rec.get("metrics") or {}).items():
            if not isinstance(values, dict):  # a flat metric (search_cost_gpu_days)
                row[ds] = values
                continue
            for metric, value in values.items():
                row[f"{ds}.{metric}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def suite_overview(suite_path: str | Path) -> list[dict[str, Any]]:
    """Per experiment: space, search dataset, methods, selector, evaluator, seeds per budget,
    the number of claims it reproduces, and why it is pending (None when runnable)."""
    suite = load_suite(suite_path)
    out = []
    for exp_id, exp in suite.experiments.items():
        seeds = {}
        for budget in BUDGETS:
            if budget != "full" and budget not in suite.budgets:
                continue
            seeds[budget] = (
                None
                if exp.pending
                else resolve_experiment(suite, exp_id, budget, str(suite_path))[1]
            )
        out.append(
            {
                "experiment": exp_id,
                "space": exp.space,
                "dataset": exp.dataset,
                "methods": list(exp.methods) or ["darts"],
                "selector": exp.selector,
                "evaluator": exp.evaluator,
                "seeds": seeds,
                "claims": sum(1 for c in suite.claims if c.experiment == exp_id),
                "pending": exp.pending,
            }
        )
    return out


def catalog() -> dict[str, dict[str, str]]:
    """Every registered space, op, method, selector, dataset and evaluator with its one-line
    description, and the named DARTS-cell genotypes with where each was published."""
    from nasrepro import catalog as registries
    from nasrepro.nets.genotypes import ALIASES, GENOTYPES

    out = {kind: registries.describe(kind) for kind in registries.KINDS}
    out["genotype"] = {
        name: f"{g.space} space, searched on {g.searched_on}; {g.source.repo} ({g.source_name})"
        for name, g in sorted(GENOTYPES.items())
    }
    out["genotype"].update({alias: f"alias of {target}" for alias, target in ALIASES.items()})
    return out


# --------------------------------------------------------------------------------------
# Network sizes (`nasrepro info`)
# --------------------------------------------------------------------------------------

SEARCH_DISCRETE = "search-sized discrete network"
SUPERNET = "supernet"


def network_info(
    space: str | None = None,
    genotype: str | None = None,
    net: str | None = None,
    num_classes: int | None = None,
    image_size: int | None = None,
    suite: str | Path | None = None,
    experiment: str | None = None,
    budget: str = "full",
) -> dict[str, Any]:
    """Parameters (weights, α apart) and FLOPs (multiply-adds per image) of one network,
    with `network` saying which one was measured:

    - `suite` + `experiment`: the supernet exactly as that experiment builds it at `budget`
      (its space arguments, method hooks, search dataset's classes, channels and size);
    - `genotype` with `net` (cifar | imagenet), or a *named* DARTS genotype alone: the
      evaluation network at the published size (CIFAR 20 cells / 36 channels; ImageNet
      14 / 48, 1000 classes), auxiliary head excluded;
    - `space` + `genotype` string, or `net="search"`: the search-sized discrete network
      (the supernet's cells and channels with the genotype's ops) — much smaller than the
      evaluation network (DARTS_V2: 0.18 M against 3.35 M parameters);
    - `space` alone: the supernet at the space's defaults.
    """
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()
    if suite is not None or experiment is not None:
        if suite is None or experiment is None:
            raise ValueError("--suite and --experiment go together")
        return _experiment_supernet(suite, experiment, budget)
    named = _named_genotype(genotype)
    if named is not None and net is None and space in (None, "darts"):
        net = "cifar"  # a named cell: the network its paper evaluated
    if net == "search":  # the supernet's size with the genotype's ops
        if named is not None:
            genotype, space = named.genotype, space or named.space
        net = None
    if net is not None:
        if genotype is None:
            raise ValueError("--net: give the genotype (--genotype NAME or Genotype(...))")
        if space not in (None, "darts"):
            raise ValueError(f"--net: evaluation networks are for the DARTS space, not {space!r}")
        from nasrepro.nets.darts_eval import NET_DEFAULTS, eval_net_info

        classes = num_classes or (1000 if net == "imagenet" else 10)
        try:
            info = eval_net_info(genotype, net, classes, image_size)
        except KeyError as exc:
            raise ValueError(f"--genotype: {exc.args[0]}") from None
        except ValueError as exc:
            raise ValueError(f"--genotype: {exc}") from None
        cfg = NET_DEFAULTS[net]
        return {
            **info,
            "network": f"{net} evaluation network ({cfg['layers']} cells, "
            f"{cfg['init_channels']} channels)",
            "space": "darts",
            "genotype": genotype,
            "num_classes": classes,
            "image_size": image_size or cfg["image_size"],
        }
    if space is None:
        raise ValueError(
            "--space: required unless --genotype names a DARTS cell or --suite is given"
        )
    info = _space_network(space, genotype, num_classes or 10, image_size or 32, {}, 3)
    if named is not None:
        info["genotype"] = named.name
    return info


def _named_genotype(genotype: str | None) -> Any:
    if genotype is None or genotype.strip().startswith(("Genotype", "|")):
        return None
    import difflib

    from nasrepro.nets.genotypes import genotype_names, lookup

    try:
        return lookup(genotype)
    except KeyError:  # neither an arch string nor a Genotype(...): a name, and not a known one
        names = genotype_names()
        close = difflib.get_close_matches(genotype, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" ({len(names)} known)"
        raise ValueError(
            f"--genotype: unknown genotype {genotype!r}{hint}; `nasrepro list` names them, "
            "or give a Genotype(...) string or an NB201 arch string"
        ) from None


def _space_network(
    space_name: str,
    genotype: str | None,
    num_classes: int,
    image_size: int,
    space_args: dict[str, Any],
    in_channels: int,
) -> dict[str, Any]:
    from nasrepro.complexity import count_flops, count_params
    from nasrepro.spaces import build_space

    try:
        space = build_space(space_name)
    except KeyError as exc:
        raise ValueError(f"--space: {exc.args[0]}") from None
    if genotype:
        try:
            parsed = space.parse_genotype(genotype)
        except ValueError as exc:
            raise ValueError(f"--genotype: {exc}") from None
        network = space.build_network(parsed, num_classes)
        arch, params = 0, count_params(network)
        label = SEARCH_DISCRETE
    else:
        network = space.build_supernet(num_classes, in_channels=in_channels, **space_args)
        arch = sum(p.numel() for p in network.arch_parameters())
        params = count_params(network, exclude=tuple(network.arch_parameters()))
        label = SUPERNET
    return {
        "params": params,
        "arch_params": arch,
        "flops": count_flops(network, (in_channels, image_size, image_size)),
        "network": label,
        "space": space_name,
        "genotype": genotype,
        "num_classes": num_classes,
        "image_size": image_size,
    }


def _experiment_supernet(suite_path: str | Path, experiment: str, budget: str) -> dict[str, Any]:
    from nasrepro import catalog as registries
    from nasrepro.methods.base import build_hooks

    trial = plan(suite_path, budget, [experiment], seeds=1)[0]
    cfg = trial.config
    space_args = dict(cfg["space_args"])
    for hook in build_hooks(cfg["methods"], cfg["method_args"]):
        space_args = hook.configure_space(space_args)
    dataset = registries.get("dataset", cfg["dataset"])
    size = trial.search.image_size or getattr(dataset, "image_size", None) or 32
    info = _space_network(
        cfg["space"],
        None,
        int(dataset.num_classes),
        int(size),
        space_args,
        int(getattr(dataset, "in_channels", 3)),
    )
    info["network"] = f"supernet of {trial.suite}/{experiment} at budget {budget}"
    info.update(experiment=experiment, budget=budget, dataset=cfg["dataset"], space_args=space_args)
    return info


# --------------------------------------------------------------------------------------
# `nasrepro run --json`
# --------------------------------------------------------------------------------------


def run_summary(
    summaries: Sequence[RunSummary],
    rows: Sequence[SummaryRow],
    failed: int = 0,
    error: str | None = None,
) -> dict[str, Any]:
    """The machine-readable summary of a run (one RunSummary per suite it ran): trials
    run / skipped / failed / waiting (with why), the new records and unit records, the
    MLflow locations and the verdict counts."""
    from dataclasses import asdict

    return {  # totals first, the (long) list of records last
        "trials": {
            "run": sum(len(s.records) for s in summaries),
            "skipped": sum(s.skipped for s in summaries),
            "failed": failed,
            "waiting": [w for s in summaries for w in s.waiting],
        },
        "error": error,
        "verdicts": [asdict(r) for r in rows],
        "skipped_for_data": [line for s in summaries for line in s.skipped_for_data],
        "stopped_early": {e: why for s in summaries for e, why in s.stopped_early.items()},
        "units": [str(p) for s in summaries for p in s.units],  # unit records computed
        "mlflow": [
            {
                "tracking_uri": s.tracking_uri,
                "experiment_id": s.experiment_id,
                "parent_run_ids": list(s.run_ids),
                "claims_view_run_id": s.view_run_id,
            }
            for s in summaries
        ],
        "records": [str(p) for s in summaries for p in s.records],
    }
