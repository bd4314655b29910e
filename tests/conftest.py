"""Test set-up: torchvision must import beside the CPU-only torch wheel (STACK.md)."""

from nasrepro._compat import ensure_torchvision

ensure_torchvision()
