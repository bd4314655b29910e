"""Selection by the magnitude of α, as each space's DARTS reference derives its genotype."""

from __future__ import annotations

from typing import Any

from nasrepro.catalog import register_selector
from nasrepro.spaces.base import SearchSpace, Supernet


@register_selector("argmax", "largest α per edge (the space's DARTS genotype rule)", args={})
def argmax(space: SearchSpace, supernet: Supernet, **_: Any) -> Any:
    return space.derive_argmax(supernet)
