"""Sweeps of the neural-network experiments: train, compress, calibrate, measure (chapter 9; chapter 10 reads
its tables).

Protocol
--------
Data. The data set that :class:`SweepConfig` names is split once into a test set (``n_test`` images), a
**validation set** (``n_val`` images) and the training pool (the rest); all three are disjoint and fixed by
``split_seed`` (:meth:`poprisk.data.Split.with_validation`). Every seed draws its own training subsample of
``n_train`` images from the pool (with replacement by default, as the authors did). The validation set is a
fixed split of the pool rather than each seed's unused pool images because then (i) no validation image is
ever a training image of *any* seed, (ii) every seed is scored on the same validation images, so choices
made on them are paired across seeds exactly like the test comparisons, and (iii) its size does not vary
with the seed's draw. Inputs are in ``[0, 1]`` (``normalize="unit"``) or standardised as in the authors' code,
``(x − 0.1307)/0.3081`` (``normalize="authors"``).

Networks. One network ``W`` per seed (its own subsample, initialisation and SGD order) is trained to
over-fit, then compressed after training, without fine-tuning, into ``Ŵ`` by

* per-layer scalar quantization with ``K = 2**bits`` shared values (:mod:`poprisk.quantize`: uniform, K-means,
  Hessian-weighted K-means, its exact 1-D optimum, DRHW = Algorithm 1 with diameter weight ``β`` on a grid
  ``betas``, and the authors' released regularizer ``drhw_linear`` — a penalty linear in the diameter — on
  its own grid ``linear_betas``);
* pruning a fraction of the weights of each layer (:mod:`poprisk.prune`: by magnitude, or by the curvature
  saliency ``h w²/2`` of optimal brain damage), and pruning followed by quantization of the survivors;
* the **perturbation control** ``"noise"``: ``Ŵ = W + s·z`` per layer with ``z ~ N(0, I)`` and the scale ``s``
  set so that the Hessian-weighted distortion ``Σ_j h_j (ŵ_j − w_j)²`` equals, exactly, that of the reference
  quantizer ``noise_reference`` (default K-means) at the same number of bits on the same layer. Nothing is
  compressed (ratio 1): it asks whether *any* perturbation of that size changes the test loss as much.

``layers`` chooses what is compressed: ``"all"`` layers, the ``"hidden"`` ones (all but the last Linear/Conv),
or the ``"output"`` layer only; untouched layers count 32 bits per weight in the ratio.

Measurements (one row per seed × setting, the uncompressed network as the ``"baseline"`` row). For
``Ŵ`` with logits ``z``: the mean cross-entropy (nats) and accuracy on the seed's training subsample, the
validation set and the test set; the gap ``L_test − L_train``; the test ECE (15 equal-width bins,
:func:`poprisk.calibration.expected_calibration_error`); the mean test-logit norm ``mean_i ‖z_i‖₂``; the
temperature ``T`` fitted on the **validation** logits (:func:`poprisk.calibration.fit_temperature`; column
``temperature``, since ``df.T`` is pandas' transpose) and the train/val/test cross-entropy and test ECE of
``z / T`` (columns ``*_cal``); the same at the data-free ``fixed_temperature`` (columns ``*_fixed``).
Accuracy does not change with a temperature. The test set only reports: every choice (``T``, and β, bits
or the pruning fraction through :func:`poprisk.selection.select_on_validation`) is made on validation
numbers. ``run_sweeps(..., per_example=True)`` also returns the per-example test losses of every row
(raw, calibrated, fixed-T) as a :class:`PerExample`, for the bootstrap intervals of :mod:`poprisk.stats`.

The compression ratio counts, per layer, ``n·Ĥ(symbols) + 32·K`` bits against ``32·n`` (paper notes §6); for
a pruned layer the symbols are "zero" and the labels of the survivors (the zero costs no codebook entry), and
a pruned but unquantized layer stores its survivors as 32-bit floats: ``n·h₂(density) + 32·n_nonzero`` bits.
The importances ``h`` are a Hessian-diagonal estimate of the training cross-entropy
(:func:`poprisk.curvature.hessian_diag`), clipped to be positive and normalised to mean 1 per layer.

Results are tidy :class:`pandas.DataFrame` objects (summaries, paired comparisons and intervals in
:mod:`poprisk.stats`). Trained networks are cached on disk by :mod:`poprisk.cache` (``POPRISK_CACHE`` or
``~/.cache/poprisk``), keyed by everything the weights depend on and verified on load. :class:`SweepConfig`
validates every field when it is built — names against the real registries, numbers finite, booleans real
booleans, and the memory the exact quantizer would need — so a bad setting fails before any training.
Everything runs on :func:`poprisk.config.device`; tensors go through ``.cpu()`` before ``.numpy()``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from poprisk import cache, calibration, checks, config, data, models, quantize, stats, train

MODELS = ("mlp", "vgg_small")
SWEEPS = ("quantize", "prune", "prune_quantize")
#: The perturbation control of the quantize sweep (not a quantizer: nothing is compressed).
NOISE = "noise"
#: Quantizers that use the importances ``h``; ``"uniform"`` and ``"kmeans"`` ignore them.
WEIGHTED_METHODS = ("hw_kmeans", "hw_exact", "drhw", "drhw_linear")
#: Quantizers with a diameter weight, and the :class:`SweepConfig` field that holds each one's grid.
BETA_GRIDS = {"drhw": "betas", "drhw_linear": "linear_betas"}
#: Quantizers the noise control may take its distortion from (no β to choose).
NOISE_REFERENCES = ("uniform", "kmeans", "hw_kmeans", "hw_exact")
LAYER_SUBSETS = ("all", "hidden", "output")
#: Input normalizations: ``"unit"`` keeps the loaders' [0, 1]; ``"authors"`` is their (x − mean) / std.
NORMALIZATIONS = {"unit": None, "authors": (0.1307, 0.3081)}
PRUNE_METHODS = ("magnitude", "curvature")
#: Methods iterated by Lloyd-type updates (they take ``iters``).
_ITERATIVE = ("kmeans", "hw_kmeans", "drhw", "drhw_linear")
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


# ------------------------------------------------------------------------------------------ data and models

def load_split(cfg: SweepConfig, device=None) -> data.Split:
    """The raw train pool / test split that ``cfg`` names, inputs in [0, 1], on ``device`` (default: CPU);
    :func:`prepare_split` then splits off the validation set and normalizes.

    Torchvision data sets raise a ``RuntimeError`` that says what is missing (torchvision, or the files and
    ``download=True`` with network access).
    """
    _check_cfg(cfg)
    if cfg.dataset in data.DATASETS:
        return data.load_dataset(cfg.dataset, n_test=cfg.n_test, seed=cfg.split_seed, device=device)
    try:
        split = data.load_torchvision(cfg.dataset, cfg.data_root, download=cfg.download, device=device)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot run the {cfg.dataset!r} sweep here: {exc} (the paper-scale configs are "
                           "meant for Colab or a networked GPU machine; the offline sets are "
                           f"{data.DATASETS})") from exc
    if cfg.n_test is not None and cfg.n_test < split.x_test.shape[0]:
        split = data.Split(split.x_train, split.y_train, split.x_test[:cfg.n_test], split.y_test[:cfg.n_test],
                           split.name)
    return split


def _check_cfg(cfg) -> None:
    if not isinstance(cfg, SweepConfig):
        raise TypeError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")


def prepare_split(cfg: SweepConfig, split: data.Split) -> data.Split:
    """``split`` with its validation set and ``cfg.normalize`` applied — what the networks see.

    ``split`` must hold inputs in [0, 1], as every :mod:`poprisk.data` loader returns. Without a validation
    set, ``cfg.n_val`` images are split off the training pool (a fixed draw seeded with ``cfg.split_seed``);
    a split that already has one must have exactly ``cfg.n_val`` validation images.
    """
    _check_cfg(cfg)
    if not isinstance(split, data.Split):
        raise TypeError(f"split must be a poprisk.data.Split, got {type(split).__name__}")
    parts = {"x_train": split.x_train, "x_test": split.x_test, "x_val": split.x_val}
    for name, x in parts.items():
        if x is not None and x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"split.{name} must hold inputs in [0, 1] (as the poprisk.data loaders return); "
                             f"cfg.normalize={cfg.normalize!r} is applied here")
    if split.x_val is None:
        split = split.with_validation(cfg.n_val, cfg.split_seed)
    elif split.x_val.shape[0] != cfg.n_val:
        raise ValueError(f"split has {split.x_val.shape[0]} validation images but cfg.n_val = {cfg.n_val}")
    stat = NORMALIZATIONS[cfg.normalize]
    if stat is None:
        return split
    mean, std = stat
    norm = lambda x: (x - mean) / std  # noqa: E731
    return data.Split(norm(split.x_train), split.y_train, norm(split.x_test), split.y_test, split.name,
                      norm(split.x_val), split.y_val)


def _network(cfg: SweepConfig, input_shape, n_classes: int) -> nn.Module:
    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "mlp":
        return models.MLP(in_features=int(np.prod(input_shape)), n_classes=n_classes, **kwargs)
    if len(input_shape) != 3:
        raise ValueError(f"model 'vgg_small' needs images shaped (N, C, H, W); the data have shape "
                         f"(N, {', '.join(map(str, input_shape))})")
    return models.VGGSmall(in_channels=int(input_shape[0]), n_classes=n_classes, **kwargs)


def build_model(cfg: SweepConfig, split: data.Split) -> nn.Module:
    """A freshly initialised network of the configured kind for ``split`` (seed torch before calling)."""
    _check_cfg(cfg)
    if not isinstance(split, data.Split):
        raise TypeError(f"split must be a poprisk.data.Split, got {type(split).__name__}")
    return _network(cfg, tuple(split.x_train.shape[1:]), split.n_classes)


def augment_images(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops (zero padding ``pad``) and horizontal flips of a batch ``(N, C, H, W)``, vectorised."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a batch of images shaped (N, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    pad = checks.integer(pad, "pad", low=0)
    n, c, hgt, wid = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    di = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dj = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (di[:, None] + torch.arange(hgt, device=x.device))[:, None, :, None]
    cols = (dj[:, None] + torch.arange(wid, device=x.device))[:, None, None, :]
    out = padded[torch.arange(n, device=x.device)[:, None, None, None],
                 torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
    return torch.where(flip, out.flip(-1), out)


# ----------------------------------------------------------------------------------------------- training

def default_cache_dir():
    """``$POPRISK_CACHE`` if set, else ``~/.cache/poprisk`` (:func:`poprisk.cache.default_cache_dir`)."""
    return cache.default_cache_dir()


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash (shape, dtype and bytes) of tensors — the training data a network was trained on."""
    digest = hashlib.sha256()
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor_fingerprint takes torch tensors, got {type(t).__name__}")
        arr = t.detach().cpu().contiguous()
        digest.update(f"{tuple(arr.shape)}|{arr.dtype}|".encode())
        digest.update(arr.numpy().tobytes())
    return digest.hexdigest()[:16]


