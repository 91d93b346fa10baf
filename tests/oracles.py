"""Reference implementations the tests and the benches measure the library against (no test lives here).

Plain, slow, obviously-correct versions of what :mod:`poprisk` computes fast; ``tests/test_quantize.py``
checks the library equals them and ``bench/kmeans1d.py`` times the library against them.
"""

from __future__ import annotations

import numpy as np

from poprisk import quantize


def lloyd_by_binning(w, h, k: int, iters: int = 30):
    """Scalar Hessian-weighted Lloyd (chapter 7) the old way: every step assigns all ``n`` weights to their
    nearest centre and bins ``Σ h`` and ``Σ h w`` per cluster (``O(n)`` a step; the library sorts once and
    uses prefix sums). An empty cluster keeps its centre; stops at a fixed point. Returns ``(centers, labels)``."""
    c = quantize.init_centers(w, k, h=h)
    for _ in range(iters):
        lab = quantize.assign(w, c)
        mass = np.bincount(lab, weights=h, minlength=k)
        new = np.where(mass > 0, np.bincount(lab, weights=h * w, minlength=k) / np.where(mass > 0, mass, 1.0), c)
        new.sort()
        if np.array_equal(new, c):
            break
        c = new
    return c, quantize.assign(w, c)
