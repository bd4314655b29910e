"""Named DARTS-cell genotypes: the reference cells and those the five papers publish.

Each entry carries the genotype string exactly as its authors' repository prints it, the
repository file and commit it was read from, the space and dataset it was searched on, and
where the paper shows it. `get_genotype` accepts a name (case-insensitive), an alias, a
quark0 `Genotype(...)` string or a `DartsGenotype`.

The five papers draw their cells as figures only; their text copies hold
no `Genotype(...)` strings (paper 002's figure labels survive as OCR fragments, which cannot
be read back into edges). The genotypes therefore come from the authors' own repositories,
each matched to the appendix figure that draws it:

- DARTS- (001, Appendix B, Figures 9 and 11: best cells of S0-S4 on CIFAR-10 / CIFAR-100):
  Meituan-AutoML/DARTS- src/eval/genotypes.py, where `cifar10_sK_best` = run 0.
- DARTS-PT (002, Appendix, Figure 10: DARTS+PT on the DARTS space, CIFAR-10; Figures 13-24:
  DARTS+PT on S1-S4 x CIFAR-10/100/SVHN): ruocwang/darts-pt sota/cnn/genotypes.py, which holds
  every run (the figures show one per setting) and the fix-alpha ("blank") runs of Table 4/5,
  with each run's parameter size in M as a trailing comment (`params_m` here).
- Lambda-DARTS (003, A.11, Figure 8: Lambda, Figure 9: Lambda+-, on the DARTS space and
  CIFAR-10; Figures 10-21: Lambda on S1-S4 x CIFAR-10/100/SVHN): dr-faustus/Lambda-DARTS
  sota/cnn/genotypes.py (`corr` = Lambda, `sign` = Lambda+-, as `--corr_regularization
  corr|signcorr` in sota/cnn/train_search.py); the four DARTS-space runs per regularizer are
  not marked with the one pictured.
- RF-DARTS (000) and EX-DARTS/SS-DARTS (004) publish no code and no genotype strings: none
  of their cells is listed.

The DARTS-space runs the repositories call `s5` are this package's `darts` space (S0).
"""

from __future__ import annotations

from dataclasses import dataclass

from nasrepro.spaces.darts import DartsGenotype


@dataclass(frozen=True)
class GenotypeSource:
    """Where a group of genotypes was read, and where its paper shows them."""

    repo: str
    path: str
    commit: str
    paper: str


@dataclass(frozen=True)
class NamedGenotype:
    name: str
    space: str  # darts (S0) | s1 | s2 | s3 | s4
    searched_on: str  # cifar10 | cifar100 | svhn | imagenet
    source: GenotypeSource
    source_name: str  # the variable name in the source file
    genotype: str  # the quark0 string, as DartsGenotype.to_str() prints it
    params_m: float | None = None  # the source's own parameter count (M), where it gives one

    def parse(self) -> DartsGenotype:
        return DartsGenotype.from_str(self.genotype)

    def citation(self) -> str:
        s = self.source
        return f"{s.repo} {s.path} @ {s.commit[:7]} ({self.source_name}); {s.paper}"


_QUARK0 = GenotypeSource(
    "quark0/darts",
    "cnn/genotypes.py",
    "f276dd346a09ae3160f8e3aca5c7b193fda1da37",
    "Liu et al., DARTS (ICLR 2019), Table 1: first order (V1) and second order (V2) cells",
)
_PCDARTS = GenotypeSource(
    "yuhuixu1993/PC-DARTS",
    "genotypes.py",
    "b74702f86c70e330ce0db35762cfade9df026bb7",
    "Xu et al., PC-DARTS (ICLR 2020), Figure 3: cells found on CIFAR-10 and on ImageNet",
)
_DARTS_MINUS = GenotypeSource(
    "Meituan-AutoML/DARTS-",
    "src/eval/genotypes.py",
    "adb81a8313b17d1a87593a53b0e802fc4199e9b1",
    "paper 001 (DARTS-) Appendix B, Figure 9 (CIFAR-10) / Figure 11 (CIFAR-100): run 0 of "
    "each space is the best cell pictured",
)
_DARTS_PT = GenotypeSource(
    "ruocwang/darts-pt",
    "sota/cnn/genotypes.py",
    "4ec3149dea0d77efd8e4c118f578b454dad5e0ac",
    "paper 002 (DARTS-PT) Appendix, Figure 10 (DARTS space, CIFAR-10) and Figures 13-24 "
    "(S1-S4 x CIFAR-10/CIFAR-100/SVHN); FIX_ALPHA_* are the repo's fix-alpha ('blank') runs",
)
_LAMBDA = GenotypeSource(
    "dr-faustus/Lambda-DARTS",
    "sota/cnn/genotypes.py",
    "c7ac3ba6c9462cad657f8042852dd99fcd9eeebb",
    "paper 003 (Lambda-DARTS) A.11, Figure 8 (Lambda) / Figure 9 (Lambda+-) on the DARTS "
    "space, Figures 10-21 (Lambda on S1-S4 x CIFAR-10/CIFAR-100/SVHN)",
)