def training_payload(cfg: SweepConfig, seed: int, train_split: data.Split, device, dtype) -> dict:
    """Everything the network trained for ``seed`` on ``train_split`` depends on (its cache payload): the
    training fields of ``cfg``, the seed, a hash of the exact training tensors, the library source
    (:func:`poprisk.cache.code_fingerprint`), the torch version, the device type, the dtype and the CPU
    thread count of training (:func:`poprisk.config.train_threads`)."""
    _check_cfg(cfg)
    if not isinstance(train_split, data.Split):
        raise TypeError(f"train_split must be a poprisk.data.Split, got {type(train_split).__name__}")
    settings = {name: v for name, v in cfg.as_dict().items() if name in TRAINING_FIELDS}
    return {"settings": settings, "seed": checks.seed(seed),
            "data": tensor_fingerprint(train_split.x_train, train_split.y_train),
            "code": cache.code_fingerprint(), "torch": torch.__version__,
            "device": torch.device(device).type, "dtype": str(dtype), "threads": config.train_threads()}


def cache_key(cfg: SweepConfig, seed: int, train_split: data.Split, device="cpu", dtype=torch.float32) -> str:
    """The cache key of the network ``cfg`` trains for ``seed`` on ``train_split``."""
    return cache.key_of(training_payload(cfg, seed, train_split, device, dtype))


