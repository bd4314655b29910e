"""Command line: `nasrepro run | validate | report | list | info`.

Heavy packages (torch, mlflow) are imported inside the commands so `--help` stays fast.
Exit codes: 0 success, 1 a trial failed while running, 2 invalid input (suite, options,
missing dataset or benchmark file) — reported on one line, before anything is logged.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from nasrepro import __version__

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
        print(f"{path}: ok ({len(suite.experiments)} experiments, {len(suite.claims)} claims)")
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()
    from nasrepro.datasets.base import DatasetNotFound
    from nasrepro.evaluate.nb201 import Nb201FileError
    from nasrepro.report import build_report, format_summary, summary_table
    from nasrepro.runner import TrialFailed, run_suite
    from nasrepro.suite import SuiteError

    try:
        summary = run_suite(
            args.suite,
            budget=args.budget,
            experiments=args.experiment,
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
            executor=_executor(args),
        )
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (DatasetNotFound, Nb201FileError, ValueError) as exc:
        return _fail(f"{args.suite}: {exc}")
    except TrialFailed as exc:
        return _fail(str(exc), 1)
    build_report([Path(args.suite)], Path(args.registry), Path(args.out))
    rows = summary_table([Path(args.suite)], Path(args.registry))
    print(
        f"MLflow runs:       {summary.tracking_uri} (experiment id {summary.experiment_id}, "
        f"{len(summary.run_ids)} parent run(s)); view with `mlflow ui --backend-store-uri "
        f"{summary.tracking_uri}`"
    )
    print(
        f"Registry records:  {len(summary.records)} new under {args.registry}/"
        + (f" ({summary.skipped} trial(s) already recorded, skipped)" if summary.skipped else "")
    )
    for path in summary.records:
        print(f"  {path}")
    print(
        f"Report:            {Path(args.out) / (Path(args.suite).stem + '.md')} "
        f"(index {Path(args.out) / 'index.md'})"
    )
    print(format_summary(rows))
    return 0


def _executor(args: argparse.Namespace) -> object | None:
    """None = the runner's default local executor (one worker per visible GPU)."""
    if args.executor == "ray":
        from nasrepro.executor.ray import RayExecutor

        return RayExecutor(address=args.ray_address)
    if args.gpus_per_trial != 1:
        from nasrepro.executor import LocalExecutor
        from nasrepro.runner import resolve_device

        return LocalExecutor.for_device(resolve_device(args.device), args.gpus_per_trial)
    return None


