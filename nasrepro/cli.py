"""Command line: `nasrepro run | plan | validate | report | judge | list | info`.

Heavy packages (torch, mlflow) are imported inside the commands so `--help` stays fast.
Exit codes: 0 success, 1 a trial failed while running, 2 invalid input (suite, options,
missing dataset or benchmark file) — reported on one line, before anything is logged.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

from nasrepro import __version__
from nasrepro.registry import default_registry

DEFAULT_SUITES = "suites"


def _fail(message: str, code: int = 2) -> int:
    print(f"nasrepro: error: {message}", file=sys.stderr)
    return code


def _suite_paths(given: list[str]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    return sorted(Path(DEFAULT_SUITES).glob("*.yaml"))


def cmd_validate(args: argparse.Namespace) -> int:
    from nasrepro.suite import SuiteError, load_suite

    code = 0
    for path in args.suites:
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            print(exc, file=sys.stderr)
            code = 2
            continue
        print(
            f"{path}: ok ({len(suite.experiments)} experiments, {len(suite.claims)} claims, "
            f"{len(suite.comparisons)} comparisons)"
        )
    return code


def _artifact_experiments(path: str, given: list[str] | None) -> list[str]:
    """`--artifacts`: the suite's published-cell experiments (within --experiment if given;
    an --experiment the suite lacks is an error, as without --artifacts)."""
    from nasrepro.plan import expand
    from nasrepro.suite import load_suite

    suite = load_suite(path)
    if given:
        expand(suite, path, experiments=given, seeds=1)  # unknown or pending ids: SuiteError
    return [
        e
        for e, exp in suite.experiments.items()
        if exp.is_artifact and not exp.pending and (not given or e in given)
    ]


def _table_experiments(paths: list[str], tables: list[str]) -> dict[str, list[str]]:
    """`--table`: per suite file, the runnable experiments of the claims in those paper
    tables. A table no suite has is an error (with the closest table name)."""
    from nasrepro.suite import SuiteError, load_suite

    chosen: dict[str, list[str]] = {}
    known: set[str] = set()
    for path in paths:
        suite = load_suite(path)
        known |= {c.table for c in suite.claims}
        chosen[path] = sorted(
            {
                str(c.experiment)
                for c in suite.claims
                if c.table in tables
                and c.experiment in suite.experiments
                and not c.not_runnable
                and not suite.experiments[c.experiment].pending
            }
        )
    for table in tables:
        if table not in known:
            hint = _close(table, sorted(known)) or f" (tables: {', '.join(sorted(known))})"
            raise SuiteError(paths[0], None, "--table", f"no claims of table {table!r}{hint}")
    return chosen


def cmd_run(args: argparse.Namespace) -> int:
    from nasrepro.preflight import PreflightError

    if args.ray_address and args.executor != "ray":
        return _fail("--ray-address: goes with --executor ray")
    try:  # seconds, not MLflow's or Ray's minutes of retries; before torch is even imported
        executor = _run_preflight(args)
    except PreflightError as exc:
        return _fail(str(exc), exc.exit_code)
    except ValueError as exc:  # e.g. --gpus-per-trial beyond the visible GPUs
        return _fail(str(exc))
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()
    from nasrepro.api import run_summary
    from nasrepro.datasets.base import DatasetNotFound
    from nasrepro.evaluate.nb201 import Nb201FileError
    from nasrepro.report import build_report, format_summary, summary_table
    from nasrepro.runner import TrialFailed, run_suite
    from nasrepro.suite import SuiteError
    try:
        runs = _run_targets(args)
    except ValueError as exc:
        return _fail(str(exc))
    summaries = []
    paths = [Path(p) for p, _ in runs]
    try:
        by_table = _table_experiments([p for p, _ in runs], args.table) if args.table else {}
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    for path, only in runs:
        try:
            experiments = args.experiment
            if args.table:
                experiments = sorted({*(args.experiment or []), *by_table[path]})
                if not experiments:
                    if not args.json:
                        print(f"{path}: no runnable claims in {', '.join(args.table)}; skipped")
                    continue
            if args.artifacts:
                experiments = _artifact_experiments(path, experiments)
                if not experiments:
                    if not args.json:
                        print(f"{path}: no artifact experiments; nothing to run")
                    continue
            summary = run_suite(
                path,
                budget=args.budget,
                experiments=experiments,
                seeds=args.seeds,
                tracking_uri=args.tracking_uri,
                registry=args.registry,
                data_root=args.data_root,
                device=args.device,
                download=args.download,
                checkpoint_dir=args.checkpoint_dir,
                rerun=args.rerun,
                search_processes=args.search_processes,
                fast=args.fast,
                executor=executor,
                retrain=args.retrain,
                pack=args.pack,
                datasets=args.datasets,
                only=only,
                sequential=None if args.all_seeds else args.min_seeds,
                pack_seeds=args.pack_seeds,
                data_on_device={"auto": None, "yes": True, "no": False}[args.data_on_device],
            )
        except SuiteError as exc:
            print(exc, file=sys.stderr)
            return 2
        except DatasetNotFound as exc:
            hint = "" if args.datasets else " (or run what your data allows: --datasets NAME,...)"
            return _fail(f"{path}: {exc}{hint}")
        except (Nb201FileError, ValueError) as exc:
            return _fail(f"{path}: {exc}")
        except TrialFailed as exc:
            if args.json:
                done = [*summaries, exc.summary] if exc.summary else summaries
                print(json.dumps(run_summary(done, [], exc.failed, str(exc)), indent=2))
            return _fail(str(exc), 1)
        summaries.append(summary)
        if args.json:
            continue
        print(
            f"MLflow runs:       {summary.tracking_uri} (experiment id {summary.experiment_id}, "
            f"{len(summary.run_ids)} parent run(s)); view with `mlflow ui --backend-store-uri "
            f"{summary.tracking_uri}`"
        )
        print(
            f"Registry records:  {len(summary.records)} new under {args.registry}/"
            + (
                f" ({summary.skipped} trial(s) already recorded, skipped)"
                if summary.skipped
                else ""
            )
        )
        for record in summary.records:
            print(f"  {record}")
        if summary.units:
            print(f"Units of work:     {len(summary.units)} computed and recorded in the store")
        if summary.waiting:
            print(f"Waiting:           {len(summary.waiting)} trial(s) not recorded yet")
            for line in summary.waiting:
                print(f"  {line}")
        if summary.skipped_for_data:
            print(f"Skipped for data:  {len(summary.skipped_for_data)} experiment(s)")
            for line in summary.skipped_for_data:
                print(f"  {line}")
        for experiment, why in summary.stopped_early.items():
            print(f"Stopped early:     {experiment}: {why}")
    if not summaries and not Path(args.registry).exists():
        # Nothing ran and nothing was ever recorded there: nothing to summarise or create.
        if args.json:
            print(json.dumps(run_summary([], []), indent=2))
        return 0
    try:  # the registry this run writes: created here when no trial has written it yet
        Path(args.registry).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"--registry {args.registry}: {exc.strerror or exc}")
    rows = summary_table(paths, Path(args.registry))
    if args.out:
        # Only when asked: committed pages under reports/ stay as `nasrepro report` made them.
        build_report(paths, Path(args.registry), Path(args.out))
    if args.json:
        print(json.dumps(run_summary(summaries, rows), indent=2))
        return 0
    if args.out:
        print(f"Report:            {Path(args.out)} (index {Path(args.out) / 'index.md'})")
    else:
        print("Report:            not written (--out DIR writes pages; `nasrepro report` rebuilds)")
    print(format_summary(rows))
    return 0


def _run_targets(args: argparse.Namespace) -> list[tuple[str, list[str] | None]]:
    """(suite path, the trial keys to run or None for all) per suite: the suites given, or
    those of `--plan FILE` with exactly its trials (nasrepro/budget.py); ValueError (one
    line) for a stale plan or options the plan already fixes."""
    from nasrepro.budget import check_plan_file, read_plan_file
    from nasrepro.dataset_selection import parse_datasets

    if args.datasets is not None:
        args.datasets = parse_datasets(args.datasets)
    if args.plan is None:
        if not args.suites:
            raise ValueError("give SUITE files or --plan FILE")
        return [(p, None) for p in args.suites]
    fixed = [o for o, v in (("SUITE", args.suites), ("--experiment", args.experiment),
             ("--table", args.table), ("--datasets", args.datasets), ("--seeds", args.seeds),
             ("--artifacts", args.artifacts)) if v]  # fmt: skip
    if fixed:
        raise ValueError(f"--plan: the plan file fixes the trials; drop {fixed[0]}")
    plan = read_plan_file(Path(args.plan))
    if args.budget not in ("full", plan["budget"]):
        raise ValueError(
            f"--plan: {args.plan} is for budget {plan['budget']!r}, not {args.budget!r}"
        )
    args.budget = plan["budget"]
    return [(p, keys) for p, keys in check_plan_file(Path(args.plan), plan).items() if keys]


def _run_preflight(args: argparse.Namespace) -> object | None:
    """What `run` needs, checked before any suite is run (nasrepro/preflight.py): the
    tracking store, the folders it writes, the executor (Ray installed, its cluster up);
    returns the executor. PreflightError (one line) for the first that cannot be used."""
    from nasrepro.preflight import check_output_dir, check_tracking_uri
    from nasrepro.tracking import resolve_uri

    check_tracking_uri(resolve_uri(args.tracking_uri))
    for option in ("registry", "checkpoint_dir", "out"):
        if getattr(args, option):
            check_output_dir(getattr(args, option), "--" + option.replace("_", "-"))
    executor = _executor(args)
    preflight = getattr(executor, "preflight", None)  # an executor with a cluster checks it
    if preflight is not None:
        preflight()
    return executor


def _executor(args: argparse.Namespace) -> object | None:
    """None = the runner's default local executor (one worker per visible GPU)."""
    if args.pack < 1:
        raise ValueError(f"--pack must be >= 1, got {args.pack}")
    if args.executor == "ray":
        from nasrepro.executor.ray import RayExecutor

        return RayExecutor(address=args.ray_address)
    if args.executor == "slurm":
        from nasrepro.executor.slurm import SlurmExecutor

        return SlurmExecutor.from_options(
            folder=args.slurm_folder,
            partition=args.slurm_partition,
            options=args.slurm_option or [],
            gpus_per_trial=args.gpus_per_trial,
        )
    if args.gpus_per_trial != 1:
        from nasrepro.executor import LocalExecutor
        from nasrepro.runner import resolve_device

        return LocalExecutor.for_device(resolve_device(args.device), args.gpus_per_trial)
    return None