@dataclass
class TrainedModel:
    """One trained network of a sweep: its seed, the model (eval mode), its split (the seed's training
    subsample, the shared validation and test sets, normalized), the uncompressed network's metrics
    (:class:`poprisk.train.Metrics`), whether it came from the cache, and the training time (0 when cached)."""

    seed: int
    model: nn.Module
    split: data.Split
    train_metrics: train.Metrics
    val_metrics: train.Metrics
    test_metrics: train.Metrics
    cached: bool
    seconds: float
    history: list = field(default_factory=list)
    key: str = ""


def _device(device) -> torch.device:
    return config.device(device) if device is None or isinstance(device, str) else torch.device(device)


def train_models(cfg: SweepConfig, split: data.Split | None = None, *, cache_dir=None, device=None,
                 progress: bool = True) -> list[TrainedModel]:
    """Train (or load from the cache) one network per seed of ``cfg``.

    ``split`` overrides the data set that ``cfg`` names (inputs in [0, 1]; :func:`prepare_split` adds the
    validation set and the normalization). Seed ``s`` draws its own training subsample
    (``Split.subsample_train(n_train, s)``) and initialisation (torch seeded with ``s``). ``cache_dir``: a
    folder (default :func:`default_cache_dir`) or ``False`` to neither read nor write the cache. A damaged
    cache entry warns, is moved aside and the network is retrained; an unwritable cache warns once and the
    networks stay in memory (:mod:`poprisk.cache`).
    """
    _check_cfg(cfg)
    checks.boolean(progress, "progress")
    dev = _device(device)
    split = prepare_split(cfg, load_split(cfg) if split is None else split)
    with torch.device("meta"):
        check_memory(cfg, build_model(cfg, split))
    split = split.to(dev)
    store = cache.ModelCache(None if cache_dir is False else (cache_dir or default_cache_dir()))
    out = []
    for seed in config.progress_bar(cfg.seeds, desc="networks", disable=not progress):
        sub = split if cfg.n_train is None else split.subsample_train(cfg.n_train, seed, replace=cfg.replace)
        config.seed_everything(seed)
        model = build_model(cfg, split).to(dev)
        payload = training_payload(cfg, seed, sub, dev, next(model.parameters()).dtype)
        key = cache.key_of(payload)
        history = store.load(payload, model)
        cached, seconds = history is not None, 0.0
        if not cached:
            start = time.perf_counter()
            hist = train.fit(model, sub.x_train, sub.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                             lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, seed=seed,
                             progress=progress, desc=f"train seed {seed}",
                             transform=augment_images if cfg.augment else None)
            seconds, history = time.perf_counter() - start, hist.epoch_loss
            store.save(payload, model, history, config=cfg.as_dict())
        model.eval()
        with config.torch_threads(config.train_threads()):
            metrics = [train.evaluate(model, x, y) for x, y in ((sub.x_train, sub.y_train),
                                                                (sub.x_val, sub.y_val), (sub.x_test, sub.y_test))]
        out.append(TrainedModel(seed, model, sub, *metrics, cached, seconds, list(history), key))
    return out


