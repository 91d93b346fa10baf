"""Sweeps of the neural-network experiments: train, compress, measure (chapter 9).

The protocol is the authors' (paper notes §6): several networks are trained to over-fit a small training
sample (one per seed: its own subsample and initialisation); each trained network ``W`` is compressed after
training, without fine-tuning, into ``Ŵ`` by

* per-layer scalar quantization with ``K = 2**bits`` shared values (:mod:`poprisk.quantize`: uniform, K-means,
  Hessian-weighted K-means, its exact 1-D optimum, DRHW with diameter weight ``β``);
* pruning a fraction of the weights of each layer (:mod:`poprisk.prune`: by magnitude, or by the curvature
  saliency ``h w²/2`` of optimal brain damage);
* pruning followed by quantization of the surviving weights.

For every ``Ŵ`` a row of the result table holds the train and test cross-entropy (nats) and accuracy, the
generalisation gap ``L_test(Ŵ) − L_train(Ŵ)`` (test loss as the estimate of the population risk), the
entropy-coded compression ratio and the wall time, beside the same numbers for the uncompressed ``W``. The
compression ratio counts, per layer, ``n·Ĥ(symbols) + 32·K`` bits against ``32·n`` (paper notes §6); for a
pruned layer the symbols are "zero" and the labels of the survivors (the zero costs no codebook entry), and a
pruned but unquantized layer stores its survivors as 32-bit floats: ``n·h₂(density) + 32·n_nonzero`` bits.

The importances ``h`` of the Hessian-weighted methods are a Hessian-diagonal estimate of the training
cross-entropy (:func:`poprisk.curvature.hessian_diag`), clipped to be positive and normalised to mean 1 per
layer.

Tables are plain: :class:`Table` is a list of dict rows with filtering, per-group summaries (mean ± std and a
95% Student-t interval across seeds) and a text rendering; no pandas. Trained networks are cached on disk
(``POPRISK_CACHE`` or ``~/.cache/poprisk``) under a hash of everything that determines them, so re-running a
chapter does not retrain. Everything runs on :func:`poprisk.config.device` (cuda when present): the data stay
resident on the device and training slices mini-batches out of them (:func:`poprisk.train.fit`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from poprisk import config, data, models, quantize, train

MODELS = ("mlp", "vgg_small")
SWEEPS = ("quantize", "prune", "prune_quantize")
#: The methods that use the importances ``h``; ``"uniform"`` and ``"kmeans"`` ignore them.
WEIGHTED_METHODS = ("hw_kmeans", "hw_exact", "drhw")
#: Methods iterated by Lloyd-type updates (they take ``iters``).
_ITERATIVE = ("kmeans", "hw_kmeans", "drhw")
#: Fields of :class:`SweepConfig` that determine a trained network (and so its cache key).
TRAINING_FIELDS = ("dataset", "n_test", "split_seed", "n_train", "replace", "model", "model_kwargs", "epochs",
                   "batch_size", "lr", "momentum", "weight_decay", "augment", "data_root")
_CACHE_VERSION = 1


# --------------------------------------------------------------------------------------------------- config

def _tuple(value, name, kind):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of {kind.__name__}, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep depends on. Defaults: the book's offline MNIST setting (chapter 9).

    Data: ``dataset`` (``"mnist_sample"``/``"digits"`` offline, ``"mnist"``/``"cifar10"`` through torchvision),
    ``n_test`` held-out images (offline sets; ``None`` keeps torchvision's official test set), ``split_seed``,
    and a training subsample of ``n_train`` images per seed (``replace``: drawn with replacement, as the
    authors did; ``None``: the whole training pool). Model: ``model`` in :data:`MODELS` with ``model_kwargs``
    (pairs, e.g. ``(("hidden", (64,)),)``). Training: ``epochs``, ``batch_size``, ``lr``, ``momentum``,
    ``weight_decay``; ``augment`` adds random crops (pad 4) and horizontal flips (images only). Seeds: one
    trained network per seed. Compression: ``methods`` (keys of :data:`poprisk.quantize.METHODS`), ``bits``,
    ``betas`` (the DRHW grid), ``iters`` (Lloyd steps), ``prune_methods``, ``prune_ratios``, and
    ``prune_quant_methods`` at ``prune_quant_bits`` (DRHW at ``prune_quant_betas``) for pruning followed by
    quantization. Curvature:
    ``curvature`` (the ``method`` of :func:`poprisk.curvature.hessian_diag`) on ``curvature_samples`` training
    images. ``download`` lets :func:`poprisk.data.load_torchvision` fetch data into ``data_root``.
    """

    dataset: str = "mnist_sample"
    n_test: int | None = 2000
    split_seed: int = 0
    n_train: int | None = 1000
    replace: bool = True
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
    iters: int = 30
    prune_methods: tuple = ("magnitude", "curvature")
    prune_ratios: tuple = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)
    prune_quant_methods: tuple = ("kmeans", "hw_kmeans")
    prune_quant_bits: int = 2
    prune_quant_betas: tuple = (30.0,)
    curvature: str = "ggn"
    curvature_samples: int = 1000
    data_root: str = "data"
    download: bool = False

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        if self.dataset not in data.DATASETS + data.TORCHVISION_DATASETS:
            raise ValueError(f"dataset must be one of {data.DATASETS + data.TORCHVISION_DATASETS}, "
                             f"got {self.dataset!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        kwargs = dict(self.model_kwargs) if not isinstance(self.model_kwargs, dict) else self.model_kwargs
        put("model_kwargs", tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v)
                                         for k, v in kwargs.items())))
        for name in ("epochs", "batch_size", "iters", "prune_quant_bits", "curvature_samples", "split_seed"):
            value = getattr(self, name)
            low = 0 if name in ("iters", "split_seed") else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not (0 <= self.momentum < 1 and self.weight_decay >= 0):
            raise ValueError("momentum must be in [0, 1) and weight_decay >= 0, "
                             f"got {self.momentum!r} and {self.weight_decay!r}")
        put("seeds", _tuple(self.seeds, "seeds", int))
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                                 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct non-negative integers (at least one), got {self.seeds!r}")
        put("methods", _tuple(self.methods, "methods", str))
        put("prune_quant_methods", _tuple(self.prune_quant_methods, "prune_quant_methods", str))
        put("prune_methods", _tuple(self.prune_methods, "prune_methods", str))
        for name in ("prune_methods",):
            bad = [m for m in getattr(self, name) if m not in ("magnitude", "curvature")]
            if bad:
                raise ValueError(f"{name} must be drawn from ('magnitude', 'curvature'), got {bad}")
        put("bits", _tuple(self.bits, "bits", int))
        if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= 16
               for b in self.bits + (self.prune_quant_bits,)):
            raise ValueError(f"bits must be integers in [1, 16], got {self.bits!r} / {self.prune_quant_bits!r}")
        for name in ("betas", "prune_quant_betas"):
            put(name, tuple(float(b) for b in _tuple(getattr(self, name), name, float)))
            if any(not (b >= 0 and math.isfinite(b)) for b in getattr(self, name)):
                raise ValueError(f"{name} must be finite and non-negative, got {getattr(self, name)!r}")
        put("prune_ratios", tuple(float(r) for r in _tuple(self.prune_ratios, "prune_ratios", float)))
        if any(not 0 <= r < 1 for r in self.prune_ratios):
            raise ValueError(f"prune_ratios must lie in [0, 1), got {self.prune_ratios!r}")
        if self.augment and self.model != "vgg_small":
            raise ValueError("augment=True (crops and flips) is meant for image models: use model='vgg_small'")

    def replace_(self, **changes) -> "SweepConfig":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The configuration as aligned ``field = value`` lines (deterministic: fit for checked cells)."""
        width = max(len(f.name) for f in dataclasses.fields(self))
        return "\n".join(f"{f.name:<{width}} = {getattr(self, f.name)!r}" for f in dataclasses.fields(self))


def paper_scale_config(dataset: str = "mnist", *, download: bool = True, data_root: str = "data",
                       check: bool = True) -> SweepConfig:
    """The authors' full setting (paper notes §6), for a GPU machine or Colab with network access.

    * ``"mnist"``: the 784-256-256-10 MLP on a 10% subsample of full MNIST (6,000 images drawn with
      replacement), 25 epochs of SGD (lr 0.01, momentum 0.9, weight decay 1e-4, batch 10), 5 seeds, the
      official 10,000 test images.
    * ``"cifar10"``: :class:`poprisk.models.VGGSmall` on a 20% subsample (10,000 images) with crop/flip
      augmentation. The authors' CIFAR training settings were not available: 60 epochs of SGD with lr 0.05,
      momentum 0.9, weight decay 5e-4 and batch 128 are this book's choice.

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
    common = dict(dataset=dataset, n_test=None, replace=True, seeds=(0, 1, 2, 3, 4), download=download,
                  data_root=data_root, betas=(3.0, 10.0, 30.0, 100.0, 300.0), curvature_samples=2000)
    if dataset == "mnist":
        return SweepConfig(model="mlp", n_train=6000, epochs=25, batch_size=10, lr=0.01, momentum=0.9,
                           weight_decay=1e-4, **common)
    return SweepConfig(model="vgg_small", n_train=10000, epochs=60, batch_size=128, lr=0.05, momentum=0.9,
                       weight_decay=5e-4, augment=True, prune_ratios=(0.0, 0.5, 0.75, 0.9, 0.95), **common)