def _registry_dir(path: str, option: str = "--registry") -> str | None:
    """Why `path` cannot be read as a registry, or None: a registry that does not exist is
    an error, never an empty registry (a typo'd --registry would judge nothing)."""
    p = Path(path)
    if not p.exists():
        return f"{option} {path}: the registry directory does not exist"
    if not p.is_dir():
        return f"{option} {path}: not a directory"
    return None


def cmd_report(args: argparse.Namespace) -> int:
    from nasrepro.registry import RegistryError
    from nasrepro.report import build_report, check_report, format_summary, summary_table
    from nasrepro.report.build import dumps, report_json
    from nasrepro.suite import SuiteError

    paths = _suite_paths(args.suites)
    if not paths:
        return _fail(f"no suites given and none found under {DEFAULT_SUITES}/")
    site = Path(args.site) if args.site else None
    for path, option in ((args.registry, "--registry"), (args.verify_against, "--verify-against")):
        problem = _registry_dir(path, option) if path is not None else None
        if problem:
            return _fail(problem)
    if not args.json:
        from nasrepro.preflight import PreflightError, check_output_dir

        try:
            if not args.check:
                check_output_dir(args.out, "--out")
            if site is not None:
                check_output_dir(str(site), "--site")
        except PreflightError as exc:
            return _fail(str(exc), exc.exit_code)
    if args.verify_against is not None:
        from nasrepro.report.verify import verify_against

        try:
            problems = verify_against(args.registry, args.verify_against)
        except RegistryError as exc:
            return _fail(str(exc))
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return _fail(
                f"{len(problems)} record(s) under {args.registry}/ not what the code computes "
                f"({args.verify_against}/ re-derived them)",
                1,
            )
        print(f"{args.registry}/: every record re-derived under {args.verify_against}/")
    try:
        if args.json:
            sys.stdout.write(dumps(report_json(paths, Path(args.registry))))
            return 0
        if args.check:
            problems = check_report(paths, Path(args.registry), Path(args.out), site)
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                return _fail(
                    f"{len(problems)} report file(s) out of date: run `nasrepro report`", 1
                )
            print(f"{args.out}/: up to date with the suites and {args.registry}/")
            if site is not None:
                print(f"site: {site / 'index.html'}")
            return 0
        build_report(paths, Path(args.registry), Path(args.out), site)
        rows = summary_table(paths, Path(args.registry))
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except RegistryError as exc:
        return _fail(str(exc))
    print(format_summary(rows))
    print(f"written: {Path(args.out) / 'index.md'}")
    if site is not None:
        print(f"site:    {site / 'index.html'} (open it in a browser; no server needed)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """`nasrepro plan`: what a run would do and cost, without running (docs/plan.md)."""
    from nasrepro.budget import budget_plan, format_budget, write_plan_file
    from nasrepro.dataset_selection import parse_datasets
    from nasrepro.estimate import devices, step_times
    from nasrepro.plan import build_plan, format_plan
    from nasrepro.registry import RegistryError
    from nasrepro.suite import SuiteError, load_suite

    paths = _suite_paths(args.suites)
    if not paths:
        return _fail(f"no suites given and none found under {DEFAULT_SUITES}/")
    if args.device not in devices():
        hint = _close(args.device, devices()) or f" (known: {', '.join(devices())})"
        return _fail(f"--device: unknown device {args.device!r}{hint}")
    # the default registry may not exist yet (nothing run); one named must
    explicit = args.registry is not None or "NASREPRO_REGISTRY" in os.environ
    args.registry = args.registry or str(default_registry())
    problem = _registry_dir(args.registry) if explicit else None
    if problem:
        return _fail(problem)
    try:
        experiments = list(args.experiment or [])
        if args.table:
            by_table = _table_experiments([str(p) for p in paths], args.table)
            experiments += [e for exps in by_table.values() for e in exps]
            if not experiments:
                return _fail(f"--table: no runnable claims in {', '.join(args.table)}")
        problem = _unknown_experiment(paths, args.experiment or [])
        if problem:
            return _fail(problem)
        datasets = None if args.datasets is None else parse_datasets(args.datasets)
        plan = build_plan(
            paths, args.budget, experiments or None, args.device, args.registry, args.retrain,
            datasets=datasets,
        )  # fmt: skip
        budgeted = None
        if args.gpu_hours is not None:
            suites = [load_suite(p) for p in paths]
            budgeted = budget_plan(plan, suites, args.gpu_hours, args.min_seeds)
            budgeted["datasets"] = datasets
            write_plan_file(Path(args.write), budgeted, paths)
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ValueError, RegistryError) as exc:
        return _fail(str(exc))
    from nasrepro.registry import unreported

    for line in unreported(plan["registry_problems"]):
        print(f"nasrepro: warning: {line}; skipped", file=sys.stderr)
    if budgeted is not None:
        if args.json:  # the totals first: `| head` shows them; the trials last
            trials = budgeted.pop("trials")
            print(json.dumps({**budgeted, "trials": trials}, indent=1))
        else:
            print(format_budget(budgeted))
            print(f"written: {args.write} (run it: nasrepro run --plan {args.write})")
        return 0
    if args.json:  # the totals first: `| head` shows them; the trials last
        first = ("totals", "budget", "device", "fidelity_version", "suites")
        ordered = {**{k: plan[k] for k in first}, **plan}
        print(json.dumps(ordered, indent=1))
    else:
        print(format_plan(plan))
        note = step_times()["devices"][args.device].get("note")
        if note:
            print(f"\nDevice {args.device}: {note}")
    return 0


def _unknown_experiment(paths: list[Path], given: list[str]) -> str | None:
    """A one-line error for an --experiment id no suite defines, with the closest id."""
    from nasrepro.suite import load_suite

    known = sorted({e for p in paths for e in load_suite(p).experiments})
    for exp_id in given:
        if exp_id not in known:
            hint = _close(exp_id, known)
            return f"--experiment: no experiment {exp_id!r} in the suites{hint}"
    return None


def cmd_judge(args: argparse.Namespace) -> int:
    """`nasrepro judge`: numbers from anywhere against one claim, by the reports' rule."""
    from nasrepro.report.judging import format_judgement, judge_numbers, parse_values
    from nasrepro.suite import SuiteError

    try:
        values = parse_values(args.values, "--values")
        select = parse_values(args.select_by, "--select-by") if args.select_by else None
        fields = judge_numbers(args.suite, args.claim_id, values, select)
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(fields, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False))
    else:
        print(format_judgement(fields))
    return 0  # whatever the verdict: the verdict is the output, not a failure


