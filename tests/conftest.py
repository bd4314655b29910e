"""Test set-up: torchvision must import beside the CPU-only torch wheel (docs/stack.md)."""

import torch

from nasrepro._compat import ensure_torchvision

ensure_torchvision()
# Tiny test networks run faster on one thread, and parallel test workers do not fight.
torch.set_num_threads(1)