# --------------------------------------------------------------------------------------------- compression

def importances(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, method: str = "ggn",
                floor: float = 1e-6, batch_size: int | None = 1000) -> dict[str, torch.Tensor]:
    """Positive importances per layer for the Hessian-weighted methods: the Hessian-diagonal estimate
    ``method`` of the mean cross-entropy on ``(x, y)`` (:func:`poprisk.curvature.hessian_diag`), clipped below
    at ``floor`` times its mean absolute value (:func:`poprisk.curvature.positive`) and normalised to mean 1 per
    layer (:func:`poprisk.curvature.normalize`, as the authors did). Returned as float64 CPU tensors."""
    from poprisk import curvature

    diag = curvature.hessian_diag(model, nn.CrossEntropyLoss(), (x, y), method=method, batch_size=batch_size)
    missing = [name for name, _ in models.compressible_layers(model) if name not in diag]
    if missing:
        raise ValueError(f"hessian_diag returned no entry for layers {missing}")
    h = curvature.normalize(curvature.positive(diag, floor))
    return {name: t.detach().to(torch.float64).cpu() for name, t in h.items()}


def _binary_entropy(p: float) -> float:
    return 0.0 if p <= 0 or p >= 1 else float(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))


def _method_kwargs(method: str, *, iters: int, beta: float | None, seed: int) -> dict:
    kw = {}
    if method in _ITERATIVE:
        kw["iters"] = iters
    if method in BETA_GRIDS:
        if beta is None:
            raise ValueError(f"method {method!r} needs beta (its {BETA_GRIDS[method]} grid value)")
        kw["beta"] = beta
        kw["seed"] = seed
    return kw


def selected_layers(model: nn.Module, layers: str = "all") -> list[str]:
    """Names of the Linear/Conv layers that ``layers`` selects: ``"all"``, ``"hidden"`` (all but the last,
    in ``named_modules`` order) or ``"output"`` (the last one, the classifier)."""
    names = [name for name, _ in models.compressible_layers(model)]
    _choice(layers, "layers", LAYER_SUBSETS)
    if layers != "all" and len(names) < 2:
        raise ValueError(f"layers={layers!r} needs a model with at least two Linear/Conv layers")
    return names if layers == "all" else names[:-1] if layers == "hidden" else names[-1:]


def prune_masks(model: nn.Module, method: str, ratio: float, h: dict | None = None, *,
                scope: str = "layer") -> dict[str, torch.Tensor]:
    """Boolean keep-masks per layer (CPU): the ``1 − ratio`` fraction of each layer's weights (``scope="layer"``,
    the default: the same fraction in every layer) or of all weights (``"global"``) with the largest magnitude
    (``"magnitude"``, :func:`poprisk.prune.magnitude_prune`) or the largest optimal-brain-damage saliency
    ``h w²/2`` (``"curvature"``, :func:`poprisk.prune.curvature_prune`)."""
    from poprisk import prune

    if method == "magnitude":
        pruned = prune.magnitude_prune(model, ratio, scope=scope)
    elif method == "curvature":
        if h is None:
            raise ValueError("curvature pruning needs the importances h")
        pruned = prune.curvature_prune(model, ratio, h, scope=scope)
    else:
        raise ValueError(f"prune method must be one of {PRUNE_METHODS}, got {method!r}")
    _, report = pruned
    return {name: mask.detach().bool().cpu() for name, mask in report.masks.items()}


def per_layer_arrays(values, model: nn.Module, name: str, *, boolean: bool = False) -> dict[str, np.ndarray]:
    """``{layer: flat float64 (or bool) array}`` of a per-weight dict ``values`` (importances ``h`` or keep
    masks) after exact checks against ``model``: a dict with an entry for every Linear/Conv layer, each of
    exactly that layer's weight shape (a transposed entry of the same size would pair each weight with
    another weight's number), finite numbers, or booleans when ``boolean``."""
    if not isinstance(values, dict):
        raise TypeError(f"{name} must be a dict {{layer name: tensor shaped like its weight}}, got "
                        f"{type(values).__name__}")
    out = {}
    for layer, m in models.compressible_layers(model):
        if layer not in values:
            raise ValueError(f"{name} has no entry for layer {layer!r}")
        v = values[layer]
        arr = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if tuple(arr.shape) != tuple(m.weight.shape):
            raise ValueError(f"{name}[{layer!r}] has shape {tuple(arr.shape)}, the layer's weight "
                             f"{tuple(m.weight.shape)} (the same shape is required)")
        if boolean:
            if arr.dtype != bool:
                raise TypeError(f"{name}[{layer!r}] must be a boolean mask, got dtype {arr.dtype}")
        elif arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
            raise ValueError(f"{name}[{layer!r}] must hold finite real numbers")
        out[layer] = arr.reshape(-1) if boolean else arr.astype(np.float64).reshape(-1)
    return out