LIST_TITLES = {
    "space": "Spaces",
    "op": "Ops",
    "method": "Methods",
    "selector": "Selectors",
    "dataset": "Datasets",
    "evaluator": "Evaluators",
    "genotype": "Named genotypes (nasrepro info --genotype NAME)",
}


def cmd_list(args: argparse.Namespace) -> int:
    from nasrepro import api

    if args.suite:
        return _list_suite(args.suite, args.json)
    out = api.catalog()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for kind, title in LIST_TITLES.items():
        print(f"{title}:")
        for name, doc in out[kind].items():
            print(f"  {name:<22} {doc}")
    return 0


def _list_suite(path: str, as_json: bool) -> int:
    from tabulate import tabulate

    from nasrepro import api
    from nasrepro.suite import SuiteError

    try:
        rows = api.suite_overview(path)
        suite = api.load(path)
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    budgets = ["full", *(b for b in ("reduced", "smoke") if b in suite.budgets)]
    table = [
        [
            r["experiment"],
            r["space"],
            r["dataset"],
            "+".join(r["methods"]),
            r["selector"],
            r["evaluator"],
            *(("-" if r["pending"] else r["seeds"][b]) for b in budgets),
            r["claims"],
            "pending: " + r["pending"][:60] if r["pending"] else "",
        ]
        for r in rows
    ]
    headers = ["experiment", "space", "data", "methods", "selector", "evaluator"]
    headers += [f"seeds@{b}" for b in budgets] + ["claims", "note"]
    print(tabulate(table, headers=headers, disable_numparse=True))
    runnable = sum(1 for r in rows if not r["pending"])
    linked = sum(r["claims"] for r in rows)
    print(
        f"{suite.suite}: {len(rows)} experiments ({runnable} runnable), budgets "
        f"{', '.join(budgets)}; {len(suite.claims)} claims, {linked} tied to an experiment"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from nasrepro import api
    from nasrepro.suite import SuiteError

    try:
        info = api.network_info(
            space=args.space,
            genotype=args.genotype,
            net=args.net,
            num_classes=args.num_classes,
            image_size=args.image_size,
            suite=args.suite,
            experiment=args.experiment,
            budget=args.budget,
        )
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(info))
        return 0
    what = f"genotype {info['genotype']}" if info.get("genotype") else info["space"]
    print(
        f"{info['network']}: {what} ({info['num_classes']} classes, "
        f"{info['image_size']}x{info['image_size']} input)"
    )
    if "space_args" in info:
        print(f"  space args   {info['space_args']}  (search dataset {info['dataset']})")
    params = info["params"]
    note = " (auxiliary head excluded)" if "evaluation" in info["network"] else ""
    print(f"  params       {params:,} ({params / 1e6:.3f} M){note}")
    print(f"  arch params  {info['arch_params']:,}")
    print(f"  FLOPs        {info['flops']:,} ({info['flops'] / 1e6:.2f} M multiply-adds per image)")
    if info["network"] == api.SEARCH_DISCRETE:
        print("  (the supernet's cells and channels; `--net cifar|imagenet` gives the evaluation")
        print("   network the papers report)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch
    from tabulate import tabulate

    from nasrepro.bench import SWITCHES, device_label, results_path, run_bench, write_results

    # torch.compile costs minutes of CPU compilation: opt-in on CPU, default on CUDA
    device = args.device or ("cuda" if _cuda_available() else "cpu")
    if args.ratios:
        return _bench_ratios(args, device)
    # (cudagraph switches stay in the CPU default: the bench skips them with a note)
    default = SWITCHES if device == "cuda" else tuple(s for s in SWITCHES if "compile" not in s)
    switches = tuple(args.switch or default)
    unknown = [s for s in switches if s not in SWITCHES]
    if unknown:
        return _fail(f"--switch: unknown {unknown[0]!r} (known: {', '.join(SWITCHES)})")
    from nasrepro.preflight import PreflightError, check_output_dir

    try:  # before minutes of timing, not after
        check_output_dir(args.out, "--out")
    except PreflightError as exc:
        return _fail(str(exc), exc.exit_code)
    progress = None if args.json else (lambda line: print(line, file=sys.stderr))
    command = ("nasrepro bench " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])).strip()
    path = results_path(Path(args.out), device_label(torch.device(device)))
    rows = run_bench(
        args.quick,
        device,
        switches,
        args.steps,
        None,
        progress,
        on_row=lambda so_far: write_results(so_far, path, command, False),
    )
    write_results(rows, path, command, True)
    if args.json:
        keys = (
            "space",
            "method",
            "batch",
            "device",
            "step_ms",
            "images_per_s",
            "peak_mem_mb",
            "ratio_to_plain",
            "switch",
            "note",
            "cpu_ms",
            "ratio_to_reference",
        )
        print(json.dumps([{k: getattr(r, k) for k in keys} for r in rows], indent=2))
    else:
        table = [
            [
                r.space,
                r.method,
                r.switch,
                r.batch,
                r.step_ms,
                r.cpu_ms,
                r.images_per_s,
                r.ratio_to_plain,
                r.ratio_to_reference,
                r.max_rel_diff_vs_plain,
            ]
            for r in rows
        ]
        print(
            tabulate(
                table,
                headers=[
                    "space",
                    "method",
                    "switch",
                    "batch",
                    "step ms",
                    "CPU ms",
                    "images/s",
                    "x plain",
                    "x reference",
                    "rel diff",
                ],
            )
        )
        for r in rows:
            if r.note:
                print(f"{r.space} {r.method} {r.switch}: {r.note}")
        clock = rows[0].ratio_clock if rows else None
        print(
            f"device: {rows[0].device if rows else device}; ratios by {clock} time; written: {path}"
        )
    return 0