# ------------------------------------------------------------------------------------------ data and models

def load_split(cfg: SweepConfig, device=None) -> data.Split:
    """The train pool / test split that ``cfg`` names, on ``device`` (default: CPU).

    Torchvision data sets raise a ``RuntimeError`` that says what is missing (torchvision, or the files and
    ``download=True`` with network access).
    """
    if cfg.dataset in data.DATASETS:
        if cfg.n_test is None:
            raise ValueError(f"n_test must be set for the offline data set {cfg.dataset!r}")
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


def build_model(cfg: SweepConfig, split: data.Split) -> nn.Module:
    """A freshly initialised network of the configured kind for ``split`` (seed torch before calling)."""
    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "mlp":
        return models.MLP(in_features=split.n_features, n_classes=split.n_classes, **kwargs)
    if split.x_train.ndim != 4:
        raise ValueError(f"model 'vgg_small' needs images shaped (N, C, H, W); the data have shape "
                         f"{tuple(split.x_train.shape)}")
    return models.VGGSmall(in_channels=int(split.x_train.shape[1]), n_classes=split.n_classes, **kwargs)


def augment_images(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops (zero padding ``pad``) and horizontal flips of a batch ``(N, C, H, W)``, vectorised."""
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


# ----------------------------------------------------------------------------------------------- caching

def default_cache_dir() -> pathlib.Path:
    """``$POPRISK_CACHE`` if set, else ``~/.cache/poprisk``."""
    return pathlib.Path(os.environ.get("POPRISK_CACHE") or pathlib.Path.home() / ".cache" / "poprisk")


def split_fingerprint(split: data.Split) -> str:
    """A short hash of a split's tensors (so that a cache key changes when caller-supplied data change)."""
    digest = hashlib.sha256()
    for t in (split.x_train, split.y_train, split.x_test, split.y_test):
        arr = t.detach().cpu().contiguous().numpy()
        digest.update(str((arr.shape, arr.dtype.str)).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _training_code_fingerprint() -> str:
    """Hash of the source of the modules that produce a trained network (the loop, the models, the data):
    editing any of them invalidates the cache instead of silently reusing networks trained by older code."""
    digest = hashlib.sha256()
    for module in (train, models, data):
        digest.update(pathlib.Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(cfg: SweepConfig, seed: int, fingerprint: str | None = None) -> str:
    """Hash of everything that determines the network trained for ``seed``: the training fields of ``cfg``,
    the seed, the data fingerprint (caller-supplied data only), the torch version and the training code."""
    payload = {name: getattr(cfg, name) for name in TRAINING_FIELDS}
    payload.update(seed=int(seed), fingerprint=fingerprint, torch=torch.__version__.split("+")[0],
                   version=_CACHE_VERSION, code=_training_code_fingerprint())
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class TrainedModel:
    """One trained network of a sweep: its seed, the model (eval mode), its training subsample, the metrics
    of the uncompressed network, whether it came from the cache, and the training time (0 when cached)."""

    seed: int
    model: nn.Module
    split: data.Split
    train_metrics: train.Metrics
    test_metrics: train.Metrics
    cached: bool
    seconds: float
    history: list = field(default_factory=list)


def train_models(cfg: SweepConfig, split: data.Split | None = None, *, cache_dir=None, device=None,
                 progress: bool = True) -> list[TrainedModel]:
    """Train (or load from the cache) one network per seed of ``cfg``.

    Seed ``s`` draws its own training subsample (``Split.subsample_train(n_train, s)``) and initialisation
    (torch seeded with ``s``). ``split`` overrides the data set that ``cfg`` names (its tensors then enter the
    cache key). ``cache_dir``: a folder (default :func:`default_cache_dir`) or ``False`` to neither read nor
    write the cache.
    """
    dev = config.device(device) if device is None or isinstance(device, str) else torch.device(device)
    fingerprint = None
    if split is None:
        split = load_split(cfg)
    else:
        if not isinstance(split, data.Split):
            raise TypeError(f"split must be a poprisk.data.Split, got {type(split).__name__}")
        fingerprint = split_fingerprint(split)
    split = split.to(dev)
    folder = None if cache_dir is False else pathlib.Path(cache_dir or default_cache_dir())
    out = []
    for seed in config.progress_bar(cfg.seeds, desc="networks", disable=not progress):
        sub = split if cfg.n_train is None else split.subsample_train(cfg.n_train, seed, replace=cfg.replace)
        config.seed_everything(seed)
        model = build_model(cfg, split).to(dev)
        path = None if folder is None else folder / f"{cache_key(cfg, seed, fingerprint)}.pt"
        cached, seconds, history = False, 0.0, []
        if path is not None and path.exists():
            state = torch.load(path, map_location=dev, weights_only=True)
            model.load_state_dict(state["state_dict"])
            history, cached = list(state["history"]), True
        else:
            start = time.perf_counter()
            hist = train.fit(model, sub.x_train, sub.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                             lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, seed=seed,
                             progress=progress, desc=f"train seed {seed}",
                             transform=augment_images if cfg.augment else None)
            seconds, history = time.perf_counter() - start, hist.epoch_loss
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                            "history": [float(v) for v in history]}, tmp)
                os.replace(tmp, path)  # atomic: a half-written file is never read
        model.eval()
        out.append(TrainedModel(seed, model, sub, train.evaluate(model, sub.x_train, sub.y_train),
                                train.evaluate(model, sub.x_test, sub.y_test), cached, seconds, history))
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
    if method == "drhw":
        kw["beta"] = 30.0 if beta is None else beta
        kw["seed"] = seed
    return kw


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
        raise ValueError(f"prune method must be 'magnitude' or 'curvature', got {method!r}")
    _, report = pruned
    return {name: mask.detach().bool().cpu() for name, mask in report.masks.items()}


def compress(model: nn.Module, *, method: str | None = None, bits: int | None = None, h: dict | None = None,
             masks: dict | None = None, beta: float | None = None, iters: int = 30, seed: int = 0):
    """A compressed copy of ``model`` and its entropy-coded compression ratio (see the module docstring).

    ``masks`` (from :func:`prune_masks`) zero the pruned weights; ``method``/``bits`` then quantize each layer's
    surviving weights with ``2**bits`` shared values (``h`` restricted to the survivors). With neither, the copy
    is the model itself and the ratio is 1.
    """
    if (method is None) != (bits is None):
        raise ValueError("method and bits go together: give both or neither")
    if method is not None and method not in quantize.METHODS:
        raise ValueError(f"method must be one of {sorted(quantize.METHODS)}, got {method!r}")
    out = copy.deepcopy(model)
    mods = dict(out.named_modules())
    coded = total = 0.0
    for name, _ in models.compressible_layers(model):
        weight = mods[name].weight
        w = weight.detach().cpu().double().numpy().reshape(-1)
        keep = np.ones(w.size, bool) if masks is None else masks[name].detach().cpu().numpy().reshape(-1)
        new = np.where(keep, w, 0.0)
        nnz = int(keep.sum())
        if method is None:
            coded += w.size * _binary_entropy(nnz / w.size) + 32.0 * nnz if masks is not None else 32.0 * w.size
        elif nnz == 0:
            coded += 0.0
        else:
            k = min(2 ** bits, nnz)
            hl = None
            if h is not None and method in WEIGHTED_METHODS:
                hl = torch.as_tensor(h[name]).detach().cpu().double().numpy().reshape(-1)[keep]
            centers, labels = quantize.METHODS[method](w[keep], hl, k, **_method_kwargs(
                method, iters=iters, beta=beta, seed=seed))
            centers, labels = np.asarray(centers, dtype=np.float64), np.asarray(labels).reshape(-1)
            new[keep] = centers[labels]
            if masks is None:
                coded += quantize.entropy_coded_bits(labels, k)
            else:  # symbols: 0 for a pruned weight, 1 + label for a survivor; the zero needs no codebook entry
                symbols = np.zeros(w.size, np.int64)
                symbols[keep] = labels + 1
                coded += w.size * quantize.label_entropy_bits(symbols, k + 1) + 32.0 * k
        total += 32.0 * w.size
        with torch.no_grad():
            weight.copy_(torch.as_tensor(new, dtype=weight.dtype).reshape(weight.shape))
    return out, coded / total


# --------------------------------------------------------------------------------------------------- tables

@functools.lru_cache(maxsize=None)
def _t_quantile(df: int, level: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df))


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and a Student-t confidence interval of values across seeds."""

    mean: float
    std: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        return mean_pm_std(self.mean, self.std)


def summarize(values, level: float = 0.95) -> Summary:
    """:class:`Summary` of ``values`` (one per seed): the interval is ``mean ± t_{n−1} · std/√n``.

    One value gives ``std = 0`` and an interval of NaN (no spread to estimate)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("summarize needs at least one value")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    mean = float(arr.mean())
    if arr.size == 1:
        return Summary(mean, 0.0, math.nan, math.nan, 1)
    std = float(arr.std(ddof=1))
    half = _t_quantile(arr.size - 1, level) * std / math.sqrt(arr.size)
    return Summary(mean, std, mean - half, mean + half, int(arr.size))


