"""One rank of a data-parallel trial: `torchrun ... -m nasrepro.trial_worker SPEC.json`
(started by `nasrepro.execute.run_job` through `nasrepro.distributed.launch`).

Every rank searches its slice of each batch (gradients averaged over ranks); rank 0 tracks,
checkpoints, selects, evaluates (a retraining data-parallel again over the same GPUs) and
writes the registry record, whose path it returns in the result file.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import torch.distributed as dist

from nasrepro.distributed import PROGRESS_PREFIX, init_from_env


def main(spec_path: str) -> None:
    from nasrepro.registry import write_record
    from nasrepro.tracking import NullTracker, Tracker
    from nasrepro.trial import execute_trial

    spec = json.loads(Path(spec_path).read_text())
    # The job file is this run's own, written by run_job a moment ago (not foreign input).
    job = pickle.loads(Path(spec["job"]).read_bytes())  # noqa: S301
    ddp, device = init_from_env()
    try:
        record = execute_trial(
            job.trial,
            tracker=Tracker(job.tracking_uri) if ddp.main else NullTracker(),
            experiment_id=job.experiment_id,
            parent_run_id=job.parent_run_id,
            data_root=job.data_root,
            device=str(device),
            eval_device=spec["eval_device"],
            progress=(lambda line: print(PROGRESS_PREFIX + line, flush=True))
            if ddp.main
            else (lambda line: None),
            checkpoint_dir=job.checkpoint_dir,
            ddp=ddp,
            fast=job.fast,
        )
        if ddp.main:
            assert record is not None
            path = write_record(job.registry, record)
            Path(spec["result"]).write_text(json.dumps({"record": str(path)}))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
