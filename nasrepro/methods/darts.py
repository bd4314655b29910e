"""DARTS (Liu et al., 2019): the engine's defaults; first or second order by search.order."""

from __future__ import annotations

from nasrepro.catalog import register_method
from nasrepro.methods.base import MethodHook


@register_method("darts", "DARTS 1st/2nd order (engine defaults; order from search.order)", args={})
class Darts(MethodHook):
    name = "darts"
    engine_default = True