def _entry(
    name: str,
    space: str,
    searched_on: str,
    source: GenotypeSource,
    source_name: str,
    genotype: str,
    params_m: float | None = None,
) -> NamedGenotype:
    return NamedGenotype(name, space, searched_on, source, source_name, genotype, params_m)
_AUTODL = GenotypeSource(
    "D-X-Y/AutoDL-Projects",
    "xautodl/nas_infer_model/DXYs/genotypes.py",
    "f46486e21b71ae6459a700be720d7648b5429569",
    "Dong & Yang, GDAS (CVPR 2019), Figure 3: the cells found on CIFAR-10 (GDAS_V1, written "
    "there as two (op, input) pairs per node)",
)


_ENTRIES: tuple[NamedGenotype, ...] = (
    # --- quark0/darts: the DARTS cells (DARTS = DARTS_V2 there) ---
    _entry(
        "DARTS_V1",
        "darts",
        "cifar10",
        _QUARK0,
        "DARTS_V1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_V2",
        "darts",
        "cifar10",
        _QUARK0,
        "DARTS_V2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    # --- GDAS (AutoDL-Projects' DXYs genotypes): the CIFAR-10 cells, node by node ---
    _entry(
        "GDAS_V1",
        "darts",
        "cifar10",
        _AUTODL,
        "GDAS_V1",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 3), ('skip_connect', 0), ('sep_conv_5x5', 4), ('sep_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), ('sep_conv_5x5', 1), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    # --- PC-DARTS: the CIFAR-10 and the ImageNet cells ---
    _entry(
        "PC_DARTS",
        "darts",
        "cifar10",
        _PCDARTS,
        "PC_DARTS_cifar",
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "PC_DARTS_IMAGENET",
        "darts",
        "imagenet",
        _PCDARTS,
        "PC_DARTS_image",
        "Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    # --- DARTS- (paper 001): every run of S0-S4 on CIFAR-10 and CIFAR-100 ---
    _entry(
        "DARTS_MINUS_C10_S0_0",
        "darts",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s0_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S0_1",
        "darts",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s0_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_5x5', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S0_2",
        "darts",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s0_2",
        "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S0_3",
        "darts",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s0_3",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 1), ('skip_connect', 1), ('skip_connect', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('sep_conv_5x5', 0), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S0_4",
        "darts",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s0_4",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_5x5', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S1_0",
        "s1",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s1_0",
        "Genotype(normal=[('skip_connect', 1), ('dil_conv_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S1_1",
        "s1",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s1_1",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 3), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S1_2",
        "s1",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s1_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('skip_connect', 0), ('dil_conv_3x3', 3), ('skip_connect', 1), ('dil_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S2_0",
        "s2",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s2_0",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S2_1",
        "s2",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s2_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S2_2",
        "s2",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s2_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S3_0",
        "s3",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s3_0",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S3_1",
        "s3",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s3_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S3_2",
        "s3",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s3_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S4_0",
        "s4",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s4_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('noise', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S4_1",
        "s4",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s4_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('noise', 3), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C10_S4_2",
        "s4",
        "cifar10",
        _DARTS_MINUS,
        "cifar10_s4_2",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('noise', 2), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S0_0",
        "darts",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s0_0",
        "Genotype(normal=[('dil_conv_5x5', 0), ('dil_conv_3x3', 1), ('sep_conv_3x3', 1), ('dil_conv_3x3', 0), ('dil_conv_5x5', 0), ('dil_conv_3x3', 1), ('sep_conv_3x3', 1), ('dil_conv_5x5', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('skip_connect', 2), ('sep_conv_5x5', 0), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S0_1",
        "darts",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s0_1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('dil_conv_5x5', 1), ('dil_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S0_2",
        "darts",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s0_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('dil_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('avg_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S0_3",
        "darts",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s0_3",
        "Genotype(normal=[('dil_conv_5x5', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('avg_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S1_0",
        "s1",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s1_0",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_3x3', 2), ('sep_conv_3x3', 1), ('dil_conv_3x3', 3), ('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('dil_conv_5x5', 3), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S1_1",
        "s1",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s1_1",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_3x3', 2), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 3), ('skip_connect', 1), ('dil_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('skip_connect', 4), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S1_2",
        "s1",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s1_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_3x3', 2), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 3), ('skip_connect', 1), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('dil_conv_5x5', 2), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S2_0",
        "s2",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s2_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4), ('skip_connect', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 3), ('skip_connect', 0), ('skip_connect', 4), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S2_1",
        "s2",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s2_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4), ('sep_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S2_2",
        "s2",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s2_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 4), ('skip_connect', 0)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S3_0",
        "s3",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s3_0",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S3_1",
        "s3",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s3_1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 3), ('skip_connect', 3), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S3_2",
        "s3",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s3_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 2), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S4_0",
        "s4",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s4_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('noise', 2), ('noise', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S4_1",
        "s4",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s4_1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('noise', 3), ('noise', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "DARTS_MINUS_C100_S4_2",
        "s4",
        "cifar100",
        _DARTS_MINUS,
        "cifar100_s4_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('noise', 3), ('noise', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    # --- DARTS-PT (paper 002): DARTS+PT and fix-alpha runs; params_m from the repo ---
    _entry(
        "DARTS_PT_C10_S0_0",
        "darts",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s5_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('skip_connect', 0), ('max_pool_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('dil_conv_5x5', 1), ('dil_conv_3x3', 2), ('avg_pool_3x3', 0), ('max_pool_3x3', 2), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.85,
    ),
    _entry(
        "DARTS_PT_C10_S0_1",
        "darts",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s5_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 0), ('dil_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('dil_conv_5x5', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 2), ('max_pool_3x3', 1), ('dil_conv_3x3', 3), ('sep_conv_5x5', 0), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.05,
    ),
    _entry(
        "DARTS_PT_C10_S0_2",
        "darts",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s5_2",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('skip_connect', 2), ('dil_conv_3x3', 3), ('max_pool_3x3', 1), ('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_5x5', 2), ('skip_connect', 3), ('sep_conv_3x3', 2), ('sep_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.66,
    ),
    _entry(
        "DARTS_PT_C10_S0_3",
        "darts",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s5_3",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 3)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('max_pool_3x3', 1), ('skip_connect', 2), ('dil_conv_5x5', 1), ('max_pool_3x3', 3), ('sep_conv_5x5', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.33,
    ),
    _entry(
        "DARTS_PT_C10_S1_1",
        "s1",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s1_1",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('dil_conv_3x3', 3), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 3), ('skip_connect', 2), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=1.87,
    ),
    _entry(
        "DARTS_PT_C10_S1_2",
        "s1",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s1_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2), ('skip_connect', 0), ('skip_connect', 3), ('dil_conv_3x3', 3), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.02,
    ),
    _entry(
        "DARTS_PT_C10_S2_1",
        "s2",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s2_1",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.09,
    ),
    _entry(
        "DARTS_PT_C10_S2_2",
        "s2",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s2_2",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('skip_connect', 3), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.79,
    ),
    _entry(
        "DARTS_PT_C10_S3_1",
        "s3",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s3_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('skip_connect', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.42,
    ),
    _entry(
        "DARTS_PT_C10_S3_2",
        "s3",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s3_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.54,
    ),
    _entry(
        "DARTS_PT_C10_S4_1",
        "s4",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s4_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "DARTS_PT_C10_S4_2",
        "s4",
        "cifar10",
        _DARTS_PT,
        "darts_pt_s4_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "DARTS_PT_C100_S1_1",
        "s1",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s1_c100_1",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('dil_conv_5x5', 0), ('skip_connect', 2), ('sep_conv_3x3', 2), ('skip_connect', 3), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.47,
    ),
    _entry(
        "DARTS_PT_C100_S1_2",
        "s1",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s1_c100_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2), ('skip_connect', 0), ('dil_conv_3x3', 3), ('skip_connect', 2), ('dil_conv_5x5', 3)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.07,
    ),
    _entry(
        "DARTS_PT_C100_S2_1",
        "s2",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s2_c100_1",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 3), ('skip_connect', 3), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('skip_connect', 0), ('skip_connect', 3), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.08,
    ),
    _entry(
        "DARTS_PT_C100_S2_2",
        "s2",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s2_c100_2",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('sep_conv_3x3', 3), ('skip_connect', 3), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 3), ('sep_conv_3x3', 0), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.11,
    ),
    _entry(
        "DARTS_PT_C100_S3_1",
        "s3",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s3_c100_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.83,
    ),
    _entry(
        "DARTS_PT_C100_S3_2",
        "s3",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s3_c100_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 1), ('skip_connect', 3), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.44,
    ),
    _entry(
        "DARTS_PT_C100_S4_1",
        "s4",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s4_c100_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.75,
    ),
    _entry(
        "DARTS_PT_C100_S4_2",
        "s4",
        "cifar100",
        _DARTS_PT,
        "darts_pt_s4_c100_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.75,
    ),
    _entry(
        "DARTS_PT_SVHN_S1_1",
        "s1",
        "svhn",
        _DARTS_PT,
        "darts_pt_s1_svhn_1",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('dil_conv_5x5', 0), ('skip_connect', 2), ('max_pool_3x3', 0), ('sep_conv_3x3', 2), ('dil_conv_3x3', 3), ('dil_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('avg_pool_3x3', 1), ('dil_conv_5x5', 2), ('skip_connect', 2), ('dil_conv_5x5', 3), ('avg_pool_3x3', 0), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.38,
    ),
    _entry(
        "DARTS_PT_SVHN_S1_2",
        "s1",
        "svhn",
        _DARTS_PT,
        "darts_pt_s1_svhn_2",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('dil_conv_5x5', 0), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 3), ('dil_conv_3x3', 3), ('dil_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('skip_connect', 3), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.05,
    ),
    _entry(
        "DARTS_PT_SVHN_S2_1",
        "s2",
        "svhn",
        _DARTS_PT,
        "darts_pt_s2_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('skip_connect', 2), ('sep_conv_3x3', 3), ('skip_connect', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.08,
    ),
    _entry(
        "DARTS_PT_SVHN_S2_2",
        "s2",
        "svhn",
        _DARTS_PT,
        "darts_pt_s2_svhn_2",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 2), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.14,
    ),
    _entry(
        "DARTS_PT_SVHN_S3_1",
        "s3",
        "svhn",
        _DARTS_PT,
        "darts_pt_s3_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('skip_connect', 2), ('skip_connect', 3), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 1), ('sep_conv_3x3', 2), ('skip_connect', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.5,
    ),
    _entry(
        "DARTS_PT_SVHN_S3_2",
        "s3",
        "svhn",
        _DARTS_PT,
        "darts_pt_s3_svhn_2",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('skip_connect', 2), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.82,
    ),
    _entry(
        "DARTS_PT_SVHN_S4_1",
        "s4",
        "svhn",
        _DARTS_PT,
        "darts_pt_s4_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "DARTS_PT_SVHN_S4_2",
        "s4",
        "svhn",
        _DARTS_PT,
        "darts_pt_s4_svhn_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S0_0",
        "darts",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s5_0",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 1), ('skip_connect', 3), ('max_pool_3x3', 0), ('avg_pool_3x3', 2)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('sep_conv_5x5', 1), ('dil_conv_3x3', 1), ('sep_conv_5x5', 2), ('max_pool_3x3', 0), ('skip_connect', 3), ('max_pool_3x3', 0), ('max_pool_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.04,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S0_1",
        "darts",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s5_1",
        "Genotype(normal=[('avg_pool_3x3', 0), ('avg_pool_3x3', 1), ('sep_conv_3x3', 0), ('max_pool_3x3', 2), ('skip_connect', 2), ('sep_conv_3x3', 3), ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('avg_pool_3x3', 2), ('max_pool_3x3', 3), ('sep_conv_5x5', 3), ('sep_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.15,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S0_2",
        "darts",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s5_2",
        "Genotype(normal=[('avg_pool_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 1), ('sep_conv_5x5', 1), ('avg_pool_3x3', 2)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 3), ('max_pool_3x3', 2), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.58,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S0_3",
        "darts",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s5_3",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 2), ('sep_conv_3x3', 3), ('avg_pool_3x3', 0), ('sep_conv_5x5', 1)], normal_concat=range(2, 6), reduce=[('dil_conv_5x5', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 0), ('dil_conv_3x3', 1), ('avg_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.4,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S1_1",
        "s1",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s1_1",
        "Genotype(normal=[('skip_connect', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 0), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('dil_conv_5x5', 3), ('dil_conv_5x5', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.36,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S1_2",
        "s1",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s1_2",
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('dil_conv_5x5', 3)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('dil_conv_3x3', 1), ('max_pool_3x3', 1), ('dil_conv_5x5', 2), ('avg_pool_3x3', 0), ('skip_connect', 3), ('skip_connect', 2), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.39,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S2_1",
        "s2",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s2_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.45,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S2_2",
        "s2",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s2_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.3,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S3_1",
        "s3",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s3_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.9,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S3_2",
        "s3",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s3_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 3), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.81,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S4_1",
        "s4",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s4_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "FIX_ALPHA_PT_C10_S4_2",
        "s4",
        "cifar10",
        _DARTS_PT,
        "blank_pt_s4_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S1_1",
        "s1",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s1_c100_1",
        "Genotype(normal=[('skip_connect', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 0), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('skip_connect', 3), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.46,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S1_2",
        "s1",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s1_c100_2",
        "Genotype(normal=[('skip_connect', 0), ('dil_conv_5x5', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 0), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('avg_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('dil_conv_5x5', 3), ('dil_conv_5x5', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.44,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S2_1",
        "s2",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s2_c100_1",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 3), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.14,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S2_2",
        "s2",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s2_c100_2",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 3), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.84,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S3_1",
        "s3",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s3_c100_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.89,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S3_2",
        "s3",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s3_c100_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('skip_connect', 3), ('skip_connect', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.95,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S4_1",
        "s4",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s4_c100_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.75,
    ),
    _entry(
        "FIX_ALPHA_PT_C100_S4_2",
        "s4",
        "cifar100",
        _DARTS_PT,
        "blank_pt_s4_c100_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.75,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S1_1",
        "s1",
        "svhn",
        _DARTS_PT,
        "blank_pt_s1_svhn_1",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 2), ('skip_connect', 3), ('dil_conv_5x5', 3), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('avg_pool_3x3', 1), ('skip_connect', 2), ('skip_connect', 2), ('dil_conv_5x5', 3), ('skip_connect', 3), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=2.95,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S1_2",
        "s1",
        "svhn",
        _DARTS_PT,
        "blank_pt_s1_svhn_2",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('dil_conv_3x3', 1), ('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.43,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S2_1",
        "s2",
        "svhn",
        _DARTS_PT,
        "blank_pt_s2_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('skip_connect', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.2,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S2_2",
        "s2",
        "svhn",
        _DARTS_PT,
        "blank_pt_s2_svhn_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 3), ('skip_connect', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('skip_connect', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.26,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S3_1",
        "s3",
        "svhn",
        _DARTS_PT,
        "blank_pt_s3_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('skip_connect', 2), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=3.9,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S3_2",
        "s3",
        "svhn",
        _DARTS_PT,
        "blank_pt_s3_svhn_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 2), ('skip_connect', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.64,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S4_1",
        "s4",
        "svhn",
        _DARTS_PT,
        "blank_pt_s4_svhn_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    _entry(
        "FIX_ALPHA_PT_SVHN_S4_2",
        "s4",
        "svhn",
        _DARTS_PT,
        "blank_pt_s4_svhn_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
        params_m=4.7,
    ),
    # --- Lambda-DARTS (paper 003): Lambda (corr) and Lambda+- (sign) runs ---
    _entry(
        "LAMBDA_DARTS_C10_S0_0",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_corr_0",
        "Genotype(normal=[('sep_conv_5x5', 0), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_3x3', 2), ('max_pool_3x3', 0)], normal_concat=range(2, 6), reduce=[('skip_connect', 1), ('skip_connect', 0), ('max_pool_3x3', 0), ('dil_conv_3x3', 2), ('dil_conv_5x5', 3), ('dil_conv_5x5', 1), ('skip_connect', 1), ('sep_conv_5x5', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S0_1",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_corr_1",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S0_2",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_corr_2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 4), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('dil_conv_5x5', 3), ('max_pool_3x3', 0), ('dil_conv_5x5', 3), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S0_3",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_corr_3",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('avg_pool_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_PM_DARTS_C10_S0_0",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_sign_0",
        "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('dil_conv_3x3', 0), ('dil_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_3x3', 4), ('skip_connect', 0)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('sep_conv_5x5', 3), ('dil_conv_3x3', 2), ('dil_conv_5x5', 4), ('sep_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_PM_DARTS_C10_S0_1",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_sign_1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('dil_conv_5x5', 3), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('sep_conv_5x5', 0)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_PM_DARTS_C10_S0_2",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_sign_2",
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('sep_conv_3x3', 1), ('dil_conv_3x3', 3), ('sep_conv_5x5', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_5x5', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_PM_DARTS_C10_S0_3",
        "darts",
        "cifar10",
        _LAMBDA,
        "lambdadarts_sign_3",
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('dil_conv_5x5', 3), ('dil_conv_3x3', 3), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 0), ('dil_conv_5x5', 3), ('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S1",
        "s1",
        "cifar10",
        _LAMBDA,
        "c10_s1_lambdadarts_corr",
        "Genotype(normal=[('skip_connect', 1), ('dil_conv_3x3', 0), ('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('max_pool_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S2",
        "s2",
        "cifar10",
        _LAMBDA,
        "c10_s2_lambdadarts_corr",
        "Genotype(normal=[('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S3",
        "s3",
        "cifar10",
        _LAMBDA,
        "c10_s3_lambdadarts_corr",
        "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C10_S4",
        "s4",
        "cifar10",
        _LAMBDA,
        "c10_s4_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C100_S1",
        "s1",
        "cifar100",
        _LAMBDA,
        "c100_s1_lambdadarts_corr",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('dil_conv_3x3', 3), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('dil_conv_5x5', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C100_S2",
        "s2",
        "cifar100",
        _LAMBDA,
        "c100_s2_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4), ('sep_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C100_S3",
        "s3",
        "cifar100",
        _LAMBDA,
        "c100_s3_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_C100_S4",
        "s4",
        "cifar100",
        _LAMBDA,
        "c100_s4_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_SVHN_S1",
        "s1",
        "svhn",
        _LAMBDA,
        "svhn_s1_lambdadarts_corr",
        "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('dil_conv_3x3', 2), ('dil_conv_3x3', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('dil_conv_5x5', 3), ('dil_conv_3x3', 2), ('dil_conv_5x5', 3), ('dil_conv_5x5', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_SVHN_S2",
        "s2",
        "svhn",
        _LAMBDA,
        "svhn_s2_lambdadarts_corr",
        "Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 2), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_SVHN_S3",
        "s3",
        "svhn",
        _LAMBDA,
        "svhn_s3_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
    _entry(
        "LAMBDA_DARTS_SVHN_S4",
        "s4",
        "svhn",
        _LAMBDA,
        "svhn_s4_lambdadarts_corr",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    ),
)

GENOTYPES: dict[str, NamedGenotype] = {g.name: g for g in _ENTRIES}

# Names the reference code uses for the same cells.
ALIASES: dict[str, str] = {
    "DARTS": "DARTS_V2",  # quark0 cnn/genotypes.py: DARTS = DARTS_V2
    "PCDARTS": "PC_DARTS",  # PC-DARTS genotypes.py: PCDARTS = PC_DARTS_cifar
    **{  # DARTS- src/eval/genotypes.py: cifar10_sK_best = cifar10_sK_0 (the pictured cell)
        f"DARTS_MINUS_{ds}_S{k}": f"DARTS_MINUS_{ds}_S{k}_0"
        for ds in ("C10", "C100")
        for k in range(5)
    },
}


def genotype_names() -> list[str]:
    """Every name `get_genotype` knows, aliases included, sorted."""
    return sorted([*GENOTYPES, *ALIASES])


def lookup(name: str) -> NamedGenotype:
    """The named entry (case-insensitive; aliases resolved)."""
    key = name.strip().upper()
    key = ALIASES.get(key, key)
    if key not in GENOTYPES:
        raise KeyError(
            f"unknown genotype name {name!r}: give a Genotype(...) string or one of "
            f"{len(GENOTYPES) + len(ALIASES)} names such as DARTS_V2, PC_DARTS, "
            "DARTS_MINUS_C10_S0, DARTS_PT_C10_S0_0, LAMBDA_DARTS_C10_S0_0 "
            "(nasrepro.nets.genotypes.genotype_names())"
        )
    return GENOTYPES[key]


def get_genotype(name_or_string: str | DartsGenotype) -> DartsGenotype:
    """A `DartsGenotype` from a name, an alias, a quark0 `Genotype(...)` string, or itself."""
    if isinstance(name_or_string, DartsGenotype):
        return name_or_string
    if not isinstance(name_or_string, str):
        raise TypeError(f"a genotype is a name or a Genotype(...) string, not {name_or_string!r}")
    text = name_or_string.strip()
    if text.startswith("Genotype"):
        return DartsGenotype.from_str(text)
    return lookup(text).parse()
