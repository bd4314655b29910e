"""Evaluation networks of searched cells.

`nasrepro.nets.genotypes`: named DARTS-cell genotypes (reference and published cells).
`nasrepro.nets.darts_eval`: the DARTS CIFAR/ImageNet evaluation networks, registered as the
timm models `nasrepro_darts_cifar` and `nasrepro_darts_imagenet` when it is imported (it
imports timm, so it is imported where a network is built, not here).
"""
