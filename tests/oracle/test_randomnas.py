"""RandomNAS (Li & Talwalkar, random search with weight sharing) on the DARTS space against the
authors' code, step by step.

NASREPRO_REF_RANDOMNAS names a checkout of liamcli/randomNAS_release and
NASREPRO_REF_RANDOMNAS_DARTS one of liamcli/darts (the fork whose cnn/model_search.py
`Network.forward(input, discrete=True)` the wrapper drives). The test runs the wrapper's own
methods (benchmarks/cnn/darts/darts_wrapper_discrete.py `DartsWrapper.sample_arch`,
`train_batch`, `evaluate`) on a tiny float64 Network with nasrepro's weights copied in. The
harness only makes that 2019 code (PyTorch 0.3.1) run: `.cuda()` is a no-op, `async=True` reads
`non_blocking=True`, `x.data[0]` reads `.item()`, the data set and logging helpers of their
darts/cnn/utils.py (it imports boto3) are stand-ins, and the cosine schedule steps as 0.3.1's
did (epoch e at cosine(e): its constructor reset last_epoch to -1 after its first step).
Both sides draw architectures from numpy's global stream seeded alike, so the weights and BN
statistics after two epochs and the selected architecture must agree bit for bit.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch
from _oracle import checkout, copy_by_structure, reference_modules
from torch import nn

from nasrepro.methods.sampled_paths import Rsps
from nasrepro.search.engine import SearchContext, build_optimizers, weight_step
from nasrepro.search.schedule import cosine_lr
from nasrepro.select.sampled_best import _darts_best, darts_genotype
from nasrepro.spaces import build_space
from nasrepro.suite import SearchSettings

C, LAYERS, CLASSES, BATCH = 4, 3, 10, 4
EPOCHS, STEPS = 2, 3  # two epochs of three batches
LR, LR_MIN, WD, CLIP = 0.025, 0.001, 3e-4, 5.0  # DartsWrapper args (grad_clip from the run)


class _Meter:  # darts/cnn/utils.py AvgrageMeter (logging only)
    def __init__(self) -> None:
        self.sum, self.cnt, self.avg = 0.0, 0, 0.0

    def update(self, val: float, n: int = 1) -> None:
        self.sum += val * n
        self.cnt += n
        self.avg = self.sum / self.cnt


def _accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)):
    """darts/cnn/utils.py accuracy (reshape for today's torch): percent correct in top k."""
    maxk = max(topk)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    return [correct[:k].reshape(-1).double().sum(0).mul_(100.0 / target.size(0)) for k in topk]


class _Cosine:
    """PyTorch 0.3.1 CosineAnnealingLR as DartsWrapper used it: the first step() → epoch 0."""

    def __init__(self, opt: torch.optim.Optimizer, epochs: int) -> None:
        self.opt, self.epochs, self.last_epoch = opt, epochs, -1

    def step(self) -> None:
        self.last_epoch += 1
        for g in self.opt.param_groups:
            g["lr"] = cosine_lr(LR, LR_MIN, self.last_epoch, self.epochs)

    def get_lr(self) -> list[float]:
        return [g["lr"] for g in self.opt.param_groups]


def _wrapper_class(root: Path, darts_cnn: Path):
    """Exec darts_wrapper_discrete.py with its 0.3.1-only spellings patched and stand-ins for
    the modules that cannot load here (torchvision datasets, boto3-importing utils)."""
    src = (root / "benchmarks" / "cnn" / "darts" / "darts_wrapper_discrete.py").read_text()
    src = src.replace("async=True", "non_blocking=True").replace(".data[0]", ".item()")
    utils = types.ModuleType("utils")
    utils.AvgrageMeter = _Meter
    utils.accuracy = _accuracy
    utils.save = lambda model, path: None
    tv = types.ModuleType("torchvision")
    tv.datasets = types.ModuleType("torchvision.datasets")
    stubs = {"utils": utils, "torchvision": tv, "torchvision.datasets": tv.datasets}
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        namespace: dict = {"__name__": "darts_wrapper_discrete"}
        exec(compile(src, str(root / "darts_wrapper_discrete.py"), "exec"), namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return namespace["DartsWrapper"]


def _batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, CLASSES, (BATCH,), generator=g),
        )
        for _ in range(n)
    ]


