"""What a sweep depends on: :class:`SweepConfig`, its validation, the memory check of the exact quantizer
and the authors' paper-scale settings (chapter 9; the protocol is in :mod:`poprisk.experiments`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from poprisk import calibration, checks, data, models, quantize, stats
from poprisk.experiments.compressors import LAYER_SUBSETS, NOISE, NOISE_REFERENCES, PRUNE_METHODS

MODELS = ("mlp", "vgg_small")
SWEEPS = ("quantize", "prune", "prune_quantize")
#: Input normalizations: ``"unit"`` keeps the loaders' [0, 1]; ``"authors"`` is their (x − mean) / std.
NORMALIZATIONS = {"unit": None, "authors": (0.1307, 0.3081)}
#: Fields of :class:`SweepConfig` that determine a trained network (with the training data's hash, the
#: code and the environment they make its cache key; :func:`training_payload`).
TRAINING_FIELDS = ("dataset", "n_test", "split_seed", "n_val", "n_train", "replace", "normalize", "model",
                   "model_kwargs", "epochs", "batch_size", "lr", "momentum", "weight_decay", "augment")
#: Input shape of each data set (for the memory check at construction).
_INPUT_SHAPES = {"mnist_sample": (784,), "digits": (64,), "fashion_mnist": (784,), "mnist": (28, 28),
                 "cifar10": (3, 32, 32)}
#: Share of this machine's memory that the exact quantizer's back-pointers may take.
_MEMORY_SHARE = 0.8


# --------------------------------------------------------------------------------------------------- config

def _names(value, name: str, allowed, *, empty: bool = True) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list/tuple of names, got {value!r}")
    out = tuple(value)
    bad = [v for v in out if not isinstance(v, str) or v not in allowed]
    if bad:
        raise ValueError(f"{name}: unknown {bad}; allowed: {sorted(allowed)}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a name twice: {out}")
    if not out and not empty:
        raise ValueError(f"{name} must not be empty")
    return out


def _numbers(value, name: str, check) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list/tuple of numbers, got {value!r}")
    out = tuple(check(v, f"{name}[{i}]") for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a value twice: {out}")
    return out


def _choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def _optional_count(value, name: str):
    return None if value is None else checks.integer(value, name, low=1)


def hw_exact_memory_bytes(n: int, k: int) -> int:
    """Memory the exact quantizer (:func:`poprisk.quantize.weighted_kmeans_1d`) needs for ``n`` weights and
    ``K = k`` centres: its ``K × (n+1)`` int32 back-pointers plus about ten float64 arrays of length ``n``."""
    k = min(int(k), int(n))
    return 4 * k * (int(n) + 1) + 80 * int(n)


def machine_memory_bytes() -> int:
    """Physical memory of this machine (``sysconf``)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep depends on. Defaults: the book's offline MNIST setting (chapter 9).

    Data: ``dataset`` (``"mnist_sample"``/``"digits"`` offline, ``"mnist"``/``"cifar10"`` through torchvision),
    ``n_test`` held-out test images (``None`` keeps torchvision's official test set; required offline),
    ``n_val`` validation images split off the training pool once (see the module docstring for why a fixed
    split; the pool shrinks by ``n_val``: 5,000 − 2,000 − 1,000 = 2,000 images for the default
    ``mnist_sample``), ``split_seed``, and a training subsample of ``n_train`` images per seed (``replace``:
    drawn with replacement, as the authors did; ``None``: the whole pool). ``normalize``: ``"unit"`` ([0, 1] inputs) or
    ``"authors"`` (``(x − 0.1307)/0.3081``, MNIST-type data only). Model: ``model`` in :data:`MODELS` with
    ``model_kwargs`` (pairs, e.g. ``(("hidden", (64,)),)``). Training: ``epochs``, ``batch_size``, ``lr``,
    ``momentum``, ``weight_decay``; ``augment`` adds random crops and flips (image models). ``seeds``: one
    network per seed.

    Compression: ``methods`` (keys of :data:`poprisk.quantize.METHODS`, and :data:`NOISE`), ``bits``,
    ``betas`` (the β grid of ``"drhw"``, Algorithm 1), ``linear_betas`` (the λ grid of ``"drhw_linear"``, the
    authors' regularizer; their script uses 30), ``iters`` (Lloyd steps), ``noise_reference`` (the quantizer
    whose distortion the noise control matches, at each of ``bits``), ``layers`` (subsets of
    :data:`LAYER_SUBSETS` to compress, each its own rows), ``prune_methods``, ``prune_ratios``, and
    ``prune_quant_methods`` at ``prune_quant_bits`` (β from ``prune_quant_betas``) for pruning followed by
    quantization. Curvature: ``curvature`` (a method of :func:`poprisk.curvature.hessian_diag`) on
    ``curvature_samples`` training images. Calibration: ``fixed_temperature`` (a round number used as a
    control that no split of the current run tunes; the default 2 was adopted after an earlier review had
    scored T ∈ {1.5, 2, 2.5, 3} on chapter 9's test digits, where 2 did best — a value seen to work before,
    not a data-free choice) and ``ece_bins``. ``download``
    lets :func:`poprisk.data.load_torchvision` fetch data into ``data_root``.

    Every field is checked here, before any work: names against the real registries, numbers finite and in
    range, booleans real ``bool`` (``"no"`` is refused), seeds distinct non-negative integers, and the memory
    that ``hw_exact`` would need at the largest ``bits`` against this machine's memory.
    """

    dataset: str = "mnist_sample"
    n_test: int | None = 2000
    n_val: int = 1000
    split_seed: int = 0
    n_train: int | None = 1000
    replace: bool = True
    normalize: str = "unit"
    model: str = "mlp"
    model_kwargs: tuple = ()
    epochs: int = 25
    batch_size: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = False
    seeds: tuple = (0, 1, 2, 3, 4)
    methods: tuple = ("uniform", "kmeans", "hw_kmeans", "hw_exact", "drhw")
    bits: tuple = (1, 2, 3, 4, 5)
    betas: tuple = (30.0,)
    linear_betas: tuple = (30.0,)
    iters: int = 30
    noise_reference: str = "kmeans"
    layers: tuple = ("all",)
    prune_methods: tuple = PRUNE_METHODS
    prune_ratios: tuple = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)
    prune_quant_methods: tuple = ("kmeans", "hw_kmeans")
    prune_quant_bits: int = 2
    prune_quant_betas: tuple = (30.0,)
    curvature: str = "ggn"
    curvature_samples: int = 1000
    fixed_temperature: float = 2.0
    ece_bins: int = 15
    data_root: str = "data"
    download: bool = False

    def __post_init__(self):
        from poprisk import curvature

        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        _choice(self.dataset, "dataset", data.DATASETS + data.TORCHVISION_DATASETS)
        _choice(self.model, "model", MODELS)
        _choice(self.normalize, "normalize", tuple(NORMALIZATIONS))
        if self.normalize == "authors" and self.dataset == "cifar10":
            raise ValueError("normalize='authors' is the MNIST mean/std (0.1307, 0.3081); it is not defined "
                             "for dataset='cifar10'")
        _choice(self.curvature, "curvature", curvature.METHODS)
        _choice(self.noise_reference, "noise_reference", [m for m in NOISE_REFERENCES if m in quantize.METHODS])
        if not isinstance(self.data_root, str):
            raise TypeError(f"data_root must be a string, got {type(self.data_root).__name__}")
        try:
            kwargs = self.model_kwargs if isinstance(self.model_kwargs, dict) else dict(self.model_kwargs)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"model_kwargs must be a dict or (name, value) pairs, got {self.model_kwargs!r}") \
                from exc
        put("model_kwargs", tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v)
                                         for k, v in kwargs.items())))
        for name in ("replace", "augment", "download"):
            put(name, checks.boolean(getattr(self, name), name))
        for name, low in (("epochs", 1), ("batch_size", 1), ("iters", 0), ("prune_quant_bits", 1),
                          ("curvature_samples", 1), ("ece_bins", 1), ("n_val", 1)):
            put(name, checks.integer(getattr(self, name), name, low=low))
        put("split_seed", checks.seed(self.split_seed, "split_seed"))
        checks.integer(self.prune_quant_bits, "prune_quant_bits", high=16)
        put("n_train", _optional_count(self.n_train, "n_train"))
        put("n_test", _optional_count(self.n_test, "n_test"))
        if self.n_test is None and self.dataset in data.DATASETS:
            raise ValueError(f"n_test must be set for the offline data set {self.dataset!r}")
        put("lr", checks.real(self.lr, "lr", low=0.0, low_open=True))
        put("momentum", checks.real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True))
        put("weight_decay", checks.real(self.weight_decay, "weight_decay", low=0.0))
        put("fixed_temperature", checks.real(self.fixed_temperature, "fixed_temperature",
                                             low=calibration.T_MIN, high=calibration.T_MAX))
        put("seeds", _numbers(self.seeds, "seeds", checks.seed))
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        put("methods", _names(self.methods, "methods", tuple(quantize.METHODS) + (NOISE,)))
        put("prune_quant_methods", _names(self.prune_quant_methods, "prune_quant_methods",
                                          tuple(quantize.METHODS)))
        put("prune_methods", _names(self.prune_methods, "prune_methods", PRUNE_METHODS))
        put("layers", _names(self.layers, "layers", LAYER_SUBSETS, empty=False))
        put("bits", _numbers(self.bits, "bits", lambda v, n: checks.integer(v, n, low=1, high=16)))
        for name in ("betas", "linear_betas", "prune_quant_betas"):
            put(name, _numbers(getattr(self, name), name, lambda v, n: checks.real(v, n, low=0.0)))
        put("prune_ratios", _numbers(self.prune_ratios, "prune_ratios",
                                     lambda v, n: checks.real(v, n, low=0.0, high=1.0, high_open=True)))
        if self.augment and self.model != "vgg_small":
            raise ValueError("augment=True (crops and flips) is meant for image models: use model='vgg_small'")
        with torch.device("meta"):  # validates model_kwargs and gives the layer sizes, allocating nothing
            shape = _INPUT_SHAPES[self.dataset]
            try:
                net = _network(self, shape, 10)
            except TypeError as exc:
                raise ValueError(f"model_kwargs {dict(self.model_kwargs)} do not fit model "
                                 f"{self.model!r}: {exc}") from exc
        check_memory(self, net)

    def replace_(self, **changes) -> "SweepConfig":
        """A copy with some fields changed (``dataclasses.replace``; the copy is validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The fields as a plain dict (tuples as lists: JSON-ready)."""
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (tuple, list)) else stats.plain(v)
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def describe(self) -> pd.DataFrame:
        """The configuration as a two-column DataFrame (``field``, ``value``) for :func:`poprisk.tables.show`."""
        return pd.DataFrame({"field": [f.name for f in dataclasses.fields(self)],
                             "value": [repr(getattr(self, f.name)) for f in dataclasses.fields(self)]})


def check_memory(cfg: SweepConfig, model: nn.Module) -> None:
    """Refuse (``ValueError``) a configuration whose ``hw_exact`` runs would need more than
    ``_MEMORY_SHARE`` of this machine's memory on the largest layer of ``model`` (named with the estimate)."""
    uses = []
    if "hw_exact" in cfg.methods and cfg.bits:
        uses.append(("methods/bits", max(cfg.bits)))
    if NOISE in cfg.methods and cfg.noise_reference == "hw_exact" and cfg.bits:
        uses.append(("noise_reference/bits", max(cfg.bits)))
    if "hw_exact" in cfg.prune_quant_methods:
        uses.append(("prune_quant_methods/prune_quant_bits", cfg.prune_quant_bits))
    if not uses:
        return
    sizes = {name: m.weight.numel() for name, m in models.compressible_layers(model)}
    layer, n = max(sizes.items(), key=lambda kv: kv[1])
    limit = _MEMORY_SHARE * machine_memory_bytes()
    for setting, bits in uses:
        need = hw_exact_memory_bytes(n, 2 ** bits)
        if need > limit:
            raise ValueError(f"hw_exact at {bits} bits ({setting}) needs about {need / 2**30:.1f} GiB for layer "
                             f"{layer!r} ({n} weights, K = {2 ** bits}), more than {_MEMORY_SHARE:.0%} of this "
                             f"machine's {machine_memory_bytes() / 2**30:.1f} GiB; lower the bits or drop "
                             "hw_exact")


def paper_scale_config(dataset: str = "mnist", *, download: bool = True, data_root: str = "data",
                       check: bool = True) -> SweepConfig:
    """The authors' full setting (paper notes §6), for a GPU machine or Colab with network access.

    * ``"mnist"``: the 784-256-256-10 MLP on a 10% subsample of full MNIST (6,000 images drawn with
      replacement), 25 epochs of SGD (lr 0.01, momentum 0.9, weight decay 1e-4, batch 10), 5 seeds, the
      official 10,000 test images; 5,000 validation images split off the 60,000 training images.
    * ``"cifar10"``: :class:`poprisk.models.VGGSmall` on a 20% subsample (10,000 images) with crop/flip
      augmentation, trained with the defaults of the authors' ``retrain.py`` (whose default ``--type`` is
      ``cifar10``): SGD with lr 0.01, momentum 0.9, weight decay 1e-4, batch 10, 25 epochs, Xavier-normal
      weights. Their CIFAR data loader is not in the released repository, so the augmentation is this
      book's choice (pad-4 crops and flips, as in the pytorch-playground loaders their code builds on).

    Both load through :func:`poprisk.data.load_torchvision`. With ``check=True`` (default) this raises a
    ``RuntimeError`` saying what is missing when torchvision cannot be imported, instead of failing later.
    """
    if dataset not in data.TORCHVISION_DATASETS:
        raise ValueError(f"paper-scale dataset must be one of {data.TORCHVISION_DATASETS}, got {dataset!r}")
    if check:
        try:
            import torchvision  # noqa: F401
        except Exception as exc:
            raise RuntimeError(
                f"the paper-scale {dataset!r} experiment needs torchvision and the full data set, which this "
                f"machine lacks ({exc}). Run it on Colab (GPU runtime) or on a networked machine after "
                "`pip install 'poprisk[download]'`; the offline chapter uses SweepConfig() instead."
            ) from exc
    common = dict(dataset=dataset, n_test=None, n_val=5000, replace=True, seeds=(0, 1, 2, 3, 4),
                  download=download, data_root=data_root, betas=(3.0, 10.0, 30.0, 100.0, 300.0),
                  curvature_samples=2000)
    if dataset == "mnist":
        return SweepConfig(model="mlp", n_train=6000, epochs=25, batch_size=10, lr=0.01, momentum=0.9,
                           weight_decay=1e-4, **common)
    return SweepConfig(model="vgg_small", n_train=10000, epochs=25, batch_size=10, lr=0.01, momentum=0.9,
                       weight_decay=1e-4, augment=True, prune_ratios=(0.0, 0.5, 0.75, 0.9, 0.95), **common)




def _check_cfg(cfg) -> None:
    if not isinstance(cfg, SweepConfig):
        raise TypeError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")


def _network(cfg: SweepConfig, input_shape, n_classes: int) -> nn.Module:
    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "mlp":
        return models.MLP(in_features=int(np.prod(input_shape)), n_classes=n_classes, **kwargs)
    if len(input_shape) != 3:
        raise ValueError(f"model 'vgg_small' needs images shaped (N, C, H, W); the data have shape "
                         f"(N, {', '.join(map(str, input_shape))})")
    return models.VGGSmall(in_channels=int(input_shape[0]), n_classes=n_classes, **kwargs)

