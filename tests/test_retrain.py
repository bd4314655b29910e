"""DARTS evaluation networks (timm models), named genotypes, ImageNet data and proxy subsets,
and the `retrain` evaluator (smoke runs on the embedded digits and on an ImageFolder fixture)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nasrepro import catalog
from nasrepro.datasets.base import DatasetNotFound
from nasrepro.datasets.imagenet import ImageNet, proxy_subsets
from nasrepro.evaluate.retrain import (
    Cutout,
    RetrainEvaluator,
    build_scheduler,
    pcdarts_linear_lr,
)
from nasrepro.nets import darts_eval
from nasrepro.nets.darts_eval import (
    EvalCell,
    NetworkCIFAR,
    NetworkImageNet,
    count_eval_flops,
    count_eval_params,
    eval_net_info,
)
from nasrepro.nets.genotypes import GENOTYPES, get_genotype, lookup
from nasrepro.spaces.darts import DartsGenotype

C10_RECIPE = {  # the suites' quark0 CIFAR recipe
    "source": "quark0/darts cnn/train.py",
    "layers": 20,
    "init_channels": 36,
    "epochs": 600,
    "batch_size": 96,
    "lr": 0.025,
    "lr_schedule": "cosine",
    "lr_min": 0.0,
    "momentum": 0.9,
    "weight_decay": 3.0e-4,
    "grad_clip": 5.0,
    "cutout": 16,
    "drop_path": 0.2,
    "auxiliary_weight": 0.4,
}
IN_PCDARTS_RECIPE = {  # the suites' PC-DARTS ImageNet recipe
    "source": "yuhuixu1993/PC-DARTS train_imagenet.py",
    "layers": 14,
    "init_channels": 48,
    "epochs": 250,
    "batch_size": 1024,
    "lr": 0.5,
    "lr_schedule": "linear",
    "lr_min": 0.0,
    "warmup_epochs": 5,
    "momentum": 0.9,
    "weight_decay": 3.0e-5,
    "grad_clip": 5.0,
    "label_smoothing": 0.1,
    "auxiliary_weight": 0.4,
    "drop_path": 0.0,
}
# What a smoke budget's evaluator_args sets (run-level keys + recipe overrides).
SMOKE = {
    "dataset": "digits",
    "epochs": 1,
    "max_steps": 4,
    "batch_size": 16,
    "layers": 2,
    "init_channels": 4,
    "image_size": 16,
    "num_workers": 0,
}


def _aux_params(c_aux: int, num_classes: int, bn_768: bool) -> int:
    """quark0 AuxiliaryHead*: conv1x1 c->128, BN(128), conv2x2 128->768, [BN(768)], Linear."""
    return c_aux * 128 + 2 * 128 + 128 * 768 * 4 + (2 * 768 if bn_768 else 0) + 769 * num_classes


# --------------------------------------------------------------------------- parameter counts


def test_darts_v2_cifar10_params_pinned():
    # quark0 train.py logs "param size = 3.349342MB" for DARTS_V2 at 20 cells / 36 channels;
    # DARTS (ICLR 2019) Table 1 prints 3.3M. Counted: every parameter (convs, BN affine
    # weights, classifier) except the auxiliary tower (quark0 count_parameters_in_MB).
    net = NetworkCIFAR("DARTS_V2", num_classes=10, layers=20, init_channels=36, auxiliary=True)
    assert count_eval_params(net) == 3_349_342
    total = sum(p.numel() for p in net.parameters())
    # the tower sees the 2nd reduction cell's 4·144 = 576 channels
    assert total - count_eval_params(net) == _aux_params(576, 10, bn_768=True) == 476_426
    no_aux = NetworkCIFAR("DARTS_V2", 10, 20, 36, auxiliary=False)
    assert sum(p.numel() for p in no_aux.parameters()) == 3_349_342


def test_darts_v1_and_pc_darts_cifar10_params_pinned():
    # DARTS first order: 3.17 M here (the paper's Table 1 rounds both orders to 3.3M);
    # PC-DARTS Table 1: 3.6M.
    assert count_eval_params(NetworkCIFAR("DARTS_V1", 10, 20, 36)) == 3_169_414
    assert count_eval_params(NetworkCIFAR("PC_DARTS", 10, 20, 36)) == 3_634_678


def test_darts_v2_imagenet_params_pinned():
    # DARTS Table 2: 4.7M for the ImageNet network (14 cells, 48 channels, 1000 classes);
    # the ImageNet tower has no BN after its 768-channel conv (quark0 model.py).
    net = NetworkImageNet("DARTS_V2", num_classes=1000, layers=14, init_channels=48)
    assert count_eval_params(net) == 4_718_752
    total = sum(p.numel() for p in net.parameters())
    assert total - count_eval_params(net) == _aux_params(768, 1000, bn_768=False)


@pytest.mark.parametrize(
    "name, num_classes",
    [("DARTS_PT_C10_S0_1", 10), ("DARTS_PT_C10_S1_1", 10), ("DARTS_PT_C100_S4_1", 100)],
)
def test_param_counts_match_darts_pt_repo_comments(name, num_classes):
    # ruocwang/darts-pt sota/cnn/genotypes.py annotates each cell with its size in M
    net = NetworkCIFAR(name, num_classes=num_classes, layers=20, init_channels=36)
    assert round(count_eval_params(net) / 1e6, 2) == GENOTYPES[name].params_m


def test_eval_net_info_uses_eval_convention(monkeypatch):
    # the published sizes are pinned above; here a small size keeps the FLOP count fast
    monkeypatch.setitem(
        darts_eval.NET_DEFAULTS, "cifar", {"layers": 5, "init_channels": 8, "image_size": 32}
    )
    info = eval_net_info("DARTS_V2", "cifar", 10)
    net = NetworkCIFAR("DARTS_V2", 10, layers=5, init_channels=8)
    assert info == {
        "params": count_eval_params(net),
        "arch_params": 0,
        "flops": count_eval_flops(net, 32),
    }
    assert info["flops"] > 0
    with pytest.raises(ValueError, match="unknown evaluation network"):
        eval_net_info("DARTS_V2", "nb201", 10)


# --------------------------------------------------------------------------- genotypes, timm


def test_named_genotypes_parse_and_validate_in_their_space():
    from nasrepro.spaces import build_space

    for name, entry in GENOTYPES.items():
        build_space(entry.space).parse_genotype(entry.genotype)  # ops allowed on each edge
        assert entry.citation().startswith(entry.source.repo), name
    assert get_genotype("darts") == get_genotype("DARTS_V2")  # quark0: DARTS = DARTS_V2
    assert lookup("DARTS_MINUS_C10_S0").name == "DARTS_MINUS_C10_S0_0"
    text = GENOTYPES["PC_DARTS"].genotype
    assert get_genotype(text) == DartsGenotype.from_str(text)
    with pytest.raises(KeyError, match="unknown genotype name"):
        get_genotype("NOT_A_CELL")


def test_timm_create_model():
    import timm

    assert "nasrepro_darts_cifar" in timm.list_models("nasrepro_*")
    net = timm.create_model("nasrepro_darts_cifar", genotype="DARTS_V2")
    assert isinstance(net, NetworkCIFAR)
    assert count_eval_params(net) == 3_349_342  # defaults: 20 cells, 36 channels, 10 classes
    small = timm.create_model(
        "nasrepro_darts_cifar",
        genotype=get_genotype("DARTS_V1"),
        num_classes=7,
        layers=3,
        init_channels=4,
        auxiliary=True,
        drop_path_rate=0.2,
    )
    assert small.drop_path_rate == 0.2 and small.num_classes == 7
    imagenet = timm.create_model(
        "nasrepro_darts_imagenet", genotype=GENOTYPES["PC_DARTS_IMAGENET"].genotype, layers=2
    )
    assert isinstance(imagenet, NetworkImageNet)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("nasrepro_darts_cifar", pretrained=True)


# --------------------------------------------------------------------------- aux head, drop-path


def test_auxiliary_logits_only_in_training_mode():
    torch.manual_seed(0)
    # 5 cells: reductions at 1 and 3, tower after cell 3 where a 32x32 input is 8x8
    net = NetworkCIFAR("DARTS_V2", num_classes=10, layers=5, init_channels=4)
    assert net.aux_index == 3
    pooled = []
    net.auxiliary_head.pool.register_forward_hook(lambda m, i, o: pooled.append(o.shape))
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux = net(x)
    assert logits.shape == aux.shape == (2, 10)
    assert pooled == [(2, 16 * 4, 2, 2)]  # quark0's AvgPool2d(5, stride 3): 8x8 -> 2x2
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    no_aux = NetworkCIFAR("DARTS_V2", num_classes=10, layers=5, init_channels=4, auxiliary=False)
    assert isinstance(no_aux.train()(x), torch.Tensor)
    # at other sizes the tower pools adaptively to 2x2 (slices and means, same bins)
    for h, w in [(1, 1), (3, 4), (5, 7)]:
        z = torch.randn(2, 3, h, w)
        ref = torch.nn.functional.adaptive_avg_pool2d(z, 2)
        assert torch.allclose(darts_eval._adaptive_avg_pool_2x2(z), ref, atol=1e-6)
    net.train()
    assert net(torch.randn(2, 3, 16, 16))[1].shape == (2, 10)


def test_drop_path_is_per_sample_and_rescaled():
    from timm.layers import drop_path

    torch.manual_seed(0)
    x = torch.ones(4000, 2, 3, 3)
    assert torch.equal(drop_path(x, 0.3, training=False), x)  # eval mode: identity
    assert torch.equal(drop_path(x, 0.0, training=True), x)  # p = 0: identity
    y = drop_path(x, 0.3, training=True)
    per_sample = y.flatten(1)
    kept = per_sample[:, 0] > 0
    # whole samples are dropped (all zeros) or kept and scaled by 1 / (1 - p)
    assert torch.all(per_sample[~kept] == 0)
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 1 / 0.7))
    assert abs((~kept).float().mean().item() - 0.3) < 0.03


def test_cells_drop_only_non_identity_ops(monkeypatch):
    calls = []

    def recorder(h, p, training):
        calls.append((p, training))
        return h

    monkeypatch.setattr(darts_eval, "drop_path", recorder)
    g = get_genotype("DARTS_V2")  # normal cell: 2 of 8 ops are skip_connect (identity)
    cell = EvalCell(g, 8, 8, 8, reduction=False, reduction_prev=False)
    s = torch.randn(2, 8, 6, 6)
    cell.eval()
    cell(s, s, 0.3)
    cell.train()
    cell(s, s, 0.0)
    assert calls == []  # eval mode and p = 0 never drop
    cell(s, s, 0.3)
    assert calls == [(0.3, True)] * 6

    net = NetworkCIFAR("DARTS_V2", 10, layers=3, init_channels=4, drop_path_rate=0.2)
    assert net.set_drop_path(0, 600) == 0.0  # quark0: 0.2 · epoch / epochs
    assert net.set_drop_path(300, 600) == pytest.approx(0.1)


def test_eval_output_ignores_drop_path():
    torch.manual_seed(0)
    net = NetworkCIFAR("DARTS_V2", 10, layers=3, init_channels=4, drop_path_rate=0.5).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        a = net(x)
        net.drop_path_prob = 0.0
        b = net(x)
    assert torch.equal(a, b)


# --------------------------------------------------------------------------- recipe pieces


def test_schedules_match_the_reference_scripts():
    def lrs(recipe, epochs):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe["lr"])
        sched = build_scheduler(opt, recipe)
        out = []
        for e in range(epochs):
            out.append(opt.param_groups[0]["lr"])
            sched.step(e + 1)
        return out

    base = {"warmup_epochs": 0, "lr_min": 0.0, "lr_gamma": 0.97, "lr_decay_period": 1}
    cos = lrs({**base, "lr": 0.025, "lr_schedule": "cosine", "epochs": 600}, 600)
    for e in (0, 1, 300, 599):  # quark0 CosineAnnealingLR(600): epoch e uses cos(pi e / 600)
        assert cos[e] == pytest.approx(0.0125 * (1 + math.cos(math.pi * e / 600)))
    step = lrs({**base, "lr": 0.1, "lr_schedule": "step", "epochs": 10}, 10)
    assert step == pytest.approx([0.1 * 0.97**e for e in range(10)])  # quark0 StepLR(1, 0.97)
    lin = lrs({**base, "lr": 0.5, "lr_schedule": "linear", "epochs": 250, "warmup_epochs": 5}, 250)
    assert lin[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # PC-DARTS warm-up lr·(e+1)/5
    assert lin[5] == pytest.approx(0.5 * 240 / 245)  # adjust_lr: lr·(E−5−e)/(E−5)
    assert lin[249] == pytest.approx(0.5 * 1 / (245 * 5))  # last-5-epoch tail
    assert pcdarts_linear_lr(0, 1, 0.5, 5) == pytest.approx(0.1)  # 1-epoch smoke: warm-up lr


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(1)
    img = torch.ones(3, 32, 32)
    out = Cutout(16)(img)
    assert torch.equal(img, torch.ones(3, 32, 32))  # the input is not modified
    zeros = (out[0] == 0).nonzero()
    assert 0 < len(zeros) <= 16 * 16
    h = zeros[:, 0].max() - zeros[:, 0].min() + 1
    w = zeros[:, 1].max() - zeros[:, 1].min() + 1
    assert h * w == len(zeros) and torch.equal(out[0] == 0, out[2] == 0)


def test_label_smoothing_matches_pc_darts_formula():
    from nasrepro.evaluate.retrain import _criterion

    torch.manual_seed(0)
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    logp = torch.log_softmax(logits, 1)
    target = torch.nn.functional.one_hot(y, 5).float() * 0.9 + 0.1 / 5
    reference = (-target * logp).mean(0).sum()  # PC-DARTS CrossEntropyLabelSmooth
    assert _criterion(0.1)(logits, y).item() == pytest.approx(reference.item(), rel=1e-6)


# --------------------------------------------------------------------------- ImageNet data


def test_proxy_subsets_per_class_disjoint_and_reproducible():
    rng = np.random.default_rng(3)
    labels = rng.permutation(np.repeat([0, 1, 2], [1300, 732, 1000]))
    w, a = proxy_subsets(labels, (0.10, 0.025), seed=0)
    counts_w = np.bincount(labels[w], minlength=3).tolist()
    counts_a = np.bincount(labels[a], minlength=3).tolist()
    assert counts_w == [130, 73, 100]  # round(10% of each class)
    assert counts_a == [33, 18, 25]  # round(2.5%): 32.5 -> 33, 18.3 -> 18, 25
    assert not set(w) & set(a) and w == sorted(w) and a == sorted(a)
    assert (w, a) == proxy_subsets(labels.tolist(), (0.10, 0.025), seed=0)
    assert proxy_subsets(labels, seed=1) != (w, a)
    with pytest.raises(ValueError, match="class 0 has 1 images"):
        proxy_subsets([0, 1, 1, 1], (0.5, 0.5))
    with pytest.raises(ValueError, match="fractions"):
        proxy_subsets(labels, (0.8, 0.4))


def _imagenet_fixture(root, classes=("n01440764", "n01443537"), per_class=4):
    """A FIXTURE ImageFolder tree: a few random 40x30 JPEG/PNG images per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        for c in classes:
            folder = root / "imagenet" / part / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
                img.save(folder / (f"{c}_{i}.JPEG" if i % 2 else f"{c}_{i}.png"))