def _noise_like(w: np.ndarray, hl: np.ndarray, target: float, rng: np.random.Generator) -> np.ndarray:
    """``w + s z`` with ``z ~ N(0, I)`` and ``s`` such that ``Σ h (s z)² = target`` exactly."""
    z = rng.standard_normal(w.size)
    energy = float(hl @ (z * z))
    return w + math.sqrt(target / energy) * z if target > 0 else w.copy()


def compress(model: nn.Module, *, method: str | None = None, bits: int | None = None, h: dict | None = None,
             masks: dict | None = None, beta: float | None = None, iters: int = 30, seed: int = 0,
             layers: str = "all", noise_reference: str = "kmeans"):
    """A compressed copy of ``model`` and its entropy-coded compression ratio (see the module docstring).

    ``layers`` (:func:`selected_layers`) chooses which Linear/Conv layers change; the others stay as they are
    and count 32 bits per weight. ``masks`` (from :func:`prune_masks`) zero the pruned weights of the selected
    layers; ``method``/``bits`` then quantize each selected layer's surviving weights with ``2**bits`` shared
    values (``h`` restricted to the survivors). ``method="noise"`` is the perturbation control: Gaussian
    noise whose Hessian-weighted distortion equals that of ``noise_reference`` at ``bits`` on the same layer
    (seeded by ``seed``, ``bits`` and the layer; ratio 1). With neither masks nor method the copy is the model
    itself and the ratio is 1. ``h[name]`` must have exactly the shape of the layer's weight.
    """
    if (method is None) != (bits is None):
        raise ValueError("method and bits go together: give both or neither")
    if method is not None and method not in quantize.METHODS and method != NOISE:
        raise ValueError(f"method must be one of {sorted(quantize.METHODS) + [NOISE]}, got {method!r}")
    if bits is not None:
        bits = checks.integer(bits, "bits", low=1, high=16)
    seed = checks.seed(seed)
    if method == NOISE:
        if h is None or masks is not None:
            raise ValueError("method='noise' needs the importances h (its distortion is Hessian-weighted) and "
                             "no masks")
        _choice(noise_reference, "noise_reference", [m for m in NOISE_REFERENCES if m in quantize.METHODS])
    if method in WEIGHTED_METHODS and h is None:
        raise ValueError(f"method {method!r} needs the importances h")
    chosen = selected_layers(model, layers)
    hs = None if h is None else per_layer_arrays(h, model, "h")
    keeps = None if masks is None else per_layer_arrays(masks, model, "masks", boolean=True)
    out = copy.deepcopy(model)
    mods = dict(out.named_modules())
    coded = total = 0.0
    for index, (name, _) in enumerate(models.compressible_layers(model)):
        weight = mods[name].weight
        n = weight.numel()
        total += 32.0 * n
        if name not in chosen:
            coded += 32.0 * n
            continue
        w = weight.detach().cpu().double().numpy().reshape(-1)
        hl = hs[name] if hs is not None and (method in WEIGHTED_METHODS or method == NOISE) else None
        if method == NOISE:
            k = min(2 ** bits, n)
            ref_h = hl if noise_reference in WEIGHTED_METHODS else None
            centers, labels = quantize.METHODS[noise_reference](w, ref_h, k, **_method_kwargs(
                noise_reference, iters=iters, beta=None, seed=seed))
            d_ref = float(hl @ (np.asarray(centers, np.float64)[np.asarray(labels).reshape(-1)] - w) ** 2)
            new = _noise_like(w, hl, d_ref, np.random.default_rng([seed, bits, index]))
            coded += 32.0 * n
        else:
            keep = np.ones(n, bool) if keeps is None else keeps[name]
            new = np.where(keep, w, 0.0)
            nnz = int(keep.sum())
            if method is None:
                coded += n * _binary_entropy(nnz / n) + 32.0 * nnz if keeps is not None else 32.0 * n
            elif nnz > 0:
                k = min(2 ** bits, nnz)
                centers, labels = quantize.METHODS[method](w[keep], None if hl is None else hl[keep], k,
                                                           **_method_kwargs(method, iters=iters, beta=beta,
                                                                            seed=seed))
                centers, labels = np.asarray(centers, dtype=np.float64), np.asarray(labels).reshape(-1)
                new[keep] = centers[labels]
                if keeps is None:
                    coded += quantize.entropy_coded_bits(labels, k)
                else:  # symbols: 0 for a pruned weight, 1 + label for a survivor; the zero needs no codebook entry
                    symbols = np.zeros(n, np.int64)
                    symbols[keep] = labels + 1
                    coded += n * quantize.label_entropy_bits(symbols, k + 1) + 32.0 * k
        with torch.no_grad():
            weight.copy_(torch.as_tensor(new, dtype=weight.dtype).reshape(weight.shape))
    return out, coded / total