def _bench_ratios(args: argparse.Namespace, device: str) -> int:
    """`nasrepro bench --ratios`: the step-time ratios behind `nasrepro plan`'s estimates
    (per space, second order, per method), each case beside its reference."""
    import torch
    from tabulate import tabulate

    from nasrepro.bench import RATIO_BATCH, device_label, results_path, run_ratios
    from nasrepro.bench import write_ratio_results as write

    progress = None if args.json else (lambda line: print(line, file=sys.stderr))
    command = ("nasrepro bench " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])).strip()
    label = device_label(torch.device(device))
    path = results_path(Path(args.out), label)
    path = path.with_name(f"{path.stem}-ratios.json")
    rows = run_ratios(
        device,
        args.batch or RATIO_BATCH,
        args.steps or 3,
        args.only,
        progress,
        on_row=lambda so_far: write(so_far, path, command, False),
    )
    write(rows, path, command, True)
    if args.json:
        print(json.dumps([vars(r) for r in rows], indent=2))
        return 0
    table = [[r.group, r.name, r.ratio, r.case_ms, r.reference_ms] for r in rows]
    headers = ["group", "case", "x reference", "case ms", "reference ms"]
    print(tabulate(table, headers=headers))
    print(f"device: {label}; {rows[0].clock if rows else ''} time; written: {path}")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command, option or choice."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def,override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            unknown = next((e for e in extras if e.startswith("-")), extras[0])
            sub = self._command_parser(getattr(ns, "command", None))
            where = sub or self
            known = [o for a in where._actions for o in a.option_strings if o.startswith("--")]
            name = unknown.split("=", 1)[0]
            hint = _close(name, known) if name.startswith("-") else ""
            what = "option" if name.startswith("-") else "argument"
            where.error(f"unrecognized {what} {unknown!r}{hint}")
        return ns

    def _command_parser(self, command: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command:
                found = action.choices.get(command)
                return found if isinstance(found, argparse.ArgumentParser) else None
        return None

    def error(self, message: str):  # type: ignore[no-untyped-def,override]
        """One line, with the closest valid choice when a choice was mistyped."""
        bad = _INVALID_CHOICE.search(message)
        if bad:
            choices = _CHOICES.findall(bad.group(2))
            given = bad.group(1)
            where = message[: bad.start()]  # "argument --budget: ", or nothing for a command
            what = f"{where}invalid choice {given!r}" if where else f"unknown command {given!r}"
            message = what + (_close(given, choices) or f" (choose from {', '.join(choices)})")
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_CHOICES = re.compile(r"'([^']*)'")


def _close(name: str, known: list[str]) -> str:
    """' (did you mean X?)' for the closest of `known`, else ''."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it is None/False or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="nasrepro",
        description="Re-run the claims of DARTS performance-collapse papers.",
        epilog="`nasrepro COMMAND --help` documents each command. Environment: "
        "MLFLOW_TRACKING_URI, NASREPRO_REGISTRY, NASREPRO_DATA_ROOT, NASREPRO_NB201_FILE, "
        "NASREPRO_PROGRESS_INTERVAL (seconds between progress lines in logs, default 5), "
        "NASREPRO_INCLUDE_DIRS (folders outside a suite's repository its include: may read).",
    )
    p.add_argument("--version", action="version", version=f"nasrepro {__version__}")
    _verbosity_flags(p, 0)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registry = str(default_registry())

    r = sub.add_parser("run", help="run suites' experiments and record them")
    r.add_argument(
        "suites", nargs="*", metavar="SUITE", help="suite files, e.g. suites/lambda_darts.yaml"
    )
    r.add_argument(
        "--plan",
        metavar="FILE",
        help="run exactly the trials of a plan file (`nasrepro plan ... --gpu-hours N` writes "
        "one); refused if the suites no longer define them",
    )
    r.add_argument(
        "--datasets",
        metavar="NAME[,NAME]",
        help="only experiments whose search and evaluation (retraining) datasets are all "
        "among these; the others are listed as skipped (default: all, each must be present)",
    )
    r.add_argument(
        "--min-seeds",
        type=int,
        default=3,
        metavar="N",
        help="sequential seeds (full budget): run an experiment's seeds in order and stop once "
        "its claims and the conclusions reading them are decided, never below N seeds",
    )
    r.add_argument(
        "--all-seeds",
        action="store_true",
        help="turn sequential seeds off: every experiment runs all of its seeds",
    )
    r.add_argument(
        "--pack-seeds",
        type=int,
        metavar="K",
        help="search K seeds of a plain first-order experiment as one packed (on a GPU: "
        "CUDA-graphed) step; 1 turns packing off (default: 4 on a GPU where a measured "
        "packed step pays, 1 on a CPU)",
    )
    r.add_argument(
        "--data-on-device",
        choices=("auto", "yes", "no"),
        default="auto",
        help="hold CIFAR/SVHN-sized images on the device and augment them there (auto: on "
        "a GPU)",
    )
    r.add_argument(
        "--artifacts",
        action="store_true",
        help="only the experiments that score a published cell (params/FLOPs, NB201 lookups): "
        "seconds on a CPU",
    )
    r.add_argument(
        "--budget",
        choices=("full", "reduced", "smoke"),
        default="full",
        help="full: the paper's settings (the only budget that judges claims); reduced and "
        "smoke: the suite's declared overrides (`nasrepro list SUITE` shows the seeds)",
    )
    r.add_argument(
        "--experiment",
        action="append",
        metavar="ID",
        help="only this experiment (repeatable; default: every runnable one)",
    )
    r.add_argument(
        "--table",
        action="append",
        metavar="TABLE",
        help='only the experiments of the claims in this paper table, e.g. "Table 2" '
        "(repeatable; the report's \"What is left\" lists them)",
    )
    r.add_argument(
        "--seeds", type=int, metavar="N", help="number of seeds (default: the suite's, per budget)"
    )
    r.add_argument(
        "--tracking-uri",
        help="MLflow URI (default: MLFLOW_TRACKING_URI or sqlite:///./mlflow.db; with SQLite, "
        "artifacts go to mlruns/ beside the database)",
    )
    r.add_argument(
        "--registry", default=registry, help="registry directory (NASREPRO_REGISTRY sets it)"
    )
    r.add_argument(
        "--data-root",
        help="datasets directory (default: NASREPRO_DATA_ROOT, else ~/.cache/nasrepro/data)",
    )
    r.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    r.add_argument(
        "--json",
        action="store_true",
        help="print a machine-readable summary on stdout (trials run/skipped/failed, records, "
        "MLflow ids, verdict counts) instead of the text summary",
    )
    r.add_argument(
        "--download",
        action="store_true",
        help="download missing torchvision datasets (CIFAR, SVHN) into --data-root",
    )
    r.add_argument("--out", help="also write the report pages of these suites here (default: none)")
    r.add_argument(
        "--checkpoint-dir",
        default="checkpoints",
        help="per-epoch checkpoints; a re-run of a killed trial resumes from them",
    )
    r.add_argument(
        "--executor",
        choices=("local", "ray", "slurm"),
        default="local",
        help="local: here, one worker per visible GPU; ray: one Ray task per job; slurm: "
        "Slurm array jobs through submitit, one task per unit or packed group, requeued on "
        "preemption",
    )
    r.add_argument("--ray-address", help="Ray cluster address (default: a local instance)")
    r.add_argument(
        "--slurm-folder",
        default="slurm_jobs",
        help="slurm: where submitit writes job scripts, pickles and logs (shared storage)",
    )
    r.add_argument("--slurm-partition", help="slurm: the partition (default: the cluster's)")
    r.add_argument(
        "--slurm-option",
        action="append",
        metavar="KEY=VALUE",
        help="slurm: another sbatch option, e.g. account=lab or constraint=h100 (repeatable)",
    )
    r.add_argument(
        "--retrain",
        choices=("claims", "all"),
        default="claims",
        help="claims: retrain what some claim reads (best_by_valid and single: the one "
        "selected cell); all: every evaluated dataset of every seed (docs/plan.md)",
    )
    r.add_argument(
        "--pack",
        type=int,
        default=1,
        metavar="N",
        help="run N CIFAR-sized retrainings at once on one device (one cluster job), each in "
        "its own process; whether it pays is a GPU measurement (benchmarks/README.md)",
    )
    r.add_argument(
        "--fast",
        action="store_true",
        help="fp32 speed switches that keep the math, each trial keeping those that win when "
        "timed on its supernet and device: fused NB201 mixed ops, channels_last on a CPU, CUDA "
        "graphs for plain first-order searches on a GPU (benchmarks/README.md)",
    )
    r.add_argument(
        "--search-processes",
        type=int,
        metavar="N",
        help="data-parallel search processes (torchrun; gloo on CPU); default: one per GPU "
        "of the trial for ImageNet searches, else 1",
    )
    r.add_argument(
        "--gpus-per-trial",
        type=int,
        default=1,
        metavar="N",
        help="local executor: N GPUs per worker; retrainings run data-parallel over them "
        "(torchrun + DDP), searches on the first",
    )
    r.add_argument(
        "--rerun",
        action="store_true",
        help="run trials the registry already holds again (adds records)",
    )
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="validate suite files")
    v.add_argument("suites", nargs="+", help="suite files")
    v.set_defaults(func=cmd_validate)

    rep = sub.add_parser("report", help="claimed vs reproduced, from suites + registry")
    rep.add_argument("suites", nargs="*", help=f"default: {DEFAULT_SUITES}/*.yaml")
    rep.add_argument(
        "--registry", default=registry, help="registry directory (NASREPRO_REGISTRY sets it)"
    )
    rep.add_argument("--out", default="reports", help="report directory")
    rep.add_argument(
        "--site",
        metavar="DIR",
        help="also write the pages as a static HTML site here (index.html; with --check, the "
        "site of the regenerated pages)",
    )
    mode = rep.add_mutually_exclusive_group()
    mode.add_argument(
        "--json", action="store_true", help="print every claim and verdict as JSON; write nothing"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the pages under --out differ from regenerated ones (CI)",
    )
    rep.add_argument(
        "--verify-against",
        metavar="DIR",
        help="first exit 1 unless every record under --registry has a record of the same "
        "trial under DIR with the same measured content (CI: DIR re-derived from scratch)",
    )
    rep.set_defaults(func=cmd_report)

    jd = sub.add_parser(
        "judge",
        help="judge numbers produced anywhere against one claim (its protocol, margin and "
        "FLOP convention); exits 0 whatever the verdict",
    )
    jd.add_argument("suite", metavar="SUITE", help="the suite file, e.g. suites/darts_minus.yaml")
    jd.add_argument("claim_id", metavar="CLAIM_ID", help="the claim's id in that suite")
    jd.add_argument(
        "--values",
        required=True,
        help="comma-separated values, one per seed (seed i = the i-th value); FLOPs under the "
        "claim's counting convention",
    )
    jd.add_argument(
        "--select-by",
        help="comma-separated selection values, one per seed (best-of-N claims: the "
        "validation accuracy that picks the seed)",
    )
    jd.add_argument("--json", action="store_true", help="print the judgement as JSON")
    jd.set_defaults(func=cmd_judge)

    pl = sub.add_parser(
        "plan", help="unique trials, cached ones and estimated GPU-hours, without running"
    )
    pl.add_argument("suites", nargs="*", help=f"default: {DEFAULT_SUITES}/*.yaml")
    pl.add_argument(
        "--budget",
        choices=("full", "reduced", "smoke"),
        default="full",
        help="the budget whose trials are listed and estimated",
    )
    pl.add_argument(
        "--experiment", action="append", metavar="ID", help="only this experiment (repeatable)"
    )
    pl.add_argument(
        "--table",
        action="append",
        metavar="TABLE",
        help='only the experiments of the claims in this paper table, e.g. "Table 2" (repeatable)',
    )
    pl.add_argument(
        "--device",
        default="h200",
        help="step times of this device: h200 (measured), h100, a100, v100, rtx4090 (scaled "
        "from published peak figures until measured), cpu-2core",
    )
    pl.add_argument(
        "--datasets",
        metavar="NAME[,NAME]",
        help="only the experiments these datasets allow (as `run --datasets`)",
    )
    pl.add_argument(
        "--gpu-hours",
        type=float,
        metavar="N",
        help="a budgeted plan: the trials deciding the most conclusions, then the most "
        "claims, within N GPU-hours (hours on a CPU device), cheapest decision first; "
        "written to --write for `run --plan`",
    )
    pl.add_argument(
        "--write", default="plan.json", metavar="FILE", help="the plan file of --gpu-hours"
    )
    pl.add_argument(
        "--min-seeds",
        type=int,
        default=3,
        metavar="N",
        help="with --gpu-hours: the minimum of the sequential seeds whose saving is simulated",
    )
    pl.add_argument(
        "--registry",
        default=None,
        help=f"registry directory (NASREPRO_REGISTRY sets it; default {registry}, which may "
        "not exist yet: nothing recorded)",
    )
    pl.add_argument(
        "--retrain",
        choices=("claims", "all"),
        default="claims",
        help="claims: the retrainings some claim reads; all: every evaluated dataset of "
        "every seed",
    )
    pl.add_argument("--json", action="store_true", help="print JSON")
    pl.set_defaults(func=cmd_plan)

    ls = sub.add_parser(
        "list",
        help="spaces, ops, methods, selectors, datasets, evaluators, named genotypes; "
        "or a suite's experiments",
    )
    ls.add_argument(
        "suite",
        nargs="?",
        help="a suite file: its experiments, seeds per budget and claim counts",
    )
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)

    i = sub.add_parser(
        "info",
        help="parameters and FLOPs of a supernet, a genotype's network or an experiment's "
        "supernet, saying which network was measured",
    )
    i.add_argument("--space", help="search space (`nasrepro list`); not needed for a named cell")
    i.add_argument(
        "--genotype",
        help="an NB201 arch string, a DARTS Genotype(...) string, or a named DARTS cell "
        "(e.g. DARTS_V2; `nasrepro list` names them)",
    )
    i.add_argument(
        "--net",
        choices=("cifar", "imagenet", "search"),
        help="cifar / imagenet: the DARTS evaluation network (20 cells, 36 channels / 14, 48) "
        "- the default for a named cell; search: the search-sized discrete network (the "
        "supernet's cells and channels) - the default for --space with a genotype string",
    )
    i.add_argument(
        "--num-classes",
        type=int,
        help="classifier width (default: 1000 for --net imagenet, else 10)",
    )
    i.add_argument(
        "--image-size",
        type=int,
        help="input size (default: 32; 224 for --net imagenet)",
    )
    i.add_argument("--suite", help="with --experiment: the supernet as that experiment builds it")
    i.add_argument("--experiment", metavar="ID", help="an experiment of --suite")
    i.add_argument(
        "--budget",
        choices=("full", "reduced", "smoke"),
        default="full",
        help="budget of --suite/--experiment (smoke and reduced shrink the supernet)",
    )
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)
    from nasrepro.tune import add_tune_parser

    add_tune_parser(sub)

    b = sub.add_parser("bench", help="time one bilevel search step per method and switch")
    b.add_argument("--quick", action="store_true", help="tiny supernet, for CPU/CI")
    b.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    b.add_argument(
        "--switch",
        action="append",
        help="plain, channels_last, compile, fused, cudagraph, fused+cudagraph, "
        "compile+fused, bf16 (repeatable; default: all, compile only on CUDA)",
    )
    b.add_argument("--steps", type=int, help="timed steps per case")
    b.add_argument(
        "--ratios",
        action="store_true",
        help="the step-time ratios `nasrepro plan` scales by: S1-S4 and NB201 against S0, "
        "second order against first per space, each method against plain DARTS on S0",
    )
    b.add_argument("--batch", type=int, help="--ratios: batch size (default 16)")
    b.add_argument(
        "--only", action="append", metavar="GROUP/NAME", help="--ratios: only these cases"
    )
    b.add_argument("--out", default="benchmarks/results", help="folder of the results file")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=cmd_bench)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter  # defaults in --help
        _verbosity_flags(command, argparse.SUPPRESS)  # -q/-v after the command too
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same path as Ctrl-C: runs marked KILLED


def _verbosity_flags(parser: argparse.ArgumentParser, default: object) -> None:
    g = parser.add_argument_group("output")
    g.add_argument(
        "-q", "--quiet", action="count", default=default, help="warnings and errors only"
    )
    g.add_argument("-v", "--verbose", action="count", default=default, help="also debug lines")


def main(argv: list[str] | None = None) -> int:
    from nasrepro.progress import configure
    from nasrepro.tracking import SOURCE_ENV

    args = build_parser().parse_args(argv)
    configure((args.verbose or 0) - (args.quiet or 0))
    # The MLflow source name of every run this command opens (workers inherit it).
    command = ["nasrepro", *(sys.argv[1:] if argv is None else argv)]
    os.environ[SOURCE_ENV] = " ".join(command)[:500]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    for option in ("seeds", "search_processes", "gpus_per_trial", "min_seeds", "pack_seeds"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            return _fail(f"--{option.replace('_', '-')}: must be at least 1, got {value}")
    from nasrepro.registry import unreported

    unreported.reset()  # each command names each bad registry file once
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # `nasrepro plan --json | head`: the reader has what it wanted
        _silence_stdout()
        return 128 + signal.SIGPIPE  # as a process killed by SIGPIPE (`yes | head`)
    except KeyboardInterrupt:
        from nasrepro.tracking import kill_open_runs

        killed = kill_open_runs()
        what = (
            f"{killed} MLflow run(s) marked KILLED. Re-run the same command to resume from "
            "the last epoch checkpoint."
            if killed
            else "no MLflow run had been started."
        )
        print(f"nasrepro: interrupted; {what}", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return _fail(_no_space(exc), 1)
    except Exception as exc:
        from nasrepro.preflight import shown_url
        from nasrepro.tracking import resolve_uri

        uri = shown_url(resolve_uri(getattr(args, "tracking_uri", None)))
        if "database or disk is full" in str(exc):  # SQLite's ENOSPC, via MLflow
            return _fail(f"no space left on device for the MLflow store {uri}", 1)
        if type(exc).__name__ != "MlflowException":
            raise
        # a store the preflight could not judge (e.g. a database of a newer MLflow)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return _fail(f"MLflow store {uri}: {first}", 1)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file (tests capture it): nothing left to flush


def _no_space(exc: OSError) -> str:
    where = exc.filename or "an output file"
    return f"no space left on device writing {where}; free space there and re-run"


if __name__ == "__main__":
    sys.exit(main())
