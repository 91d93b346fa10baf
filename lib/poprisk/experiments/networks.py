"""The networks of a sweep: its data split, model, augmentation and the cached training of one network per
seed (chapter 9; the cache is :mod:`poprisk.cache`)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from poprisk import cache, checks, config, data, train
from poprisk.experiments.settings import (NORMALIZATIONS, TRAINING_FIELDS, SweepConfig, _check_cfg, _network,
                                          check_memory)

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


