"""NAS-Bench-201 space against the reference implementation and the benchmark's own data."""

import pytest
import torch

from nasrepro.complexity import count_params
from nasrepro.spaces.nb201 import (
    EDGES,
    OPS,
    Nb201Genotype,
    Nb201Network,
    Nb201Supernet,
    derive_argmax,
)

ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_op_and_edge_order_match_nb201():
    # xautodl/models/cell_operations.py NAS_BENCH_201; edges sorted as "i<-j" strings.
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert [f"{i}<-{j}" for i, j in EDGES] == sorted(f"{i}<-{j}" for i, j in EDGES)


@pytest.mark.parametrize("arch", [ALL_SKIP, BEST])
def test_arch_string_round_trip(arch):
    g = Nb201Genotype.from_arch_str(arch)
    assert g.to_arch_str() == arch


def test_arch_string_edge_order():
    g = Nb201Genotype.from_arch_str(BEST)
    # node 3's inputs are edges 3,4,5 = (3<-0, 3<-1, 3<-2)
    assert g.ops == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_3x3",
    )


def test_index_order_is_the_benchmarks():
    # NB201 indices are the benchmark's (shuffled) meta_archs order, not a base-5 count:
    # the all-skip collapse cell is index 1835 and the Λ-DARTS/DARTS- cell index 9930.
    assert Nb201Genotype.from_arch_str(ALL_SKIP).index() == 1835
    assert Nb201Genotype.from_arch_str(BEST).index() == 9930


@pytest.mark.parametrize(
    "bad",
    [
        "|skip_connect~0|+|skip_connect~0|",  # two nodes only
        "|skip_connect~1|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        "|conv_7x7~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        "skip_connect",
    ],
)
def test_bad_arch_strings_are_refused(bad):
    with pytest.raises(ValueError):
        Nb201Genotype.from_arch_str(bad)


def _hand_count_supernet(c: int, n: int, classes: int) -> int:
    # Derived from AutoDL TinyNetworkDarts (search_model_darts.py) with affine=False search BN:
    # per search cell 6 edges x (1x1 conv C² + 3x3 conv 9C²); stem conv 27C + BN 2C;
    # ResNetBasicblock(Cin, Cout, 2): 3x3 convs 9·Cin·Cout + 9·Cout² with affine BN 2Cout each,
    # shortcut 1x1 conv Cin·Cout; head BN 2·4C, Linear 4C·classes + classes.
    cells = sum(n * 6 * 10 * k * k for k in (c, 2 * c, 4 * c))

    def res(ci, co):
        return 9 * ci * co + 2 * co + 9 * co * co + 2 * co + ci * co

    return (
        (27 * c + 2 * c)
        + cells
        + res(c, 2 * c)
        + res(2 * c, 4 * c)
        + 8 * c
        + 4 * c * classes
        + classes
    )


def test_supernet_parameter_count():
    net = Nb201Supernet(10)
    assert count_params(net, exclude=tuple(net.arch_parameters())) == 1_686_106
    assert _hand_count_supernet(16, 5, 10) == 1_686_106
    assert net.arch_alpha.shape == (6, 5)
    assert count_params(Nb201Supernet(100, c=8, n=2), exclude=()) - 30 == _hand_count_supernet(
        8, 2, 100
    )


def test_search_bn_has_no_affine_and_no_running_stats_by_default():
    net = Nb201Supernet(10)
    bn = net.body.cells[0].edges[0].ops[3][2]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert bn.weight is None and bn.running_mean is None
    assert (
        Nb201Supernet(10, track_running_stats=True).body.cells[0].edges[0].ops[3][2].running_mean
        is not None
    )


@pytest.mark.parametrize(
    "arch,params",
    [
        # NAS-Bench-201 (Dong & Yang, 2020) CIFAR-10 networks: the all-3x3 cell is the space's
        # largest network, 1.531546 M parameters, as NB201's API reports ('params': 1.531546).
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
            1_531_546,
        ),
        # parameter-free cell: only stem, two ResNet blocks and head remain (0.073306 M)
        (ALL_SKIP, 73_306),
        # index 9930: five 3x3 convs (9C²+2C each, affine BN) in each of the 15 cells
        (BEST, 73_306 + 5 * 5 * sum(9 * k * k + 2 * k for k in (16, 32, 64))),
    ],
)
def test_discrete_network_parameter_counts(arch, params):
    net = Nb201Network(Nb201Genotype.from_arch_str(arch), 10)
    assert count_params(net) == params


def test_forward_shapes_and_argmax_derivation():
    net = Nb201Supernet(7, c=4, n=1)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    with torch.no_grad():
        net.arch_alpha.zero_()
        net.arch_alpha[:, 0] = (
            1.0  # `none` wins everywhere: DARTS-V1 keeps it (argmax over all ops)
        )
        net.arch_alpha[5, 3] = 2.0
    g = derive_argmax(net.arch_alpha)
    assert g.ops == ("none",) * 5 + ("nor_conv_3x3",)


def test_per_cell_weights_override_shared_alpha():
    torch.manual_seed(0)
    net = Nb201Supernet(5, c=4, n=1).eval()
    x = torch.randn(2, 3, 8, 8)
    shared = torch.softmax(net.arch_alpha, dim=-1)
    same = net(x, cell_weights=[shared] * net.num_search_cells)
    assert torch.allclose(net(x), same)
    other = [shared, shared, torch.full_like(shared, 0.2)]
    assert not torch.allclose(net(x), net(x, cell_weights=other))


def test_dropping_none_keeps_nb201_cells_and_their_table_index():
    """GAEA's space without `none` (`drop_ops: [none]`): α has four columns in NB201's order
    less `none`; argmax column k is op k of that list, and the derived cell is the NB201
    cell of the same arch string (table index as the benchmark's own)."""
    from nasrepro.evaluate.nb201 import Nb201Table
    from nasrepro.spaces import build_space

    space = build_space("nb201")
    net = space.build_supernet(10, c=4, n=1, drop_ops=["none"])
    assert space.edge_op_names("cell", 0) == net.op_names == OPS[1:]
    assert net.arch_alpha.shape == (len(EDGES), 4)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with torch.no_grad():
        net.arch_alpha.zero_()
        net.arch_alpha[:, 0] = 1.0  # column 0 is skip_connect now, not none
        net.arch_alpha[5, 2] = 2.0
    g = space.derive_argmax(net)
    assert g.ops == ("skip_connect",) * 5 + ("nor_conv_3x3",)
    table = Nb201Table.load()
    assert g.index() == table.index_of(g.to_arch_str())
    assert Nb201Genotype.from_arch_str(table.arch_str(g.index())) == g
    # the five-op space is back for the next supernet built without drop_ops
    assert space.build_supernet(10, c=4, n=1).arch_alpha.shape == (len(EDGES), 5)
    assert space.edge_op_names("cell", 0) == OPS


def test_drop_ops_refuses_unknown_ops_all_ops_and_fusion():
    from nasrepro.spaces.nb201 import kept_ops

    assert kept_ops(["avg_pool_3x3", "none"]) == ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")
    with pytest.raises(ValueError, match="drop_ops: unknown NB201 op 'zero'"):
        kept_ops(["zero"])
    with pytest.raises(ValueError, match="drops every NB201 op"):
        kept_ops(list(OPS))
    with pytest.raises(ValueError, match="fused needs all five NB201 ops"):
        Nb201Supernet(10, c=4, n=1, fused=True, ops=OPS[1:])