def cmd_report(args: argparse.Namespace) -> int:
    from nasrepro.registry import RegistryError
    from nasrepro.report import build_report, format_summary, summary_table
    from nasrepro.suite import SuiteError

    paths = _suite_paths(args.suites)
    if not paths:
        return _fail(f"no suites given and none found under {DEFAULT_SUITES}/")
    try:
        build_report(paths, Path(args.registry), Path(args.out))
        rows = summary_table(paths, Path(args.registry))
    except SuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except RegistryError as exc:
        return _fail(str(exc))
    print(format_summary(rows))
    print(f"written: {Path(args.out) / 'index.md'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from nasrepro import catalog

    titles = {
        "space": "Spaces",
        "op": "Ops",
        "method": "Methods",
        "selector": "Selectors",
        "dataset": "Datasets",
        "evaluator": "Evaluators",
    }
    out = {kind: catalog.describe(kind) for kind in titles}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for kind, title in titles.items():
        print(f"{title}:")
        for name, doc in out[kind].items():
            print(f"  {name:<22} {doc}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from nasrepro.complexity import count_flops, count_params
    from nasrepro.spaces import build_space

    try:
        space = build_space(args.space)
    except KeyError as exc:
        return _fail(f"--space: {exc.args[0]}")
    size = {"nb201": 32}.get(args.space, 32) if args.image_size is None else args.image_size
    if args.net:
        if args.space != "darts" or not args.genotype:
            return _fail("--net: evaluation networks are for --space darts with --genotype")
        from nasrepro.nets.darts_eval import eval_net_info

        try:
            info = eval_net_info(args.genotype, args.net, args.num_classes, args.image_size)
        except (KeyError, ValueError) as exc:
            return _fail(f"--genotype: {exc}")
        print(
            json.dumps(info)
            if args.json
            else f"darts {args.net} network of {args.genotype}: {info['params']:,} parameters "
            f"(auxiliary head excluded), {info['flops']:,} FLOPs per image"
        )
        return 0
    if args.genotype:
        try:
            genotype = space.parse_genotype(args.genotype)
        except ValueError as exc:
            return _fail(f"--genotype: {exc}")
        net = space.build_network(genotype, args.num_classes)
        arch = 0
        params = count_params(net)
    else:
        net = space.build_supernet(args.num_classes)
        arch = sum(p.numel() for p in net.arch_parameters())
        params = count_params(net, exclude=tuple(net.arch_parameters()))
    flops = count_flops(net, (3, size, size))
    info = {"params": params, "arch_params": arch, "flops": flops}
    if args.json:
        print(json.dumps(info))
    else:
        what = f"genotype {args.genotype}" if args.genotype else "supernet"
        print(f"{args.space} {what} ({args.num_classes} classes, {size}x{size} input):")
        print(f"  params       {params:,} ({params / 1e6:.3f} M)")
        print(f"  arch params  {arch:,}")
        print(f"  FLOPs        {flops:,} ({flops / 1e6:.2f} M multiply-adds per image)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch
    from tabulate import tabulate

    from nasrepro.bench import SWITCHES, device_label, results_path, run_bench, write_results

    # torch.compile costs minutes of CPU compilation: opt-in on CPU, default on CUDA
    device = args.device or ("cuda" if _cuda_available() else "cpu")
    # (cudagraph switches stay in the CPU default: the bench skips them with a note)
    default = SWITCHES if device == "cuda" else tuple(s for s in SWITCHES if "compile" not in s)
    switches = tuple(args.switch or default)
    unknown = [s for s in switches if s not in SWITCHES]
    if unknown:
        return _fail(f"--switch: unknown {unknown[0]!r} (known: {', '.join(SWITCHES)})")
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


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nasrepro",
        description="Re-run the claims of DARTS performance-collapse papers.",
    )
    p.add_argument("--version", action="version", version=f"nasrepro {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a suite's experiments, record them, update its report")
    r.add_argument("suite")
    r.add_argument("--budget", choices=("full", "reduced", "smoke"), default="full")
    r.add_argument(
        "--experiment", action="append", metavar="ID", help="only this experiment (repeatable)"
    )
    r.add_argument("--seeds", type=int, metavar="N", help="number of seeds (overrides suite)")
    r.add_argument(
        "--tracking-uri", help="MLflow URI (default: MLFLOW_TRACKING_URI or sqlite:///./mlflow.db)"
    )
    r.add_argument("--registry", default="registry", help="registry directory")
    r.add_argument("--data-root", help="datasets directory (default: NASREPRO_DATA_ROOT)")
    r.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    r.add_argument(
        "--download",
        action="store_true",
        help="download missing torchvision datasets (CIFAR, SVHN) into --data-root",
    )
    r.add_argument("--out", default="reports", help="report directory")
    r.add_argument(
        "--checkpoint-dir",
        default="checkpoints",
        help="per-epoch checkpoints; a re-run of a killed trial resumes from them",
    )
    r.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: here, one worker per visible GPU; ray: one Ray task per trial",
    )
    r.add_argument("--ray-address", help="Ray cluster address (default: a local instance)")
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
    v.add_argument("suites", nargs="+")
    v.set_defaults(func=cmd_validate)

    rep = sub.add_parser("report", help="claimed vs reproduced, from suites + registry")
    rep.add_argument("suites", nargs="*", help=f"default: {DEFAULT_SUITES}/*.yaml")
    rep.add_argument("--registry", default="registry")
    rep.add_argument("--out", default="reports")
    rep.set_defaults(func=cmd_report)

    ls = sub.add_parser("list", help="spaces, ops, methods, selectors, datasets, evaluators")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    i = sub.add_parser("info", help="parameters and FLOPs of a supernet or a genotype's network")
    i.add_argument("--space", required=True)
    i.add_argument("--genotype", help="genotype string (e.g. an NB201 arch string)")
    i.add_argument("--num-classes", type=int, default=10)
    i.add_argument("--image-size", type=int)
    i.add_argument(
        "--net",
        choices=("cifar", "imagenet"),
        help="the evaluation network (20 cells/36 ch, or 14/48 ImageNet) of a "
        "DARTS-space genotype, named (e.g. DARTS_V2) or as a Genotype(...) string",
    )
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    from nasrepro.tune import add_tune_parser

    add_tune_parser(sub)

    b = sub.add_parser("bench", help="time one bilevel search step per method and switch")
    b.add_argument("--quick", action="store_true", help="tiny supernet, for CPU/CI")
    b.add_argument("--device", choices=("cpu", "cuda"))
    b.add_argument(
        "--switch",
        action="append",
        help="plain, channels_last, compile, fused, cudagraph, fused+cudagraph, "
        "compile+fused, bf16",
    )
    b.add_argument("--steps", type=int, help="timed steps per case")
    b.add_argument("--out", default="benchmarks/results")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same path as Ctrl-C: runs marked KILLED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        return _fail("--seeds: must be at least 1")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(
            "nasrepro: interrupted; MLflow runs marked KILLED. Re-run the same command to "
            "resume from the last epoch checkpoint.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
