"""RobustDARTS' reduced DARTS spaces S1–S4 (Zela et al., 2020).

Op lists per edge exactly as automl/RobustDARTS src/spaces.py (commit 3dec3fe:
primitives_1..primitives_4), identical in ruocwang/darts-pt sota/cnn/spaces.py (commit
c31e376). Edges in quark0 order: node 2 <- (0, 1), node 3 <- (0, 1, 2), node 4 <- (0..3),
node 5 <- (0..4). The genotype names each chosen op from its own edge's list
(RobustDARTS model_search.py genotype: `PRIMITIVES[start+j][k_best]`); `none` is excluded
where an edge has it (S3) and otherwise every op competes.
"""

from __future__ import annotations

from nasrepro.catalog import register_space
from nasrepro.spaces.darts import SUPERNET_ARGS, CellOps, DartsSpaceBase

SKIP, MAX, AVG = "skip_connect", "max_pool_3x3", "avg_pool_3x3"
SEP3, DIL3, DIL5 = "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"

# src/spaces.py primitives_1: each edge has its own two ops.
S1 = CellOps(
    normal=(
        (SKIP, DIL3),
        (SKIP, DIL5),
        (SKIP, DIL5),
        (SKIP, SEP3),
        (SKIP, DIL3),
        (MAX, SKIP),
        (SKIP, SEP3),
        (SKIP, SEP3),
        (SKIP, DIL3),
        (SKIP, SEP3),
        (MAX, SKIP),
        (SKIP, DIL3),
        (DIL3, DIL5),
        (DIL3, DIL5),
    ),
    reduce=(
        (MAX, AVG),
        (MAX, DIL3),
        (MAX, AVG),
        (MAX, AVG),
        (SKIP, DIL5),
        (MAX, AVG),
        (MAX, SEP3),
        (SKIP, DIL3),
        (SKIP, DIL5),
        (MAX, AVG),
        (MAX, AVG),
        (SKIP, DIL5),
        (SKIP, DIL5),
        (SKIP, DIL5),
    ),
)
S2 = CellOps.uniform((SKIP, SEP3))  # primitives_2
S3 = CellOps.uniform(("none", SKIP, SEP3))  # primitives_3
S4 = CellOps.uniform(("noise", SEP3))  # primitives_4

ROBUST_SPACES: dict[str, CellOps] = {"s1": S1, "s2": S2, "s3": S3, "s4": S4}


@register_space(
    "s1", "RobustDARTS S1: two ops per edge, chosen per edge and cell type", args=SUPERNET_ARGS
)
class S1Space(DartsSpaceBase):
    name = "s1"
    cell_ops = S1
    ops = S1.all_ops()


@register_space(
    "s2", "RobustDARTS S2: {skip_connect, sep_conv_3x3} on every edge", args=SUPERNET_ARGS
)
class S2Space(DartsSpaceBase):
    name = "s2"
    cell_ops = S2
    ops = S2.all_ops()


@register_space(
    "s3", "RobustDARTS S3: {none, skip_connect, sep_conv_3x3} on every edge", args=SUPERNET_ARGS
)
class S3Space(DartsSpaceBase):
    name = "s3"
    cell_ops = S3
    ops = S3.all_ops()


@register_space("s4", "RobustDARTS S4: {noise, sep_conv_3x3} on every edge", args=SUPERNET_ARGS)
class S4Space(DartsSpaceBase):
    name = "s4"
    cell_ops = S4
    ops = S4.all_ops()
