"""ENAS on NAS-Bench-201: an LSTM controller samples one cell per step, trained by REINFORCE.

Pham et al., ICML 2018 ("Efficient Neural Architecture Search via Parameter Sharing"), as the
NAS-Bench-201 baseline of Dong & Yang (ICLR 2020) runs it: AutoDL-Projects
exps/NAS-Bench-201-algos/ENAS.py with xautodl/models/cell_searchs/search_model_enas{,_utils}.py
(TinyNetworkENAS, Controller), scripts-search/NAS-Bench-201-algos/ENAS.sh and
configs/nas-benchmark/algos/ENAS.config. Every epoch:

1. `train_shared_cnn`: one pass over the weight split; each step the controller (no gradient)
   samples a cell, shared by every search cell, and the shared weights take an SGD step on it
   with their gradient norm clipped at 5. This is the engine's weight step with the hook's
   sampled path; there is no α step (`update_alpha` is False).
2. `train_controller` (`on_epoch_end`): `train_steps · num_aggregate` samples, each scored by
   the supernet in eval mode on the next validation batch (the validation half with the
   training transform, shuffled, restarted when it runs out). With a the batch accuracy as a
   fraction and H the sampled cell's entropy, the reward is r = a + w_H·H; the baseline is the
   epoch's starting b (the last step's baseline of the previous epoch; a itself in the first
   epoch) moved towards r: b' = b − (1 − bl_dec)(b − r), and the loss −log p(cell)·(r − b')
   (r and b' keep H's gradient, as in the script) is averaged over `num_aggregate` samples
   before the controller's gradient norm is clipped at 5 and Adam steps. Note the script never
   carries b' from step to step within an epoch: every step starts from the epoch's b.
3. The script's per-epoch `get_best_arch` (10 samples) and `valid_func` only log; the final
   cell is `get_best_arch` with `controller_num_samples` (100) samples, selector
   `sampled_best` with `candidates: controller`. The per-epoch logging samples are not drawn
   (the global stream then differs from the script's after the first epoch, not the method).

The controller (`Controller`, after TDeVries/enas_pytorch): a 2-layer LSTM of width 32 reads a
learnt input, then the embedding of each sampled op; its linear head's logits are divided by
the temperature (5) and squashed to tanh_constant·tanh(·) (2.5) before the categorical draw.
Its weights are initialised uniform(−0.1, 0.1) for the input, the first LSTM layer, the
embedding and the head's weight; the rest keep PyTorch's defaults. The weight lr follows
AutoDL's cosine with T_max = 10 epochs over 250 (ENAS.config "T_max": 10): it oscillates with
a period of 20 epochs (`lr_t_max`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.distributions.categorical import Categorical

from nasrepro.catalog import Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.sampled_paths import cycle_batches
from nasrepro.search.schedule import set_cosine_t_max
from nasrepro.spaces.mixed import SampledOps

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

# Stream keys of the controller's passes over the validation split, apart from those of
# `sampled_best` (10**6 + k) and of the engine's own epochs.
_CONTROLLER_PASSES = 2 * 10**6


class Controller(nn.Module):
    """The LSTM policy over one op per edge (search_model_enas_utils.Controller's design)."""

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
        lstm_size: int = 32,
        lstm_layers: int = 2,
        tanh_constant: float = 2.5,
        temperature: float = 5.0,
    ) -> None:
        super().__init__()
        self.num_edges, self.num_ops = num_edges, num_ops
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.empty(1, 1, lstm_size))
        self.lstm = nn.LSTM(input_size=lstm_size, hidden_size=lstm_size, num_layers=lstm_layers)
        self.embedding = nn.Embedding(num_ops, lstm_size)
        self.head = nn.Linear(lstm_size, num_ops)
        for p in (
            self.input_vars,
            self.lstm.weight_hh_l0,
            self.lstm.weight_ih_l0,
            self.embedding.weight,
            self.head.weight,
        ):
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Sample a cell: (Σ log-probability, Σ entropy, op index per edge)."""
        x, state = self.input_vars, None
        log_probs, entropies, cell = [], [], []
        for _ in range(self.num_edges):
            out, state = self.lstm(x, state)
            logits = self.tanh_constant * torch.tanh(self.head(out) / self.temperature)
            dist = Categorical(logits=logits)
            op = dist.sample()
            cell.append(op.item())
            log_probs.append(dist.log_prob(op).view(-1))
            entropies.append(dist.entropy().view(-1))
            x = self.embedding(op)
        return torch.sum(torch.cat(log_probs)), torch.sum(torch.cat(entropies)), cell


def top1_fraction(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The batch's top-1 accuracy as a fraction, a float32 tensor of shape (1,), with the
    arithmetic of AutoDL's `obtain_accuracy(...)[0].view(-1) / 100` (float32 even when the
    supernet is float64: the reward then is float32, as in the script)."""
    correct = (logits.argmax(1) == y).view(-1).float().sum(0, keepdim=True)
    return correct.mul_(100.0 / y.size(0)).view(-1) / 100