def hw_distortion(model: nn.Module, compressed: nn.Module, h: dict) -> float:
    """``Σ_layers Σ_j h_j (ŵ_j − w_j)²`` between ``model`` and its compressed copy (the quadratic model of the
    loss increase that the Hessian-weighted methods minimise, chapter 5)."""
    hs = per_layer_arrays(h, model, "h")
    mods = dict(compressed.named_modules())
    total = 0.0
    for name, m in models.compressible_layers(model):
        if name not in mods or getattr(mods[name], "weight", None) is None or \
                mods[name].weight.shape != m.weight.shape:
            raise ValueError(f"compressed has no layer {name!r} shaped like model's: not a copy of model")
        hl = hs[name]
        diff = (mods[name].weight.detach().cpu().double() - m.weight.detach().cpu().double()).numpy().reshape(-1)
        total += float(hl @ (diff * diff))
    return total


# ---------------------------------------------------------------------------------------------- measuring

#: The per-example test losses :class:`PerExample` keeps for each row.
PER_EXAMPLE_KINDS = ("test_ce", "test_ce_cal", "test_ce_fixed")


def measure(model: nn.Module, split: data.Split, *, fixed_temperature: float, bins: int = 15):
    """The metrics of one network (a row of the sweep table, see the module docstring) and its per-example
    test losses ``{kind: float64 array}`` for :data:`PER_EXAMPLE_KINDS`. ``T`` is fitted on the validation
    logits only; the test set is only scored."""
    if not isinstance(split, data.Split) or split.x_val is None:
        raise ValueError("measure needs a poprisk.data.Split with a validation set (prepare_split)")
    fixed_temperature = checks.real(fixed_temperature, "fixed_temperature", low=calibration.T_MIN,
                                    high=calibration.T_MAX)
    parts = {"train": (split.x_train, split.y_train), "val": (split.x_val, split.y_val),
             "test": (split.x_test, split.y_test)}
    logits, labels = {}, {}
    for part, (x, y) in parts.items():
        z = train.predict(model, x)
        if not torch.isfinite(z).all():
            raise ValueError(f"the network's {part} outputs are not finite (NaN or inf): its weights are broken")
        logits[part], labels[part] = z, y.detach().cpu()
    T = calibration.fit_temperature(logits["val"], labels["val"])
    row, per = {}, {}
    for suffix, temp in (("", 1.0), ("_cal", T), ("_fixed", fixed_temperature)):
        for part in parts:
            ce = calibration.per_example_ce(logits[part], labels[part], temp)
            row[f"{part}_ce{suffix}"] = float(ce.mean())
            if part == "test":
                per[f"test_ce{suffix}"] = ce
        row[f"gap{suffix}"] = row[f"test_ce{suffix}"] - row[f"train_ce{suffix}"]
        row[f"test_ece{suffix}"] = calibration.expected_calibration_error(
            calibration.temperature_scale(logits["test"], temp), labels["test"], bins)
    for part in parts:
        row[f"{part}_acc"] = float((logits[part].argmax(1) == labels[part]).double().mean())
    row["temperature"] = T
    row["logit_norm"] = float(logits["test"].double().norm(dim=1).mean())
    return row, per


# ---------------------------------------------------------------------------------------------------- sweeps

#: Setting columns of a sweep table, in order (then the metrics of :func:`measure`, ``ratio``,
#: ``hw_distortion``, the ``base_*`` numbers of the seed's uncompressed network and ``seconds``).
SETTING_COLUMNS = ("row", "experiment", "seed", "method", "bits", "beta", "prune", "prune_ratio", "layers")


def _jobs(cfg: SweepConfig, sweeps) -> list[dict]:
    def betas(method, grid_of=None):
        if method not in BETA_GRIDS:
            return (None,)
        return getattr(cfg, grid_of or BETA_GRIDS[method])

    jobs = []
    for layers in cfg.layers:
        if "quantize" in sweeps:
            for method in cfg.methods:
                for bits in cfg.bits:
                    for beta in betas(method):
                        jobs.append(dict(experiment="quantize", method=method, bits=bits, beta=beta,
                                         layers=layers))
        if "prune" in sweeps:
            for pm in cfg.prune_methods:
                for r in cfg.prune_ratios:
                    jobs.append(dict(experiment="prune", prune=pm, prune_ratio=r, layers=layers))
        if "prune_quantize" in sweeps:
            for pm in cfg.prune_methods:
                for r in cfg.prune_ratios:
                    for method in cfg.prune_quant_methods:
                        for beta in betas(method, "prune_quant_betas" if method in BETA_GRIDS else None):
                            jobs.append(dict(experiment="prune_quantize", prune=pm, prune_ratio=r,
                                             method=method, bits=cfg.prune_quant_bits, beta=beta,
                                             layers=layers))
    return jobs


