"""Data parallelism: one process per GPU under `torchrun`.

Retraining (`evaluate/retrain.py`) is data-parallel so as to equal one process:

A retraining is split over `world` processes so that it computes what a single process
with the recipe's batch would: every rank takes batch/world images of the same global batch
(`EpochShards`), gradients are averaged by DDP (mean of per-rank mean losses = the global
mean loss), batch norm statistics are synchronised over all ranks (`sync_bn`, default on;
the papers' DataParallel ImageNet runs had per-GPU statistics, which `sync_bn: false`
restores), and gradient clipping sees the averaged gradient. Evaluation shards the test set
and sums the counts. tests/test_ddp.py checks two gloo processes on CPU against one process.

ImageNet proxy searches (PC-DARTS: batch 1024 over 8 GPUs) are data-parallel too
(`trial_worker.py`): every rank draws its slice of each global batch, weight and α gradients
are averaged over ranks before clipping and the optimizer steps, and batch norm keeps
per-process statistics, as PC-DARTS' nn.DataParallel search did.

Devices: a trial's device may name several GPUs, `cuda:0,1,2,3` (`nasrepro run
--gpus-per-trial 4`); an ImageNet search and a retraining run over all of them, other
searches on the first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run (rank 0 of 1 when there is none)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all ranks (the values themselves when alone)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def check_replicas(ddp: Dist, net: nn.Module) -> None:
    """Raise unless every rank holds the same parameters (a data-parallel search whose ranks
    drifted apart would report rank 0's network as if it were the search's)."""
    with torch.no_grad():
        sums = [float(p.double().sum()) for p in net.parameters()]
    everyone = ddp.gather(sums)
    if any(other != everyone[0] for other in everyone[1:]):
        raise RuntimeError("data-parallel search: the ranks' networks differ after the search")


def device_ids(device: str) -> list[int] | None:
    """GPU indices of `cuda:0,1` style devices ([0, 1]); `cuda` = [current]; None for CPU."""
    if not device.startswith("cuda"):
        return None
    _, _, ids = device.partition(":")
    return [int(i) for i in ids.split(",")] if ids else [0]


def primary_device(device: str) -> str:
    """The single device a search (or anything not data-parallel) runs on: `cuda:0,1` →
    `cuda:0`."""
    return device.split(",")[0]


class EpochShards(Sampler[int]):
    """Indices of one epoch for rank `rank` of `world`: a permutation fixed by (seed, epoch)
    — the same in every process and after a resume, without sampler state — of which rank
    r takes every world-th index from r. With batches of batch/world per rank, the ranks'
    k-th batches together are exactly the k-th batch of a single process (world = 1).

    Training drops the len % world tail so ranks stay in step; evaluation (`shuffle=False,
    drop_tail=False`) gives every index to exactly one rank.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        drop_tail: bool = True,
    ) -> None:
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.shuffle, self.drop_tail = shuffle, drop_tail
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=gen).tolist()
        else:
            order = list(range(self.size))
        end = self.size - self.size % self.world if self.drop_tail else self.size
        return order[self.rank : end : self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients (each
    rank's statistics feed every rank's loss)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with statistics over all ranks, for gloo (CPU) runs, where torch's
    SyncBatchNorm does not work. Two-pass mean and variance through the differentiable
    all-reduce, so autograd also sums the statistics' gradients over ranks, as SyncBatchNorm
    does. Running statistics as nn.BatchNorm2d (unbiased variance, momentum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        all_reduce = all_reduce_sum
        assert self.momentum is not None, "cumulative-average batch norm is not supported"
        count = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype)
        total = all_reduce(count.clone())
        mean = all_reduce(x.sum(dim=(0, 2, 3))) / total
        centred = x - mean[None, :, None, None]
        var = all_reduce(centred.pow(2).sum(dim=(0, 2, 3))) / total
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                unbiased = var.detach() * total / max(float(total) - 1.0, 1.0)
                self.running_var.mul_(1 - m).add_(m * unbiased)
                self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def sync_batch_norm(model: nn.Module, cuda: bool) -> nn.Module:
    """torch's SyncBatchNorm on GPUs; `AllReduceBatchNorm2d` on CPU (gloo)."""
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if type(child) is nn.BatchNorm2d:
                new = AllReduceBatchNorm2d(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                )
                new.load_state_dict(child.state_dict())
                setattr(module, name, new)
            else:
                swap(child)

    swap(model)
    return model


def init_from_env() -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes in the environment; (Dist, this rank's
    device). NCCL with one GPU per rank when CUDA is visible, gloo on CPU otherwise."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    cuda = torch.cuda.is_available() and os.environ.get("NASREPRO_DDP_DEVICE") != "cpu"
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank, world), torch.device(f"cuda:{local}" if cuda else "cpu")


def launch(
    module: str,
    spec: dict[str, Any],
    processes: int,
    workdir: Path,
    progress: Callable[[str], None],
    gpus: list[int] | None,
) -> dict[str, Any]:
    """Run `python -m module SPEC.json` under torchrun with `processes` ranks on the GPUs
    `gpus` (None: CPU, gloo) and return the JSON result rank 0 writes to `spec["result"]`.
    Lines rank 0 prints with PROGRESS_PREFIX go to `progress`, the rest to stderr; a failed
    rank makes this raise with its exception's line."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = workdir / "ddp-spec.json", workdir / "ddp-result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
    env = dict(os.environ)
    if gpus is None:
        env["NASREPRO_DDP_DEVICE"] = "cpu"
        env.setdefault("OMP_NUM_THREADS", "1")
    else:
        visible = env.get("CUDA_VISIBLE_DEVICES")
        parent = visible.split(",") if visible else [str(i) for i in range(max(gpus) + 1)]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(parent[i] for i in gpus)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        module,
        str(spec_path),
    ]
    last = "no error message (see the output above)"
    with subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509  (only prctl, async-signal-safe)
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                line = line.rstrip()
                if line.startswith(PROGRESS_PREFIX):
                    progress(line[len(PROGRESS_PREFIX) :])
                elif line:
                    error = _ERROR_LINE.match(line)
                    if error:  # the rank's exception, not torchrun's summary after it
                        last = error.group(1)
                    print(line, file=sys.stderr, flush=True)
            code = proc.wait()
        except BaseException:
            _stop(proc)  # an interrupted launcher must not go on training and logging
            raise
    if code != 0 or not result_path.exists():
        raise RuntimeError(f"data-parallel run of {module} failed (exit {code}): {last}")
    return json.loads(result_path.read_text())


def _die_with_parent() -> None:
    """In the torchrun child: get SIGTERM when the nasrepro process dies, even by SIGKILL
    (Linux PR_SET_PDEATHSIG); torchrun then stops its ranks. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(proc: subprocess.Popen[str], grace: float = 20.0) -> None:
    """SIGTERM (torchrun forwards it to the ranks), then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


PROGRESS_PREFIX = "[nasrepro-ddp] "
_ERROR_LINE = re.compile(r"^(?:\[rank\d+\]: )?([\w.]+(?:Error|Exception|Interrupt): .*)")
