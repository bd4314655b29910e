"""One rank of a data-parallel retraining: `torchrun ... -m nasrepro.evaluate.retrain_worker
SPEC.json` (started by `nasrepro.distributed.launch`, not by hand).

The spec holds the evaluator's options, the dataset, the genotype, the seed, the stage
checkpoint and where to log; rank 0 logs to MLflow, prints progress for the launcher and
writes the result file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch.distributed as dist

from nasrepro.distributed import PROGRESS_PREFIX, init_from_env


def main(spec_path: str) -> None:
    import nasrepro.builtins  # noqa: F401  (registers datasets)
    from nasrepro.evaluate.retrain import RetrainEvaluator
    from nasrepro.nets.genotypes import get_genotype

    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    ddp, device = init_from_env()
    try:
        evaluator = RetrainEvaluator(**spec["options"])
        log = _mlflow_log(spec.get("tracking")) if ddp.main else (lambda m, s: None)
        values, info = evaluator.train_on(
            spec["dataset"],
            get_genotype(spec["genotype"]),
            spec["data_root"],
            device,
            int(spec["seed"]),
            log,
            lambda line: print(PROGRESS_PREFIX + line, flush=True) if ddp.main else None,
            None if spec["checkpoint"] is None else Path(spec["checkpoint"]),
            ddp,
            channels_last=bool(spec.get("channels_last")),
        )
        if ddp.main:
            Path(spec["result"]).write_text(json.dumps({"values": values, "info": info}))
    finally:
        dist.destroy_process_group()


def _mlflow_log(tracking: dict[str, str] | None) -> Any:
    if not tracking:
        return lambda metrics, step: None
    from nasrepro.tracking import Tracker

    tracker = Tracker(tracking["uri"])
    return lambda metrics, step: tracker.log_metrics(tracking["run_id"], metrics, step)


if __name__ == "__main__":
    main(sys.argv[1])
