"""Test set-up: torchvision must import beside the CPU-only torch wheel (docs/stack.md)."""

import os

import torch

from nasrepro._compat import ensure_torchvision

ensure_torchvision()
# Tiny test networks run faster on one thread, and parallel test workers do not fight.
torch.set_num_threads(1)

# The dataset files the tests write are FIXTURES, not the published ones: say so, as a user
# would have to (nasrepro/datafiles.py); records then carry "fixture": true.
os.environ.setdefault("NASREPRO_FIXTURE_DATA", "1")
