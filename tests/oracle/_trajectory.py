"""Search trajectories side by side: nasrepro's `run_search` and a reference loop, compared
after every step.

Both sides start from the same weights, α and batches (float64, CPU). nasrepro runs its
real `run_search` (learning-rate schedule, method hooks, α/weight order, clipping); the
reference side is a loop the test writes from the authors' training script around the
authors' modules (networks, architects, optimizers). `states` collects each side's state
after every step: the weights and buffers in registration order, then α (and β).

`ClipNorms` records the total norm every `clip_grad_norm_` call saw, so a test can show
that its case has the clip acting, on both sides, at the same norms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nasrepro.search.engine import SearchContext, run_search

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
State = list[torch.Tensor]


def make_batches(
    epochs: int,
    steps: int,
    batch: int,
    image: int,
    classes: int,
    seed: int = 0,
) -> list[list[Batch]]:
    """(x_w, y_w, x_a, y_a) per step and epoch: random float64 images, random labels."""
    g = torch.Generator().manual_seed(seed)

    def one() -> Batch:
        x_w, x_a = (
            torch.randn(batch, 3, image, image, generator=g, dtype=torch.float64) for _ in range(2)
        )
        y_w, y_a = (torch.randint(0, classes, (batch,), generator=g) for _ in range(2))
        return x_w, y_w, x_a, y_a

    return [[one() for _ in range(steps)] for _ in range(epochs)]


def state_of(
    module: nn.Module,
    arch: list[torch.Tensor],
    skip: tuple[str, ...] = (),
    leave_out: Callable[[str], bool] = lambda name: False,
) -> State:
    """Weights and buffers of `module` in registration order (entries whose name contains
    one of `skip`, or for which `leave_out(name)` holds, left out), then the architecture
    tensors `arch`."""
    out = [
        v.detach().clone()
        for k, v in module.state_dict().items()
        if not any(s in k for s in skip) and not leave_out(k)
    ]
    return out + [a.detach().clone() for a in arch]


class _Recorder:
    """The loader `run_search` iterates: the given batches, epoch by epoch. Asking for the
    next batch means the previous step is done: its state is recorded then."""

    def __init__(self, epochs: list[list[Batch]], snapshot: Callable[[], State]) -> None:
        self.epochs = epochs
        self.snapshot = snapshot
        self.epoch = 0
        self.states: list[State] = []
        self._started = False

    def __iter__(self) -> Iterator[Batch]:
        batches, self.epoch = self.epochs[self.epoch], self.epoch + 1
        for b in batches:
            if self._started:
                self.states.append(self.snapshot())
            self._started = True
            yield b


def run_nasrepro(
    ctx: SearchContext, epochs: list[list[Batch]], snapshot: Callable[[], State]
) -> list[State]:
    """nasrepro's `run_search` over `epochs`; the state after every step."""
    assert ctx.settings.epochs == len(epochs), (ctx.settings.epochs, len(epochs))
    recorder = _Recorder(epochs, snapshot)
    run_search(ctx, recorder, steps_per_epoch=len(epochs[0]))
    recorder.states.append(snapshot())
    return recorder.states


# Deviations are relative to a tensor's largest magnitude, but not below this: some tensors
# are zero by construction up to rounding (the running means of BN behind an affine-free BN
# and a pooling), where a relative difference would compare rounding noise.
SCALE_FLOOR = 1e-3


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() / max(b.abs().max().item(), SCALE_FLOOR)


def worst_tensors(ours: list[State], theirs: list[State], step: int, n: int = 5) -> list:
    """(position, deviation) of the `n` worst tensors at `step` (to debug a failing oracle)."""
    rows = [
        (i, _rel(a, b))
        for i, (a, b) in enumerate(zip(ours[step], theirs[step], strict=True))
        if b.is_floating_point()
    ]
    return sorted(rows, key=lambda r: -r[1])[:n]


def deviation(ours: list[State], theirs: list[State]) -> list[float]:
    """Per step, the largest |ours − theirs| over every tensor, relative to that tensor's
    largest magnitude (at least SCALE_FLOOR); integer buffers must be equal (0 or inf)."""
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    per_step = []
    for a_state, b_state in zip(ours, theirs, strict=True):
        assert len(a_state) == len(b_state), (len(a_state), len(b_state))
        worst = 0.0
        for a, b in zip(a_state, b_state, strict=True):
            assert a.shape == b.shape, (a.shape, b.shape)
            if not b.is_floating_point():
                worst = max(worst, 0.0 if torch.equal(a, b) else float("inf"))
                continue
            worst = max(worst, _rel(a, b))
        per_step.append(worst)
    return per_step


def assert_within(dev: list[float], tol: float) -> None:
    """Every step's deviation below `tol`; prints them (`pytest -rP` shows the precision
    each oracle reached)."""
    print("deviation per step:", " ".join(f"{d:.1e}" for d in dev), f"(max {max(dev):.1e})")
    assert max(dev) < tol, dev


@dataclass
class ClipNorms:
    """Records (max_norm, total norm) of every `torch.nn.utils.clip_grad_norm_` call while
    active; the references and nasrepro call it through `nn.utils` at call time."""

    calls: list[tuple[float, float]] = field(default_factory=list)

    def __enter__(self) -> ClipNorms:
        self._saved = torch.nn.utils.clip_grad_norm_
        self._saved_old = getattr(torch.nn.utils, "clip_grad_norm", None)

        def spy(params: Any, max_norm: float, *args: Any, **kwargs: Any) -> torch.Tensor:
            total = self._saved(params, max_norm, *args, **kwargs)
            self.calls.append((float(max_norm), float(total)))
            return total

        torch.nn.utils.clip_grad_norm_ = spy  # type: ignore[assignment]
        torch.nn.utils.clip_grad_norm = spy  # type: ignore[attr-defined]  (old scripts' name)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.nn.utils.clip_grad_norm_ = self._saved  # type: ignore[assignment]
        if self._saved_old is None:
            del torch.nn.utils.clip_grad_norm
        else:
            torch.nn.utils.clip_grad_norm = self._saved_old  # type: ignore[attr-defined]

    def acting(self, max_norm: float | None = None) -> int:
        """How many recorded calls (of bound `max_norm`, if given) found a norm above it."""
        return sum(
            1 for m, t in self.calls if t > m and (max_norm is None or m == max_norm)
        )


def same_norms(ours: ClipNorms, theirs: ClipNorms, rtol: float) -> None:
    """Both sides clipped the same number of times at the same norms."""
    assert len(ours.calls) == len(theirs.calls), (len(ours.calls), len(theirs.calls))
    for (m1, t1), (m2, t2) in zip(ours.calls, theirs.calls, strict=True):
        assert m1 == m2
        assert abs(t1 - t2) <= rtol * abs(t2), (t1, t2)
