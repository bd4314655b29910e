"""The full-size NB201 DARTS-1st step on a CPU, every switch beside xautodl's reference step.

    python benchmarks/cpu_side_by_side.py OUT.json [SWITCHES] [ROUNDS] [THREADS]

SWITCHES: comma-separated (default plain,fused,channels_last,fused+channels_last,reference);
ROUNDS: interleaved rounds after one warm-up round (default 3); THREADS: torch threads
(default 1: on a shared, oversubscribed CPU one thread per process keeps the per-process
CPU time a measure of work; OpenMP threads spin while waiting for a descheduled sibling).
Writes rows (wall and CPU-time medians and per-round times, ratios to plain and to the
reference, by CPU time) with the load average before and after, torch version and threads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    switches = (argv[1] if len(argv) > 1 else "plain,fused,channels_last,"
                "fused+channels_last,reference").split(",")  # fmt: skip
    rounds = int(argv[2]) if len(argv) > 2 else 3
    torch.set_num_threads(int(argv[3]) if len(argv) > 3 else 1)
    from nasrepro.bench import FULL_CASES, device_label, time_side_by_side
    from nasrepro.provenance import package_versions

    start, load = time.time(), os.getloadavg()
    rows = time_side_by_side(FULL_CASES[0], switches, torch.device("cpu"), rounds, 1)
    payload = {
        "command": "python benchmarks/cpu_side_by_side.py " + " ".join(argv),
        "created_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        "device": device_label(torch.device("cpu")),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "packages": package_versions(),
        "loadavg_start": load,
        "loadavg_end": os.getloadavg(),
        "seconds": round(time.time() - start, 1),
        "rows": [asdict(r) for r in rows],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    for r in rows:
        print(
            f"{r.switch}: {r.cpu_ms:.0f} ms CPU, {r.step_ms:.0f} ms wall, "
            f"{r.ratio_to_plain}x plain, {r.ratio_to_reference}x reference",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
