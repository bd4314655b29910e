"""One GPU session's measurements for benchmarks/README.md, written as they finish.

    python benchmarks/gpu_session.py OUT.json [--tiny]

Rows (each part saved to OUT.json as soon as it is measured, so a session cut short keeps
what it got): the NB201 and DARTS-space first-order step per speed switch (`nasrepro bench`
cases), the retraining step, Λ-DARTS' overhead over DARTS, and several seeds stepped
together. `--tiny` shrinks everything for a dry run on a CPU.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch


def main(out: Path, tiny: bool) -> None:
    from nasrepro.bench import FULL_CASES, QUICK_CASES, device_label, time_case
    from nasrepro.provenance import package_versions
    from nasrepro.search.multiseed import time_multiseed
    from nasrepro.search.overhead import time_lambda_overhead

    dev = torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu")
    steps, warmup = (2, 1) if tiny else (10, 3)
    result: dict[str, Any] = {
        "command": "python benchmarks/gpu_session.py " + " ".join(sys.argv[1:]),
        "device": device_label(dev),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "packages": package_versions(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "parts": {},
    }

    def save() -> None:
        out.write_text(json.dumps(result, indent=2))

    def part(name: str, fn: Any) -> None:
        start = time.perf_counter()
        try:
            result["parts"][name] = fn()
        except Exception as exc:  # noqa: BLE001  (a failed part must not lose the others)
            result["parts"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        print(f"{name}: {time.perf_counter() - start:.1f}s", flush=True)
        save()

    cases = QUICK_CASES if tiny else FULL_CASES
    nb201_1st = cases[0]
    darts_1st = next((c for c in cases if c.space == "darts" and c.method == "darts-1st"), None)
    retrain = next(c for c in cases if c.method == "retrain")

    def rows(case: Any, switches: tuple[str, ...]) -> list[dict[str, Any]]:
        out_rows, plain = [], None
        for switch in switches:
            row = time_case(case, switch, dev, steps, warmup)
            plain = plain or row.step_ms
            row.ratio_to_plain = round(plain / row.step_ms, 3)
            out_rows.append(asdict(row))
            print(f"  {case.space} {case.method} {switch}: {row.step_ms:.1f} ms", flush=True)
        return out_rows

    graph = () if dev.type == "cpu" else ("cudagraph", "fused+cudagraph")
    part("nb201_darts_1st", lambda: rows(nb201_1st, ("plain", "fused", *graph)))
    if darts_1st is not None:
        part("darts_darts_1st", lambda: rows(darts_1st, ("plain", *graph[:1])))
    part("retrain_step", lambda: rows(retrain, ("plain", "channels_last")))
    size = {"space_args": {"c": 4, "n": 1}, "batch": 8, "image_size": 16} if tiny else {}
    part(
        "lambda_overhead",
        lambda: time_lambda_overhead(dev, steps=steps, warmup=warmup, **size),
    )
    ms_args = (
        {"space_args": {"c": 4, "n": 1}, "batch": 8, "image_size": 16}
        if tiny
        else {"space_args": {"c": 16, "n": 5}, "batch": 64, "image_size": 32}
    )
    part(
        "multiseed",
        lambda: [
            time_multiseed(seeds=s, device=dev, steps=steps, warmup=warmup, **ms_args)
            for s in (2, 4)
        ],
    )
    if nb201_1st.space_args.get("n") and not tiny:
        # The whole search at the fastest switch: 50 epochs x 391 steps of 64 (AutoDL).
        best = min(result["parts"]["nb201_darts_1st"], key=lambda r: r.get("step_ms", 1e9))
        result["nb201_50_epoch_search_minutes"] = {
            "switch": best["switch"],
            "minutes": round(50 * 391 * best["step_ms"] / 1e3 / 60, 1),
        }
    save()


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--tiny" in sys.argv[2:])