@dataclass(frozen=True)
class PerExample:
    """Per-example test losses of every row of a sweep table, keyed by the table's ``row`` column.

    ``losses[kind]`` is a float64 array ``(n_rows, n_test)`` for each kind of :data:`PER_EXAMPLE_KINDS`
    (raw, calibrated on validation, fixed temperature); column ``i`` is the same test image in every row
    (all seeds share the test set). ``seeds[r]`` is row ``r``'s seed.
    """

    losses: dict
    seeds: np.ndarray

    def matrix(self, rows: pd.DataFrame, kind: str = "test_ce", seeds=None) -> np.ndarray:
        """The ``(len(seeds), n_test)`` per-example losses of ``rows`` (one row per seed; ``seeds`` default:
        the sorted seeds of ``rows``), in the order of ``seeds`` — the input of
        :func:`poprisk.stats.bootstrap_interval`. Pass the same ``seeds`` for both sides of a comparison."""
        if kind not in self.losses:
            raise ValueError(f"kind must be one of {tuple(self.losses)}, got {kind!r}")
        if not isinstance(rows, pd.DataFrame) or not {"row", "seed"} <= set(rows.columns):
            raise TypeError("rows must be a DataFrame of sweep rows (with the 'row' and 'seed' columns)")
        if rows.empty:
            raise ValueError("rows is empty (check the filter that made it)")
        stats.one_row_per_seed(rows, "rows", skip=("row",))
        by_seed = dict(zip(rows["seed"].tolist(), rows["row"].tolist()))
        seeds = sorted(by_seed) if seeds is None else list(seeds)
        missing = [s for s in seeds if s not in by_seed]
        if missing:
            raise ValueError(f"rows have no row for seed(s) {missing}")
        index = np.array([by_seed[s] for s in seeds])
        if index.min() < 0 or index.max() >= len(self.seeds) or (self.seeds[index] != np.array(seeds)).any():
            raise ValueError("rows do not come from the sweep these per-example losses belong to")
        return self.losses[kind][index]

    def bootstrap(self, rows: pd.DataFrame, by, kind: str = "test_ce", *, against: pd.DataFrame | None = None,
                  against_kind: str | None = None, level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
        """One row per group of the ``by`` columns of ``rows`` (rows of this sweep) with the bootstrap interval
        over test images and seeds (:func:`poprisk.stats.bootstrap_interval`) of the group's mean ``kind``
        loss — or, given ``against`` (reference rows of the same sweep, one per seed, e.g.
        ``stats.select(df, experiment="baseline")``), of the paired difference ``kind − against_kind``
        (default: the same kind) on the same seeds and images. Columns: the ``by`` columns, ``mean``, ``lo``,
        ``hi``, ``se``, ``n_seeds``. Each group must hold one row per seed (refused otherwise, naming the
        columns in which its rows differ)."""
        if not isinstance(rows, pd.DataFrame) or rows.empty:
            raise ValueError("rows must be a non-empty DataFrame of sweep rows")
        by = [by] if isinstance(by, str) else list(by)
        unknown = [c for c in by if c not in rows.columns]
        if unknown:
            raise ValueError(f"by: unknown column(s) {unknown}; the frame has {list(rows.columns)}")
        records = []
        position = pd.Series(np.arange(len(rows)), index=rows.index)
        keys = [rows[b] for b in by] if by else np.zeros(len(rows), int)
        for _, part in position.groupby(keys, sort=False, dropna=False):
            group = rows.iloc[part.to_numpy()]
            stats.one_row_per_seed(group, f"the group {({c: group[c].iloc[0] for c in by})}", skip=("row",))
            seeds = sorted(group["seed"].tolist())
            a = self.matrix(group, kind, seeds)
            b = None if against is None else self.matrix(against, against_kind or kind, seeds)
            res = stats.bootstrap_interval(a, b, n_boot=n_boot, level=level, seed=seed)
            records.append({**{c: stats.plain(group[c].iloc[0]) for c in by}, "mean": res["mean"],
                            "lo": res["lo"], "hi": res["hi"], "se": res["se"], "n_seeds": res["n_seeds"]})
        return pd.DataFrame.from_records(records, columns=[*by, "mean", "lo", "hi", "se", "n_seeds"])


def _sweep_network(cfg: SweepConfig, tm: TrainedModel, jobs: list[dict], add) -> None:
    """The baseline row and every job's row of one trained network (``add`` measures and records a row)."""
    base = add(tm, tm.model, dict(experiment="baseline"), 1.0, 0.0, None, time.perf_counter())
    if not jobs:
        return
    n = min(cfg.curvature_samples, tm.split.x_train.shape[0])
    h = importances(tm.model, tm.split.x_train[:n], tm.split.y_train[:n], method=cfg.curvature)
    masks_cache = {}
    for job in jobs:
        start = time.perf_counter()
        masks = None
        if job.get("prune") is not None and job["prune_ratio"] > 0:
            key = (job["prune"], job["prune_ratio"])
            if key not in masks_cache:
                masks_cache[key] = prune_masks(tm.model, job["prune"], job["prune_ratio"], h)
            masks = masks_cache[key]
        compressed, ratio = compress(tm.model, method=job.get("method"), bits=job.get("bits"), h=h, masks=masks,
                                     beta=job.get("beta"), iters=cfg.iters, seed=tm.seed, layers=job["layers"],
                                     noise_reference=cfg.noise_reference)
        add(tm, compressed, job, ratio, hw_distortion(tm.model, compressed, h), base, start)


def run_sweeps(cfg: SweepConfig, split: data.Split | None = None, *, sweeps=SWEEPS, trained=None,
               cache_dir=None, device=None, progress: bool = True, per_example: bool = False):
    """Train (or load) the networks of ``cfg`` and run the requested ``sweeps`` (a subset of :data:`SWEEPS`).

    Returns a tidy :class:`pandas.DataFrame` with one ``"baseline"`` row per seed (the uncompressed network,
    ratio 1, ``method="none"``) and one row per seed × compression setting; with ``per_example=True``,
    ``(frame, PerExample)``. Columns: :data:`SETTING_COLUMNS` (``bits``/``beta``/``prune`` are missing where
    they do not apply; ``row`` numbers the rows), the metrics of :func:`measure` (train/val/test CE and
    accuracy, gap, test ECE, ``temperature`` and the ``*_cal``/``*_fixed`` numbers, ``logit_norm``), ``ratio``,
    ``hw_distortion`` (against the seed's ``h``), ``base_train_ce``, ``base_test_ce``, ``base_test_ce_cal``,
    ``base_train_acc``, ``base_test_acc`` and ``seconds`` (compression + evaluation). ``trained`` reuses
    networks from :func:`train_models` (their seeds must be ``cfg.seeds``).
    """
    _check_cfg(cfg)
    sweeps = _names(sweeps, "sweeps", SWEEPS)
    checks.boolean(per_example, "per_example")
    checks.boolean(progress, "progress")
    if trained is None:
        trained = train_models(cfg, split, cache_dir=cache_dir, device=device, progress=progress)
    elif not isinstance(trained, (list, tuple)) or not all(isinstance(t, TrainedModel) for t in trained):
        raise TypeError("trained must be the list returned by train_models")
    elif tuple(t.seed for t in trained) != cfg.seeds:
        raise ValueError(f"trained holds seeds {[t.seed for t in trained]}, cfg.seeds is {list(cfg.seeds)}")
    else:
        for t in trained:
            param = next(t.model.parameters())
            if t.key != cache_key(cfg, t.seed, t.split, param.device, param.dtype):
                raise ValueError(f"trained network of seed {t.seed} was not trained with this cfg's training "
                                 "settings (or on other data/code): pass the cfg it was trained with")
    jobs = _jobs(cfg, sweeps)
    rows, per_rows = [], []
    bar = config.progress_bar(total=len(trained) * (len(jobs) + 1), desc="compress", disable=not progress)

    def add(tm, net, setting, ratio, distortion, base, start):
        metrics, per = measure(net, tm.split, fixed_temperature=cfg.fixed_temperature, bins=cfg.ece_bins)
        row = {"row": len(rows), "experiment": None, "seed": tm.seed, "method": "none", "bits": None,
               "beta": None, "prune": None, "prune_ratio": 0.0, "layers": None}
        row.update(setting)
        row.update(metrics)
        base = base or metrics
        row.update(ratio=float(ratio), hw_distortion=distortion, base_train_ce=base["train_ce"],
                   base_test_ce=base["test_ce"], base_test_ce_cal=base["test_ce_cal"],
                   base_train_acc=base["train_acc"], base_test_acc=base["test_acc"],
                   seconds=time.perf_counter() - start)
        rows.append(row)
        per_rows.append(per)
        bar.update(1)
        return metrics

    # the thread count of training, so that the importances and every evaluation reproduce across machines
    with config.torch_threads(config.train_threads()):
        for tm in trained:
            _sweep_network(cfg, tm, jobs, add)
    bar.close()
    frame = pd.DataFrame(rows)
    for col in ("bits", "beta", "prune", "layers"):  # keep ints as ints and missing as None (not NaN floats)
        frame[col] = pd.Series([r[col] for r in rows], dtype=object)
    if not per_example:
        return frame
    losses = {kind: np.stack([p[kind] for p in per_rows]) for kind in PER_EXAMPLE_KINDS}
    return frame, PerExample(losses, frame["seed"].to_numpy())
