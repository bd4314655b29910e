"""One rank of a data-parallel search: `torchrun ... -m nasrepro.trial_worker SPEC.json`
(started by nasrepro/execute.py through `nasrepro.distributed.launch`).

Every rank searches its slice of each batch (gradients averaged over ranks); rank 0 tracks,
checkpoints and selects. For a unit job it records the search and selection units in the
shared store; for a whole trial (`--rerun`) it also evaluates (a retraining data-parallel
again over the same GPUs) and writes the registry record. The paths go to the result file.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import torch.distributed as dist

from nasrepro.distributed import PROGRESS_PREFIX, init_from_env


def main(spec_path: str) -> None:
    from nasrepro.jobs import UnitJob
    from nasrepro.registry import write_record
    from nasrepro.tracking import NullTracker, Tracker
    from nasrepro.trial import execute_trial, run_search_unit

    spec = json.loads(Path(spec_path).read_text())
    # The job file is this run's own, written by execute.py a moment ago (not foreign input).
    job = pickle.loads(Path(spec["job"]).read_bytes())  # noqa: S301
    ddp, device = init_from_env()
    def progress(line: str) -> None:
        if ddp.main:
            print(PROGRESS_PREFIX + line, flush=True)

    tracker = Tracker(job.tracking_uri) if ddp.main else NullTracker()
    try:
        if isinstance(job, UnitJob):  # a search unit and its selection, into the store
            outcome = run_search_unit(
                job.trial,
                tracker=tracker,
                experiment_id=job.experiment_id,
                parent_run_id=job.parent_run_id,
                run_id=job.run_id,
                data_root=job.data_root,
                device=str(device),
                progress=progress,
                checkpoint_dir=job.checkpoint_dir,
                ddp=ddp,
                fast=job.fast,
                store=job.registry,
                data_on_device=job.data_on_device,
            )
            if ddp.main:
                assert outcome is not None and outcome.selection is not None
                result = {"selection": outcome.selection["_path"]}
                Path(spec["result"]).write_text(json.dumps(result))
            return
        record = execute_trial(
            job.trial,
            tracker=tracker,
            experiment_id=job.experiment_id,
            parent_run_id=job.parent_run_id,
            data_root=job.data_root,
            device=str(device),
            eval_device=spec["eval_device"],
            progress=progress,
            checkpoint_dir=job.checkpoint_dir,
            ddp=ddp,
            fast=job.fast,
            retrain=job.retrain,
            data_on_device=job.data_on_device,
        )
        if ddp.main:
            assert record is not None
            path = write_record(job.registry, record)
            Path(spec["result"]).write_text(json.dumps({"record": str(path)}))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