def test_imagenet_image_folder_fixture(tmp_path):
    _imagenet_fixture(tmp_path)
    source = ImageNet(image_size=32)
    train = source.dataset("train", tmp_path, augment=True)
    test = source.dataset("test", tmp_path)
    assert len(train) == len(test) == 8
    assert train.class_to_idx == test.class_to_idx == {"n01440764": 0, "n01443537": 1}
    x, y = train[5]
    assert x.shape == (3, 32, 32) and y == 1
    assert test[0][0].shape == (3, 32, 32)
    parts = source.search_parts(tmp_path)
    assert len(parts.weight_indices) == len(parts.arch_indices) == 2  # >= 1 per class each
    assert not set(parts.weight_indices) & set(parts.arch_indices)
    with pytest.raises(DatasetNotFound, match="imagenet"):
        source.dataset("train", tmp_path / "elsewhere")
    with pytest.raises(DatasetNotFound, match="cannot be downloaded"):
        source.dataset("train", tmp_path, download=True)
    (tmp_path / "imagenet" / "val" / "n09999999").mkdir()
    with pytest.raises(ValueError, match="different class folders"):
        source.dataset("test", tmp_path)


# --------------------------------------------------------------------------- the evaluator


def test_retrain_smoke_on_digits():
    recipes = {"cifar10": C10_RECIPE, "imagenet": IN_PCDARTS_RECIPE}
    evaluator = catalog.get("evaluator", "retrain")(recipes=recipes, **SMOKE)
    logged, lines = [], []
    result = evaluator.score(
        "DARTS_V2",
        ["cifar10", "imagenet"],
        ["test_acc", "valid_acc"],
        space="darts",
        data_root=None,
        device="cpu",
        seed=0,
        log=lambda metrics, step: logged.append((step, metrics)),
        progress=lines.append,
    )
    m = result.metrics["cifar10"]
    assert set(m) == {"test_acc", "test_err", "top1_err", "top5_err", "params_m", "flops_m"}
    assert all(math.isfinite(v) for v in m.values())
    assert 0 <= m["test_acc"] <= 100 and m["test_err"] == pytest.approx(100 - m["test_acc"])
    assert 0 < m["params_m"] < 0.01 and m["flops_m"] > 0  # the 2-cell, 4-channel smoke net
    src = result.source
    assert src["smoke"] and src["reduced"] and not src["fixture"]
    assert src["unavailable"] == ["valid_acc"] and src["not_covered"] == []
    run = src["runs"]["cifar10"]
    assert run["trained_on"] == "digits" and run["substituted"]
    assert run["epochs_run"] == 1 and run["steps_per_epoch"] == 4 and not run["full_epochs"]
    assert run["recipe"]["cutout"] == 16 and run["recipe"]["layers"] == 2
    assert run["paper_recipe"]["layers"] == 20 and run["overridden"]["epochs"] == 1
    assert run["test_images_evaluated"] == run["test_size"] == 450
    assert [s for s, _ in logged] == [0, 0]  # one epoch per dataset
    assert logged[0][1]["retrain.cifar10.test_acc"] == m["test_acc"]
    assert len(lines) == 2 and "epoch 1/1" in lines[0]
    # the ImageNet recipe (PC-DARTS) trained on the 16x16 digits uses the CIFAR network
    other = src["runs"]["imagenet"]
    assert other["net"] == "cifar" and other["recipe"]["lr_schedule"] == "linear"
    assert set(result.metrics) == {"cifar10", "imagenet"}


