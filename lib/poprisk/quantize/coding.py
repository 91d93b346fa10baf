"""What a quantization costs and codes to (chapters 3, 7, 9): distortion, codebook diameter, label entropy and
entropy-coded bits (labels plus a 32-bit codebook)."""

from __future__ import annotations

import numpy as np

from poprisk import checks
from poprisk.quantize.base import _as_vector_problem, _centers, _scalar_problem, _to_numpy
from poprisk.quantize.lloyd import _farthest_pair

# ------------------------------------------------------------------------------------------------- measures

def distortion(w, h, centers, labels) -> float:
    """HW distortion ``Σ_j (w_j − c_{labels_j})ᵀ H_j (w_j − c_{labels_j})``.

    Scalar (``centers`` 1-D): ``w`` flattened, ``h`` (n,) or ``None`` (squared error). Vector (``centers``
    ``(K, m)``): ``w`` ``(d, m)``, ``h`` ``(d, m, m)``, ``(d, m)`` or ``None`` (identity blocks).
    """
    c = _centers(centers)
    if c.ndim == 2:
        W, H = _as_vector_problem(w, h)
        if c.shape[1] != W.shape[1]:
            raise ValueError(f"centers must be (K, {W.shape[1]}) to match w, got {c.shape}")
        lab = _check_labels(labels, W.shape[0], c.shape[0])
        r = W - c[lab]
        return float(np.einsum("di,dij,dj->", r, H, r))
    w, h = _scalar_problem(w, h)
    lab = _check_labels(labels, w.size, c.shape[0])
    return float(np.sum(h * (w - c[lab]) ** 2))


def _check_labels(labels, n: int | None, k: int | None) -> np.ndarray:
    """Integer labels (any shape, flattened), one per weight when ``n`` is given, in ``[0, k)``."""
    lab = _to_numpy(labels, "labels", kinds="iu").reshape(-1)
    if lab.size == 0 or (n is not None and lab.size != n):
        raise ValueError(f"labels must hold one integer index per weight ({n if n is not None else '>= 1'}), got "
                         f"{lab.size}")
    if lab.min() < 0 or (k is not None and lab.max() >= k):
        raise ValueError(f"labels must be indices into the {k} centres: in [0, {k}), got [{lab.min()}, {lab.max()}]")
    return lab.astype(np.int64, copy=False)


def diameter(centers) -> float:
    """Largest Euclidean distance between two centres (``max c − min c`` for scalar centres)."""
    c = _centers(centers)
    if c.ndim == 1:
        c = c[:, None]
    if c.shape[0] == 1:
        return 0.0
    i, j = _farthest_pair(c)
    return float(np.linalg.norm(c[i] - c[j]))


def label_entropy_bits(labels, k: int) -> float:
    """Empirical entropy (bits per weight) of the labels: the size an entropy coder needs per weight."""
    k = checks.integer(k, "k", low=1)
    lab = _check_labels(labels, None, k)
    counts = np.bincount(lab).astype(np.float64)  # codes above the largest label are empty: no padding
    p = counts[counts > 0] / lab.size
    return float(-(p * np.log2(p)).sum())


def entropy_coded_bits(labels, k: int, *, codebook_bits: int = 32) -> float:
    """Bits to store a quantized layer: ``n · Ĥ(labels) + codebook_bits · K`` (paper notes §6)."""
    k = checks.integer(k, "k", low=1)
    codebook_bits = checks.real(codebook_bits, "codebook_bits", low=0.0)
    lab = _check_labels(labels, None, k)
    return lab.size * label_entropy_bits(lab, k) + codebook_bits * k

