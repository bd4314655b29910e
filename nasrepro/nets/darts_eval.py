"""The DARTS evaluation networks as timm models: `nasrepro_darts_cifar`, `nasrepro_darts_imagenet`.

Plain PyTorch after quark0/darts cnn/model.py (commit f276dd3): `NetworkCIFAR` (stem conv3x3
to 3C + BN, `layers` cells with reductions at layers//3 and 2·layers//3, an auxiliary head after
cell 2·layers//3, global average pooling, linear classifier) and `NetworkImageNet` (the same
cells behind three stride-2 stem convolutions). Cells are `DiscreteCell`s of the DARTS space
with drop-path on every non-identity op during training, as quark0's `Cell.forward`.

    timm.create_model("nasrepro_darts_cifar", genotype="DARTS_V2", num_classes=10,
                      layers=20, init_channels=36, auxiliary=True, drop_path_rate=0.2)

`genotype` takes a `DartsGenotype`, its quark0 string, or a name of `nasrepro.nets.genotypes`.
In training mode a network with an auxiliary head returns `(logits, aux_logits)`; otherwise it
returns the logits alone (what timm and evaluation code expect). `drop_path_rate` is the
maximum; training scripts ramp it with `set_drop_path(epoch, epochs)` (quark0 train.py:
`drop_path_prob = 0.2 * epoch / epochs`); a model used without the ramp drops paths at the
full rate, as timm models do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasrepro._compat import ensure_torchvision
from nasrepro.complexity import count_flops, count_flops_by_convention
from nasrepro.nets.genotypes import get_genotype
from nasrepro.spaces.darts import DartsGenotype, DiscreteCell
from nasrepro.spaces.darts_ops import Identity

ensure_torchvision()  # timm imports torchvision (docs/stack.md)

from timm.layers import drop_path  # noqa: E402
from timm.models import register_model  # noqa: E402

__all__ = [  # timm's register_model appends the two model functions
    "NET_DEFAULTS",
    "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet",
    "EvalCell",
    "NetworkCIFAR",
    "NetworkImageNet",
    "count_eval_flops",
    "count_eval_flops_by_convention",
    "count_eval_params",
    "eval_net_info",
]

# quark0 cnn/utils.py CIFAR_MEAN / CIFAR_STD; quark0 train_imagenet.py normalize.
CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The published evaluation sizes: quark0 train.py (CIFAR: 20 cells, 36 channels, 32x32) and
# train_imagenet.py (ImageNet: 14 cells, 48 channels, 224x224).
NET_DEFAULTS: dict[str, dict[str, int]] = {
    "cifar": {"layers": 20, "init_channels": 36, "image_size": 32},
    "imagenet": {"layers": 14, "init_channels": 48, "image_size": 224},
}
AUX_CHANNELS = (128, 768)  # quark0 AuxiliaryHead*: 1x1 conv to 128, 2x2 conv to 768


class EvalCell(DiscreteCell):
    """quark0 model.Cell: a `DiscreteCell` whose non-identity ops are followed by drop-path
    while training (`if self.training and drop_prob > 0 and not isinstance(op, Identity)`)."""

    def forward(  # type: ignore[override]
        self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            terms = []
            for k in (2 * i, 2 * i + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    # per sample: zero with probability p, else scale by 1/(1-p)
                    # (quark0 utils.drop_path; timm's drop_path is the same operation)
                    h = drop_path(h, drop_prob, training=True)
                terms.append(h)
            states.append(terms[0] + terms[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class _AuxiliaryHead(nn.Module):
    """quark0's auxiliary towers: ReLU, 5x5 average pooling to 2x2, 1x1 conv to 128 + BN +
    ReLU, 2x2 conv to 768 (+ BN on CIFAR) + ReLU, linear classifier.

    At the reference resolutions the tower sees 8x8 (CIFAR, pooling stride 3) or 7x7
    (ImageNet at 224, stride 2) maps and quark0's pooling yields 2x2. At other input sizes
    (the smoke runs) that pooling would not, and the reference code fails; the tower then
    pools adaptively to the same 2x2, which has no parameters and so changes no count.
    """

    def __init__(self, c: int, num_classes: int, pool_stride: int, bn_after_768: bool) -> None:
        super().__init__()
        mid, out = AUX_CHANNELS
        self.pool = nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False)
        layers: list[nn.Module] = [
            nn.Conv2d(c, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out, 2, bias=False),
        ]
        if bn_after_768:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # not in place: x is the next cells' input too
        stride = self.pool.stride if isinstance(self.pool.stride, int) else self.pool.stride[0]
        if min(x.shape[-2:]) >= 5 and all((s - 5) // stride + 1 == 2 for s in x.shape[-2:]):
            x = self.pool(x)
        else:
            x = _adaptive_avg_pool_2x2(x)
        x = self.features(x)
        return self.classifier(x.flatten(1))


def _adaptive_avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, 2)` from slices and means: the same bins (start floor(i·H/2),
    end ceil((i+1)·H/2)), and a backward pass that CUDA's deterministic mode accepts (its
    adaptive_avg_pool2d backward kernel has no deterministic implementation)."""
    h, w = x.shape[-2:]
    rows = [(0, (h + 1) // 2), (h // 2, h)]
    cols = [(0, (w + 1) // 2), (w // 2, w)]
    out = [
        torch.stack([x[..., r0:r1, c0:c1].mean(dim=(-2, -1)) for c0, c1 in cols], dim=-1)
        for r0, r1 in rows
    ]
    return torch.stack(out, dim=-2)


class AuxiliaryHeadCIFAR(_AuxiliaryHead):
    """quark0 AuxiliaryHeadCIFAR: 8x8 input, AvgPool2d(5, stride=3), BN after the 768 conv."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__(c, num_classes, pool_stride=3, bn_after_768=True)


class AuxiliaryHeadImageNet(_AuxiliaryHead):
    """quark0 AuxiliaryHeadImageNet: AvgPool2d(5, stride=2), no BN after the 768 conv (quark0
    comments it out "for consistency with the experiments in the paper")."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__(c, num_classes, pool_stride=2, bn_after_768=False)


class _DartsEvalNetwork(nn.Module):
    """Cells, auxiliary head and classifier shared by the CIFAR and ImageNet networks."""

    aux_head_cls: type[_AuxiliaryHead]
    _stem: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # (s0, s1) of cell 0

    def __init__(
        self,
        genotype: DartsGenotype | str,
        num_classes: int,
        layers: int,
        init_channels: int,
        auxiliary: bool,
        drop_path_rate: float,
        c_stem: int,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if init_channels < 1:
            raise ValueError(f"init_channels must be >= 1, got {init_channels}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.genotype = get_genotype(genotype)
        self.num_classes = num_classes
        self.layers = layers
        self.drop_path_rate = float(drop_path_rate)
        self.drop_path_prob = float(drop_path_rate)
        # quark0 NetworkCIFAR/NetworkImageNet: the tower follows cell 2·layers//3.
        self.aux_index = 2 * layers // 3
        c_prev_prev, c_prev, c_curr = c_stem, c_stem, init_channels
        self.cells = nn.ModuleList()
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)  # quark0 Network.__init__
            if reduction:
                c_curr *= 2
            cell = EvalCell(self.genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_index:
                c_aux = c_prev
        self.num_features = c_prev
        self.auxiliary_head = self.aux_head_cls(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def set_drop_path(self, epoch: int, epochs: int) -> float:
        """quark0 train.py: `model.drop_path_prob = args.drop_path_prob * epoch / args.epochs`
        at the start of each epoch (0-based), so the first epoch trains without drop-path."""
        if epochs < 1 or not 0 <= epoch < epochs:
            raise ValueError(f"epoch {epoch} is not in [0, {epochs})")
        self.drop_path_prob = self.drop_path_rate * epoch / epochs
        return self.drop_path_prob

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0, s1 = self._stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if with_aux and i == self.aux_index and self.auxiliary_head is not None:
                aux = self.auxiliary_head(s1)
        return s1, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's feature map (timm convention), without the auxiliary tower."""
        return self._run(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pooling(x).flatten(1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; `(logits, aux_logits)` in training mode when the network has the tower."""
        feats, aux = self._run(x, with_aux=self.training)
        logits = self.forward_head(feats)
        return (logits, aux) if aux is not None else logits

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A new classifier (and auxiliary classifier) for `num_classes` outputs."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes)
        if self.auxiliary_head is not None:
            self.auxiliary_head.classifier = nn.Linear(AUX_CHANNELS[1], num_classes)


class NetworkCIFAR(_DartsEvalNetwork):
    """quark0 NetworkCIFAR: stem Conv3x3(in, 3C) + BN, then the cells (first two inputs both
    the stem output); auxiliary tower for 8x8 maps."""

    aux_head_cls = AuxiliaryHeadCIFAR

    def __init__(
        self,
        genotype: DartsGenotype | str = "DARTS_V2",
        num_classes: int = 10,
        layers: int = 20,
        init_channels: int = 36,
        auxiliary: bool = True,
        drop_path_rate: float = 0.0,
        in_chans: int = 3,
    ) -> None:
        stem_multiplier = 3  # quark0 NetworkCIFAR: stem_multiplier = 3
        c_stem = stem_multiplier * init_channels
        super().__init__(
            genotype,
            num_classes,
            layers,
            init_channels,
            auxiliary,
            drop_path_rate,
            c_stem=c_stem,
            reduction_prev=False,
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        self.pretrained_cfg = _data_cfg("cifar", num_classes, in_chans)

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class NetworkImageNet(_DartsEvalNetwork):
    """quark0 NetworkImageNet: stem0 = Conv3x3 s2 (in, C/2) + BN + ReLU + Conv3x3 s2 (C/2, C)
    + BN; stem1 = ReLU + Conv3x3 s2 (C, C) + BN; the first cell takes (stem0, stem1) and treats
    its first input as coming from a reduction. quark0 pools with AvgPool2d(7) at 224x224,
    i.e. over the whole 7x7 map: global average pooling, which also serves other sizes."""

    aux_head_cls = AuxiliaryHeadImageNet

    def __init__(
        self,
        genotype: DartsGenotype | str = "DARTS_V2",
        num_classes: int = 1000,
        layers: int = 14,
        init_channels: int = 48,
        auxiliary: bool = True,
        drop_path_rate: float = 0.0,
        in_chans: int = 3,
    ) -> None:
        if init_channels % 2:
            raise ValueError(f"NetworkImageNet needs even init_channels, got {init_channels}")
        super().__init__(
            genotype,
            num_classes,
            layers,
            init_channels,
            auxiliary,
            drop_path_rate,
            c_stem=init_channels,
            reduction_prev=True,
        )
        c = init_channels
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_chans, c // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),  # stem0's output is the first cell's s0 as well
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.pretrained_cfg = _data_cfg("imagenet", num_classes, in_chans)

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


def _data_cfg(net: str, num_classes: int, in_chans: int) -> dict[str, Any]:
    """What timm's `resolve_data_config` reads: input size, normalization, crop."""
    size = NET_DEFAULTS[net]["image_size"]
    cifar = net == "cifar"
    return {
        "input_size": (in_chans, size, size),
        "mean": CIFAR_MEAN if cifar else IMAGENET_MEAN,
        "std": CIFAR_STD if cifar else IMAGENET_STD,
        "interpolation": "bilinear",
        "crop_pct": 1.0 if cifar else 0.875,  # Resize(256) + CenterCrop(224)
        "num_classes": num_classes,
        "first_conv": "stem.0" if cifar else "stem0.0",
        "classifier": "classifier",
    }


_TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _create(cls: type[_DartsEvalNetwork], pretrained: bool, kwargs: dict[str, Any]) -> Any:
    if pretrained:
        raise ValueError(f"{cls.__name__} has no pretrained weights; train it (evaluator retrain)")
    for key in _TIMM_ONLY:
        kwargs.pop(key, None)
    return cls(**kwargs)


@register_model
def nasrepro_darts_cifar(pretrained: bool = False, **kwargs: Any) -> NetworkCIFAR:
    """DARTS CIFAR network (quark0 NetworkCIFAR); genotype defaults to DARTS_V2 as quark0's
    train.py (`--arch DARTS`, DARTS = DARTS_V2)."""
    return _create(NetworkCIFAR, pretrained, kwargs)


@register_model
def nasrepro_darts_imagenet(pretrained: bool = False, **kwargs: Any) -> NetworkImageNet:
    """DARTS ImageNet network (quark0 NetworkImageNet); genotype defaults to DARTS_V2."""
    return _create(NetworkImageNet, pretrained, kwargs)


MODEL_NAMES = {"cifar": "nasrepro_darts_cifar", "imagenet": "nasrepro_darts_imagenet"}


def count_eval_params(model: nn.Module) -> int:
    """Parameters of the network without its auxiliary tower: quark0 cnn/utils.py
    `count_parameters_in_MB` skips every parameter whose name contains "auxiliary". BN affine
    weights and the classifier count; BN running statistics are buffers and do not."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)


def count_eval_flops(model: nn.Module, image_size: int, in_chans: int = 3) -> int:
    """Multiply-adds for one image under the default convention (`complexity.count_flops`,
    eval mode: the tower is not run)."""
    return count_flops(model, (in_chans, image_size, image_size))


def count_eval_flops_by_convention(
    model: nn.Module, image_size: int, in_chans: int = 3
) -> dict[str, int]:
    """Multiply-adds for one image under every convention of `complexity.CONVENTIONS`."""
    return count_flops_by_convention(model, (in_chans, image_size, image_size))


def eval_net_info(
    genotype: str, net: str, num_classes: int, image_size: int | None = None
) -> dict[str, int]:
    """`nasrepro info --net cifar|imagenet`: parameters (auxiliary tower excluded) and FLOPs of
    the genotype's evaluation network at the published size (CIFAR 20 cells / 36 channels at
    32x32; ImageNet 14 / 48 at 224x224). `genotype` is a name or a `Genotype(...)` string."""
    if net not in NET_DEFAULTS:
        raise ValueError(f"unknown evaluation network {net!r} (known: {', '.join(NET_DEFAULTS)})")
    cfg = NET_DEFAULTS[net]
    cls = NetworkCIFAR if net == "cifar" else NetworkImageNet
    model = cls(
        get_genotype(genotype),
        num_classes=num_classes,
        layers=cfg["layers"],
        init_channels=cfg["init_channels"],
        auxiliary=True,
    )
    size = image_size or cfg["image_size"]
    return {
        "params": count_eval_params(model),
        "arch_params": 0,
        "flops": count_eval_flops(model, size),
    }