def test_retrain_imagenet_recipe_on_fixture_tree(tmp_path, monkeypatch):
    # PC-DARTS recipe (linear schedule, warm-up, label smoothing) on the ImageNet network
    _imagenet_fixture(tmp_path)
    evaluator = RetrainEvaluator(
        recipes={"imagenet": IN_PCDARTS_RECIPE},
        epochs=1,
        max_steps=1,
        batch_size=4,
        layers=2,
        init_channels=4,
        image_size=32,
        num_workers=0,
        fixture=True,
    )
    result = evaluator.score(
        "PC_DARTS_IMAGENET", ["imagenet"], ["top1_err", "top5_err"], data_root=str(tmp_path)
    )
    m = result.metrics["imagenet"]
    assert 0 <= m["top5_err"] <= m["top1_err"] <= 100
    run = result.source["runs"]["imagenet"]
    assert result.source["fixture"] and run["net"] == "imagenet" and not run["substituted"]
    assert run["history"][0]["lr"] == pytest.approx(0.1)  # warm-up epoch 0: lr / 5
    assert run["num_classes"] == 1000 and run["test_size"] == 8


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "`recipes` must map"),
        ({"recipes": {"cifar10": C10_RECIPE}, "epoch": 3}, r"unknown option\(s\) \['epoch'\]"),
        ({"recipes": {"cifar10": {**C10_RECIPE, "lr_sched": "cosine"}}}, "recipes.cifar10."),
        ({"recipes": {"cifar10": {**C10_RECIPE, "lr_schedule": "poly"}}}, "lr_schedule"),
        ({"recipes": {"cifar10": {**C10_RECIPE, "epochs": 0}}}, "epochs = 0"),
        ({"recipes": {"cifar10": {**C10_RECIPE, "warmup_epochs": 5}}}, "warmup_epochs"),
        ({"recipes": {"imagenet": {**IN_PCDARTS_RECIPE, "lr_min": 0.01}}}, "has no lr_min"),
        ({"recipes": {"cifar11": C10_RECIPE}}, "not a registered dataset"),
        ({"recipes": {"cifar10": C10_RECIPE}, "dataset": "mnist"}, "dataset = 'mnist'"),
        ({"recipes": {"cifar10": C10_RECIPE}, "max_steps": 0}, "max_steps = 0"),
        ({"recipes": {"cifar10": C10_RECIPE}, "source": "x"}, "belongs inside a recipe"),
    ],
)
def test_invalid_options_raise_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message) as err:
        RetrainEvaluator(**options)
    assert "\n" not in str(err.value)


