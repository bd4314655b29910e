"""Does bf16 autocast change what NB201 DARTS-1st finds? fp32 vs bf16, same seeds.

Runs suites/lambda_darts.yaml experiment nb201-darts-1st at a budget (default: smoke) for
several seeds, once in fp32 and once with the whole search under
`torch.autocast(device, dtype=torch.bfloat16)` (weights, α and optimizer state stay fp32;
convs and matmuls run in bf16). The search is the runner's own (`plan.expand` for the
config, then what `trial.execute_trial` does up to `run_search`), without MLflow and the
registry. Per seed it reports the argmax genotype, its NB201 200-epoch CIFAR-10 test
accuracy from the embedded table, the final valid accuracy of the search, and how far α
moved apart (max |α_fp32 − α_bf16|, also relative to how far α moved from its init).

    .venv/bin/python benchmarks/bf16_study.py --out benchmarks/results/bf16-study-smoke.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasrepro._compat import ensure_torchvision
from nasrepro.datasets import build_search_data
from nasrepro.methods.base import build_hooks
from nasrepro.plan import Trial, expand
from nasrepro.search.engine import SearchContext, run_search, seed_everything
from nasrepro.spaces import build_space
from nasrepro.suite import load_suite
from nasrepro.trial import build_evaluator

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "lambda_darts.yaml"
EXPERIMENT = "nb201-darts-1st"


def search(trial: Trial, device: torch.device, bf16: bool, jitter: float = 0.0) -> dict[str, Any]:
    """One search of `trial` as execute_trial runs it; α and the history come back.

    `jitter` > 0 (the control): every initial weight is scaled by 1 + jitter·N(0, 1), a
    perturbation far below bf16's rounding, to see how much any tiny change moves the result.
    """
    cfg, settings = trial.config, trial.search
    seed_everything(trial.seed, settings.deterministic)
    data = build_search_data(
        cfg["dataset"],
        root=None,
        batch_size=settings.batch_size,
        seed=trial.seed,
        image_size=settings.image_size,
        train_limit=settings.train_limit,
    )
    space = build_space(cfg["space"])
    hooks = build_hooks(cfg["methods"], cfg["method_args"])
    space_args = dict(cfg["space_args"])
    for hook in hooks:
        space_args = hook.configure_space(space_args)
    net = space.build_supernet(data.num_classes, in_channels=data.in_channels, **space_args)
    alpha0 = net.arch_alpha.detach().clone()
    if jitter:
        gen = torch.Generator().manual_seed(12345)
        with torch.no_grad():
            for p in net.weight_parameters():
                p.mul_(1 + jitter * torch.randn(p.shape, generator=gen))
    ctx = SearchContext(
        supernet=net, settings=settings, hooks=hooks, device=device, criterion=nn.CrossEntropyLoss()
    )
    # Autocast wraps the whole search (both steps); the engine stays untouched.
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )
    start = time.perf_counter()
    with autocast:
        history = run_search(ctx, data.loader, data.steps_per_epoch)
    seconds = time.perf_counter() - start
    genotype = space.format_genotype(space.derive_argmax(net))
    lookup = build_evaluator(cfg).score(genotype, ["cifar10"], ["test_acc"])
    return {
        "alpha": net.arch_alpha.detach().float().cpu(),
        "alpha0": alpha0.float(),
        "genotype": genotype,
        "nb201_index": lookup.arch_index,
        "nb201_cifar10_test_acc": lookup.metrics["cifar10"]["test_acc"],
        "final_valid_acc": history[-1].valid_acc,
        "final_valid_loss": history[-1].valid_loss,
        "final_train_loss": history[-1].train_loss,
        "search_seconds": round(seconds, 2),
        "history": [
            {k: v for k, v in asdict(h).items() if k not in ("alpha", "diagnostics")}
            for h in history
        ],
    }


def _edges_differing(a: str, b: str) -> int:
    ops_a, ops_b = (build_space("nb201").parse_genotype(g).ops for g in (a, b))
    return sum(x != y for x, y in zip(ops_a, ops_b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--jitter", type=float, default=1e-6, help="control: fp32 with weights scaled by 1+j·N"
    )
    args = parser.parse_args()
    ensure_torchvision()
    device = torch.device(args.device)
    trials = expand(load_suite(SUITE), SUITE, args.budget, [EXPERIMENT], seeds=args.seeds)
    rows = []
    for trial in trials:
        fp32 = search(trial, device, bf16=False)
        bf16 = search(trial, device, bf16=True)
        control = search(trial, device, bf16=False, jitter=args.jitter)
        moved = (fp32["alpha"] - fp32["alpha0"]).abs().max().item()
        diff = (fp32["alpha"] - bf16["alpha"]).abs().max().item()
        row = {
            "seed": trial.seed,
            "alpha_max_abs_diff": diff,
            "fp32_alpha_max_abs_move": moved,
            "control_alpha_max_abs_diff": (fp32["alpha"] - control["alpha"]).abs().max().item(),
            # α starts at 1e-3·randn and moves little at the smoke budget: scale the difference
            # by how far fp32 moved α from its (shared) init.
            "alpha_diff_over_fp32_move": diff / moved if moved else None,
            "same_genotype": fp32["genotype"] == bf16["genotype"],
            "edges_differing": _edges_differing(fp32["genotype"], bf16["genotype"]),
            "control_edges_differing": _edges_differing(fp32["genotype"], control["genotype"]),
            **{
                f"{name}_{k}": v
                for name, res in (("fp32", fp32), ("bf16", bf16), ("control", control))
                for k, v in res.items()
                if k not in ("alpha", "alpha0")
            },
        }
        rows.append(row)
        print(
            f"seed {trial.seed}: fp32 {fp32['genotype']} ({fp32['nb201_cifar10_test_acc']:.2f}%)"
            f" | bf16 {bf16['genotype']} ({bf16['nb201_cifar10_test_acc']:.2f}%)"
            f" | control {control['genotype']} ({control['nb201_cifar10_test_acc']:.2f}%)"
            f" | max|Δα| {diff:.3g} (fp32 α moved {moved:.3g})",
            flush=True,
        )
    payload = {
        "study": "bf16 autocast vs fp32, NB201 DARTS-1st",
        "suite": str(SUITE.relative_to(ROOT)),
        "experiment": EXPERIMENT,
        "budget": args.budget,
        "budget_description": trials[0].budget_description,
        "config": trials[0].config,
        "device": f"{args.device} ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "control": f"fp32 with initial weights scaled by 1 + {args.jitter}·N(0, 1)",
        "lookup": "nb201-table: NB201 200-epoch mean CIFAR-10 test accuracy (hp=200)",
        "rows": rows,
    }
    text = json.dumps(payload, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
