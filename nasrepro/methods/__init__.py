"""Search methods: named bundles of hooks on the one engine (see docs/design.md)."""

from nasrepro.methods.base import MethodHook, build_hooks

__all__ = ["MethodHook", "build_hooks"]