def test_invalid_score_requests_raise_one_line_errors():
    evaluator = RetrainEvaluator(recipes={"cifar10": C10_RECIPE}, **SMOKE)
    for kwargs, message in [
        ({"space": "nb201"}, "not space 'nb201'"),
        ({"datasets": ["svhn"]}, "no recipe for any of"),
        ({"genotype": "Genotype(normal=[('noise', 0)])"}, "genotype"),
    ]:
        with pytest.raises((ValueError, KeyError), match=message) as err:
            evaluator.score(
                kwargs.get("genotype", "DARTS_V2"),
                kwargs.get("datasets", ["cifar10"]),
                ["test_acc"],
                space=kwargs.get("space", "darts"),
            )
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("report", ["final", "best"])
def test_retrain_records_final_and_best_epoch_and_reports_the_chosen_one(report):
    evaluator = catalog.get("evaluator", "retrain")(
        recipes={"cifar10": C10_RECIPE}, **{**SMOKE, "epochs": 3, "max_steps": 2}, report=report
    )
    result = evaluator.score("DARTS_V2", ["cifar10"], ["test_acc"], space="darts", seed=1)
    run = result.source["runs"]["cifar10"]
    accs = [row["test_acc"] for row in run["history"]]
    assert len(accs) == 3 and run["reported"] == report
    assert run["final_epoch_test_acc"] == accs[-1]
    assert run["best_test_acc"] == max(accs) and accs[run["best_epoch"]] == max(accs)
    want = accs[-1] if report == "final" else max(accs)
    m = result.metrics["cifar10"]
    assert m["test_acc"] == want and m["test_err"] == pytest.approx(100 - want)
    top5 = run["final_epoch_top5"] if report == "final" else run["best_epoch_top5"]
    assert m["top5_err"] == pytest.approx(100 - top5)
    with pytest.raises(ValueError, match="report"):
        catalog.get("evaluator", "retrain")(recipes={"cifar10": C10_RECIPE}, report="last")