def mean_pm_std(mean: float, std: float, digits: int = 4) -> str:
    """``"0.3210 ± 0.0120"``."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


class Table:
    """A tidy table: a list of dict rows (one per seed × experiment × method × setting), pandas-free."""

    def __init__(self, rows=()):
        self.rows = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __add__(self, other: "Table") -> "Table":
        return Table(self.rows + list(other.rows))

    def __repr__(self) -> str:
        return f"Table({len(self.rows)} rows, columns={self.columns})"

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        return cols

    def where(self, **conditions) -> "Table":
        """Rows whose column equals each given value (a callable is used as a predicate instead)."""
        def ok(row):
            return all(v(row.get(k)) if callable(v) else row.get(k) == v for k, v in conditions.items())
        return Table(r for r in self.rows if ok(r))

    def column(self, name: str) -> np.ndarray:
        if self.rows and all(name not in r for r in self.rows):
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        return np.array([r.get(name) for r in self.rows])

    def unique(self, name: str) -> list:
        seen = []
        for r in self.rows:
            if r.get(name) not in seen:
                seen.append(r.get(name))
        return seen

    def summarize(self, by, metrics, level: float = 0.95) -> "Table":
        """One row per group of ``by`` columns (in order of first appearance) with, for each metric,
        ``{metric}_mean``, ``_std``, ``_lo``, ``_hi`` (the ``level`` interval across the group's rows) and ``n``."""
        by, metrics = list(by), list(metrics)
        groups: dict[tuple, list[dict]] = {}
        for r in self.rows:
            groups.setdefault(tuple(r.get(b) for b in by), []).append(r)
        out = []
        for key, rows in groups.items():
            row = dict(zip(by, key))
            for m in metrics:
                s = summarize([r[m] for r in rows], level)
                row.update({f"{m}_mean": s.mean, f"{m}_std": s.std, f"{m}_lo": s.lo, f"{m}_hi": s.hi})
            row["n"] = len(rows)
            out.append(row)
        return Table(out)

    def to_text(self, columns=None, digits: int = 4) -> str:
        """A plain aligned text table of ``columns`` (default: all)."""
        cols = list(columns or self.columns)

        def fmt(v):
            if isinstance(v, (float, np.floating)):
                return "nan" if math.isnan(v) else f"{v:.{digits}f}"
            return "-" if v is None else str(v)

        cells = [[fmt(r.get(c)) for c in cols] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)


def paired_comparison(table: Table, a: dict, b: dict, metric: str = "test_ce", level: float = 0.95) -> dict:
    """Paired comparison across seeds of two settings ``a`` and ``b`` (column conditions, e.g.
    ``dict(method="drhw", bits=2, beta=30.0)``): per-seed differences ``a − b`` of ``metric``, their mean, std and
    ``level`` interval, the paired t statistic and two-sided p-value, and how many seeds favour each side
    (lower is better for losses). Seeds present in only one side are left out."""
    from scipy import stats

    va = {r["seed"]: r[metric] for r in table.where(**a)}
    vb = {r["seed"]: r[metric] for r in table.where(**b)}
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        raise ValueError(f"no seed has both settings {a} and {b}")
    diff = np.array([va[s] - vb[s] for s in seeds])
    s = summarize(diff, level)
    if len(seeds) > 1 and diff.std(ddof=1) > 0:
        res = stats.ttest_rel([va[x] for x in seeds], [vb[x] for x in seeds])
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t, p = math.nan, math.nan
    return {"seeds": seeds, "a": [va[x] for x in seeds], "b": [vb[x] for x in seeds], "diff": diff.tolist(),
            "mean": s.mean, "std": s.std, "lo": s.lo, "hi": s.hi, "t": t, "p": p,
            "a_lower": int((diff < 0).sum()), "b_lower": int((diff > 0).sum())}


# ---------------------------------------------------------------------------------------------------- sweeps

def _row(tm: TrainedModel, compressed: nn.Module | None, ratio: float, seconds: float, **setting) -> dict:
    if compressed is None:
        tr, te = tm.train_metrics, tm.test_metrics
    else:
        tr = train.evaluate(compressed, tm.split.x_train, tm.split.y_train)
        te = train.evaluate(compressed, tm.split.x_test, tm.split.y_test)
    row = {"experiment": None, "seed": tm.seed, "method": None, "bits": None, "beta": None, "prune": None,
           "prune_ratio": 0.0}
    row.update(setting)
    row.update({
        "train_ce": tr.loss, "test_ce": te.loss, "gap": te.loss - tr.loss,
        "train_acc": tr.accuracy, "test_acc": te.accuracy, "ratio": float(ratio),
        "base_train_ce": tm.train_metrics.loss, "base_test_ce": tm.test_metrics.loss,
        "base_train_acc": tm.train_metrics.accuracy, "base_test_acc": tm.test_metrics.accuracy,
        "seconds": seconds,
    })
    return row


def _jobs(cfg: SweepConfig, sweeps) -> list[dict]:
    jobs = []
    if "quantize" in sweeps:
        for method in cfg.methods:
            for bits in cfg.bits:
                for beta in (cfg.betas if method == "drhw" else (None,)):
                    jobs.append(dict(experiment="quantize", method=method, bits=bits, beta=beta))
    if "prune" in sweeps:
        for pm in cfg.prune_methods:
            for r in cfg.prune_ratios:
                jobs.append(dict(experiment="prune", prune=pm, prune_ratio=r))
    if "prune_quantize" in sweeps:
        for pm in cfg.prune_methods:
            for r in cfg.prune_ratios:
                for method in cfg.prune_quant_methods:
                    for beta in (cfg.prune_quant_betas if method == "drhw" else (None,)):
                        jobs.append(dict(experiment="prune_quantize", prune=pm, prune_ratio=r, method=method,
                                         bits=cfg.prune_quant_bits, beta=beta))
    return jobs


def run_sweeps(cfg: SweepConfig, split: data.Split | None = None, *, sweeps=SWEEPS, trained=None,
               cache_dir=None, device=None, progress: bool = True) -> Table:
    """Train (or load) the networks of ``cfg`` and run the requested ``sweeps`` (a subset of :data:`SWEEPS`).

    Returns a :class:`Table` with one ``"baseline"`` row per seed (the uncompressed network, ratio 1) and one
    row per seed × compression setting. ``trained`` reuses networks from :func:`train_models`. Columns:
    ``experiment, seed, method, bits, beta, prune, prune_ratio, train_ce, test_ce, gap, train_acc, test_acc,
    ratio, base_*`` (the uncompressed network's numbers) and ``seconds`` (compression + evaluation).
    """
    sweeps = tuple(sweeps)
    bad = [s for s in sweeps if s not in SWEEPS]
    if bad:
        raise ValueError(f"sweeps must be drawn from {SWEEPS}, got {bad}")
    unknown = sorted({m for m in cfg.methods + cfg.prune_quant_methods if m not in quantize.METHODS})
    if unknown:
        raise ValueError(f"unknown quantization method(s) {unknown}; poprisk.quantize.METHODS has "
                         f"{sorted(quantize.METHODS)}")
    if trained is None:
        trained = train_models(cfg, split, cache_dir=cache_dir, device=device, progress=progress)
    jobs = _jobs(cfg, sweeps)
    need_h = any(j.get("method") in WEIGHTED_METHODS or j.get("prune") == "curvature" for j in jobs)
    rows = [_row(tm, None, 1.0, 0.0, experiment="baseline", method="none") for tm in trained]
    bar = config.progress_bar(total=len(trained) * len(jobs), desc="compress", disable=not progress)
    for tm in trained:
        h = None
        if need_h:
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
            method = job.get("method")
            compressed, ratio = compress(tm.model, method=method, bits=job.get("bits"), h=h, masks=masks,
                                         beta=job.get("beta"), iters=cfg.iters, seed=tm.seed)
            rows.append(_row(tm, compressed, ratio, 0.0, **job))
            rows[-1]["seconds"] = time.perf_counter() - start
            if method is None:
                rows[-1]["method"] = "none"
            bar.update(1)
    bar.close()
    return Table(rows)
