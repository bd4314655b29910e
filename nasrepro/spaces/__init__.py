"""Search spaces: supernets, their discrete networks, and genotype formats."""

from nasrepro.spaces.base import SearchSpace, Supernet, build_space

__all__ = ["SearchSpace", "Supernet", "build_space"]