@register_method(
    "enas",
    "ENAS: an LSTM controller samples one cell per weight step, trained by REINFORCE",
    args={
        "entropy_weight": Float(0),
        "bl_dec": Float(0, 1),
        "train_steps": Int(1),
        "num_aggregate": Int(1),
        "controller_lr": Float(0, lo_open=True),
        "controller_grad_clip": Float(0, lo_open=True),
        "tanh_constant": Float(0, lo_open=True),
        "temperature": Float(0, lo_open=True),
        "lr_t_max": Int(1, nullable=True),
    },
)
class Enas(MethodHook):
    """Args (ENAS.sh and ENAS.config unless said): entropy_weight 1e-4, bl_dec 0.99,
    train_steps 50, num_aggregate 20, controller_lr 1e-3 (Adam, betas (0, 0.999), eps 1e-3),
    controller_grad_clip 5 (ENAS.py), tanh_constant 2.5 and temperature 5 (Controller's
    defaults), lr_t_max 10 (the weight cosine's T_max; null: the run's epochs)."""

    name = "enas"

    def __init__(
        self,
        entropy_weight: float = 1e-4,  # ENAS.sh --controller_entropy_weight 0.0001
        bl_dec: float = 0.99,  # --controller_bl_dec 0.99
        train_steps: int = 50,  # --controller_train_steps 50
        num_aggregate: int = 20,  # --controller_num_aggregate 20
        controller_lr: float = 1e-3,  # ENAS.config controller_lr
        controller_grad_clip: float = 5.0,  # ENAS.py train_controller clip_grad_norm_(.., 5.0)
        tanh_constant: float = 2.5,  # Controller(tanh_constant=2.5)
        temperature: float = 5.0,  # Controller(temperature=5.0)
        lr_t_max: int | None = 10,  # ENAS.config "T_max": 10
    ) -> None:
        super().__init__()
        self.entropy_weight, self.bl_dec = float(entropy_weight), float(bl_dec)
        self.train_steps, self.num_aggregate = int(train_steps), int(num_aggregate)
        self.controller_lr = float(controller_lr)
        self.controller_grad_clip = float(controller_grad_clip)
        self.tanh_constant, self.temperature = float(tanh_constant), float(temperature)
        self.lr_t_max = lr_t_max
        self.controller: Controller | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.baseline: float | None = None
        self._pending: dict[str, Any] | None = None

    def on_build(self, ctx: SearchContext) -> None:
        alphas = ctx.supernet.arch_parameters()
        if len(alphas) != 1 or set(ctx.supernet.cell_alpha_index()) != {0}:
            raise ValueError(
                "method 'enas' samples one cell for the whole network: it needs a supernet "
                "with one cell shared by every search cell (space nb201)"
            )
        edges, ops = alphas[0].shape
        dtype = alphas[0].dtype
        self.controller = Controller(
            edges, ops, tanh_constant=self.tanh_constant, temperature=self.temperature
        ).to(device=ctx.device, dtype=dtype)
        # ENAS.config: controller_betas [0, 0.999], controller_eps 0.001
        self.optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=self.controller_lr, betas=(0.0, 0.999), eps=1e-3
        )
        if self._pending is not None:
            self._load(self._pending)
            self._pending = None

    def on_epoch_start(self, ctx: SearchContext) -> None:
        if self.lr_t_max is not None:
            set_cosine_t_max(ctx, self.lr_t_max, "method 'enas': lr_t_max")

    def sample(self) -> list[int]:
        """One cell from the controller, without a gradient (the weight step's and the
        final selection's draws)."""
        assert self.controller is not None, "enas: the controller is built in on_build"
        was_training = self.controller.training
        self.controller.eval()
        try:
            with torch.no_grad():
                return self.controller()[2]
        finally:
            self.controller.train(was_training)

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        path = SampledOps(torch.tensor(self.sample(), device=ctx.device))
        return [path] * ctx.supernet.num_search_cells  # type: ignore[attr-defined,list-item]

    def update_alpha(self, ctx: SearchContext) -> bool:
        return False  # ENAS has no α: the controller is trained at the epoch's end

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        if ctx.valid_batches is None:
            raise ValueError("method 'enas' trains its controller on the validation split")
        make = ctx.valid_batches
        epoch = ctx.epoch

        def passes(k: int) -> Any:  # the validation half with the training transform
            return make(_CONTROLLER_PASSES + epoch * 10**4 + k, augment=True, shuffle=True)

        return self.train_controller(ctx.supernet, cycle_batches(passes, "enas"), ctx.device)

    def train_controller(
        self, supernet: Any, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
        device: torch.device,
    ) -> dict[str, float]:  # fmt: skip
        """ENAS.py `train_controller` for one epoch; returns the epoch's means."""
        controller, optimizer = self.controller, self.optimizer
        assert controller is not None and optimizer is not None
        was_training = supernet.training
        supernet.eval()
        controller.train()
        controller.zero_grad()
        n_cells = supernet.num_search_cells
        start = self.baseline
        sums = {"reward": 0.0, "baseline": 0.0, "valid_acc": 0.0, "entropy": 0.0}
        total = self.train_steps * self.num_aggregate
        baseline: torch.Tensor | None = None
        try:
            for step in range(total):
                x, y = next(batches)
                x, y = x.to(device), y.to(device)
                log_prob, entropy, cell = controller()
                with torch.no_grad():
                    path = SampledOps(torch.tensor(cell, device=device))
                    logits = supernet(x, cell_weights=[path] * n_cells)
                    acc = top1_fraction(logits, y)
                reward = acc + self.entropy_weight * entropy
                baseline = acc if start is None else start - (1 - self.bl_dec) * (start - reward)
                loss = -1 * log_prob * (reward - baseline)
                sums["reward"] += reward.item()
                sums["baseline"] += baseline.item()
                sums["valid_acc"] += acc.item() * 100
                sums["entropy"] += entropy.item()
                (loss / self.num_aggregate).backward(retain_graph=True)
                if (step + 1) % self.num_aggregate == 0:
                    nn.utils.clip_grad_norm_(controller.parameters(), self.controller_grad_clip)
                    optimizer.step()
                    controller.zero_grad()
        finally:
            supernet.train(was_training)
        assert baseline is not None
        self.baseline = baseline.item()
        return {f"enas.{k}": v / total for k, v in sums.items()} | {
            "enas.epoch_baseline": self.baseline
        }

    def state_dict(self) -> dict[str, Any]:
        assert self.controller is not None and self.optimizer is not None
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.controller is None:  # restored before on_build: applied there
            self._pending = state
            return
        self._load(state)

    def _load(self, state: dict[str, Any]) -> None:
        assert self.controller is not None and self.optimizer is not None
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