def test_randomnas_training_and_selection_match_the_authors_code(tmp_path) -> None:
    root = checkout("liamcli/randomNAS_release")
    darts_cnn = checkout("liamcli/darts") / "cnn"
    with reference_modules(darts_cnn, "genotypes", "model_search") as (genotypes, ms):
        assert len(genotypes.PRIMITIVES) == 8 and genotypes.PRIMITIVES[0] == "none"
        Wrapper = _wrapper_class(root, darts_cnn)
        torch.manual_seed(0)
        ref = ms.Network(C, CLASSES, LAYERS, nn.CrossEntropyLoss()).double()
        space = build_space("darts")
        ours = space.build_supernet(CLASSES, c=C, layers=LAYERS, include_none=True).double()
        copy_by_structure(ref, ours, skip_dst=("alphas",))
        train, valid = _batches(STEPS, 1), _batches(7, 2)

        w = Wrapper.__new__(Wrapper)  # __init__ loads CIFAR-10 and sets a CUDA device
        w.args = types.SimpleNamespace(grad_clip=CLIP, report_freq=50, save=str(tmp_path))
        w.model, w.criterion = ref, nn.CrossEntropyLoss()
        w.optimizer = torch.optim.SGD(ref.parameters(), LR, momentum=0.9, weight_decay=WD)
        w.scheduler = _Cosine(w.optimizer, EPOCHS)
        w.train_queue, w.valid_queue = train, valid
        w.train_iter, w.valid_iter = iter(train), iter(valid)
        w.steps = w.epochs = 0
        np.random.seed(5)
        ref_archs = []
        for _ in range(EPOCHS * STEPS):  # Random_NAS.run: get_arch, train_batch
            ref_archs.append(w.sample_arch())
            w.train_batch(ref_archs[-1])

        settings = SearchSettings(
            epochs=EPOCHS, batch_size=BATCH, lr=LR, lr_min=LR_MIN, momentum=0.9,
            nesterov=False, weight_decay=WD, grad_clip=CLIP, arch_lr=3e-4, arch_weight_decay=1e-3,
        )  # fmt: skip
        hook = Rsps()
        ctx = SearchContext(ours, settings, [hook], torch.device("cpu"), nn.CrossEntropyLoss())
        build_optimizers(ctx)
        hook.on_build(ctx)
        assert hook.update_alpha(ctx) is False
        np.random.seed(5)
        ours.train()
        for epoch in range(EPOCHS):
            for g in ctx.w_optimizer.param_groups:
                g["lr"] = cosine_lr(LR, LR_MIN, epoch, EPOCHS)
            for x, y in train:
                weight_step(ctx, x, y)
        ref_state = ref.state_dict()
        our_state = {k: v for k, v in ours.state_dict().items() if "alphas" not in k}
        assert len(ref_state) == len(our_state)
        for (ka, a), b in zip(ref_state.items(), our_state.values(), strict=True):
            assert torch.equal(a, b), ka

        # get_eval_arch's first round, shrunk: 6 candidates on evaluate(arch)'s 10 batches
        # each, the best 3 on evaluate(arch, split='valid') (len(valid_queue) = 7 batches),
        # the validation stream continuing throughout.
        w.valid_iter = iter(valid)
        np.random.seed(20)
        sample_vals = []
        for _ in range(6):
            arch = w.sample_arch()
            sample_vals.append((arch, w.evaluate(arch)))
        sample_vals = sorted(sample_vals, key=lambda v: v[1])
        full_vals = sorted(
            ((a, w.evaluate(a, split="valid")) for a, _ in sample_vals[:3]), key=lambda v: v[1]
        )
        ref_best = full_vals[0][0]
        assert ref_best != sample_vals[0][0]  # seed 20: the full pass overturns the first stage

        class _Passes:
            def __call__(self, k: int):
                return valid

        np.random.seed(20)
        mine, acc = _darts_best(space, ours, _Passes(), n=6, batches=10, finalists=3)
        names = genotypes.PRIMITIVES
        ref_genotype = darts_genotype(space, (tuple(ref_best[0]), tuple(ref_best[1])))
        assert mine == ref_genotype
        assert ref_genotype.normal == tuple((names[k], int(j)) for j, k in ref_best[0])
        assert abs(acc - (1 - full_vals[0][1])) < 1e-9