def test_channels_last_and_bf16_retrain_the_same_cell(monkeypatch):
    """`--fast` retrains in channels_last: the fp32 math up to rounding (the first step's
    loss, before any update, equal to 1e-5 relative: only the convolutions' summation order
    differs); `precision: bf16` is a recipe variant that trains too and says so.
    `complexity` counts the network `train_on` would train, untrained."""
    one_step = {**SMOKE, "max_steps": 1}
    evaluator = catalog.get("evaluator", "retrain")(recipes={"cifar10": C10_RECIPE}, **one_step)
    from nasrepro.nets.genotypes import get_genotype

    geno = get_genotype("DARTS_V2")

    def first_loss(ev, channels_last: bool) -> tuple[float, dict]:
        values, info = ev.train_on(
            "cifar10", geno, None, torch.device("cpu"), 0, lambda m, s: None,
            lambda line: None, channels_last=channels_last,
        )  # fmt: skip
        return info["history"][0]["train_loss"], {**values, **info}

    plain, run = first_loss(evaluator, False)
    fast, run_fast = first_loss(evaluator, True)
    assert fast == pytest.approx(plain, rel=1e-5)
    assert run_fast["speed_switches"] == {"channels_last": True}
    assert run["precision"] == "fp32"
    counted = evaluator.complexity("cifar10", geno.to_str())
    assert counted == {"params_m": run["params_m"], "flops_m": run["flops_m"]}
    bf16 = catalog.get("evaluator", "retrain")(
        recipes={"cifar10": {**C10_RECIPE, "precision": "bf16"}}, **one_step
    )
    loss, run_bf16 = first_loss(bf16, False)
    assert run_bf16["precision"] == "bf16" and math.isfinite(loss)
