"""The authors' protocol at full scale on Fashion-MNIST, offline (chapter 9b).

:func:`fashion_mnist_config` is the MNIST configuration of the authors' released code (``retrain.py``:
784-256-256-10 MLP with dropout 0.2, SGD with learning rate 0.01, momentum 0.9, weight decay 1e-4, batches
of 10, 25 epochs, a 10% sample — 6,000 images — drawn with replacement per model) applied to Fashion-MNIST
(Xiao et al. 2017), whose 60,000/10,000 idx files Debian ships as ``dataset-fashion-mnist``
(:func:`poprisk.data.load_dataset`): 5,000 validation images split off the 60,000 training images (a pool of
55,000), the official 10,000 test images, the authors' input normalization ``(x − 0.1307)/0.3081`` (their
MNIST constants, applied as their code applies them), and every compressor of chapter 9.
"""

from __future__ import annotations

from poprisk import checks

__all__ = ["fashion_mnist_config", "FAST_CHANGES"]

#: What FAST mode (continuous integration) changes: two seeds, small samples, short training, 2 bits.
FAST_CHANGES = dict(seeds=(0, 1), n_train=500, n_val=1000, n_test=2000, epochs=2, bits=(2,), betas=(30.0,),
                    linear_betas=(30.0,), prune_ratios=(0.0, 0.5), curvature_samples=500)


def fashion_mnist_config(*, fast: bool = False, seeds: tuple = (0, 1, 2, 3, 4, 5)):
    """The chapter-9b sweep configuration (module docstring); ``fast=True`` applies :data:`FAST_CHANGES`.
    ``seeds``: one network per seed (six by default: the issue asks for at least five)."""
    from poprisk import experiments as ex

    fast = checks.boolean(fast, "fast")
    cfg = ex.SweepConfig(
        dataset="fashion_mnist", n_test=10000, n_val=5000, n_train=6000, replace=True, normalize="authors",
        model="mlp", epochs=25, batch_size=10, lr=0.01, momentum=0.9, weight_decay=1e-4, seeds=tuple(seeds),
        methods=("uniform", "kmeans", "hw_kmeans", "hw_exact", "drhw", "drhw_linear", "noise"),
        bits=(1, 2, 3, 4, 5), betas=(3.0, 10.0, 30.0, 100.0, 300.0), linear_betas=(30.0, 300.0, 3000.0),
        prune_ratios=(0.0, 0.1, 0.25, 0.5, 0.75, 0.9), prune_quant_methods=("kmeans",),
        curvature_samples=2000, fixed_temperature=2.0)
    return cfg.replace_(**FAST_CHANGES) if fast else cfg
