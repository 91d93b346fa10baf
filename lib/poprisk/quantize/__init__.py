"""Weight sharing: uniform, (Hessian-weighted) K-means, the exact 1-D optimum and DRHW (chapters 1, 3, 7, 9).

A layer's weights ``w_1..w_n`` are replaced by ``K`` shared values (the *codebook* or centres ``c``) and a label
per weight. Hessian-weighted (HW) K-means :cite:`choi2017towards` chooses them to minimise the quadratic model
of the loss increase (chapter 5)

.. math:: D(c, \\ell) = \\sum_j (w_j - c_{\\ell_j})^\\top H_j (w_j - c_{\\ell_j}),

with importances ``H_j`` — positive scalars ``h_j`` for scalar weights (a Hessian-diagonal estimate; ``h ≡ 1`` is
plain K-means) or symmetric positive definite ``m×m`` blocks for vector weights ``w_j ∈ ℝ^m``.

What is here
------------
* :func:`hw_kmeans` — Lloyd's iteration: nearest-centre assignment, then the HW-mean update
  ``c_k = (Σ_{C_k} H_j)^{-1} Σ_{C_k} H_j w_j`` (scalar: ``Σ h w / Σ h``). A local optimum. Scalar weights are
  sorted once, so a step costs ``O(K log n)`` (prefix sums over runs of the sorted weights).
* :func:`weighted_kmeans_1d` — the **exact** global optimum for scalar weights. Because every optimal cluster is
  a run of consecutive sorted weights (chapter 7 proves it), the optimum is a shortest path through
  ``K`` layers of prefix costs, ``D_m(i) = min_j D_{m-1}(j) + cost(j, i)`` :cite:`wang2011ckmeans`. The cost
  matrix is Monge, so each layer's row minima are found by SMAWK in ``O(n)`` :cite:`gronlund2017fast`: total
  ``O(n log n + K n)`` time (the sort dominates) and ``O(K n)`` memory for the back-pointers (int32).
  The kernel is compiled with numba when it is installed, else a vectorised NumPy divide-and-conquer
  (``O(K n log n)``, same result) is used. Above 16 centres the Lagrangian search replaces the DP: the optimal
  cost is convex in K, so a price per cluster turns the problem into a least-weight subsequence, ``O(n log n)``
  per price whatever K, with the DP as the fallback where cluster counts tie.
* :func:`drhw_kmeans` — Algorithm 1 of :cite:`bu2021population` (diameter-regularized HW K-means), scalar and
  vector: Euclidean assignment; the farthest pair of current centres ``(k1, k2)`` is updated jointly by
  ``(A_1 + βI) c_1 − β c_2 = B_1``, ``−β c_1 + (A_2 + βI) c_2 = B_2`` (``A = Σ_C H``, ``B = Σ_C H w``); every
  other centre takes its HW mean. ``beta = 0`` is :func:`hw_kmeans`. :func:`drhw_pair_update` (the joint
  update alone) and :func:`farthest_pair` expose its two building blocks.
* :func:`drhw_linear` — the authors' released diameter regularizer (github.com/wgao9/weight-quant): HW K-means
  whose two end centres are moved inwards by ``λ/(4A)``, a penalty linear in the diameter (chapter 9).
* :func:`brute_force_kmeans` — the optimum by enumeration, for tiny problems (the reference of the tests).
* :func:`uniform_quantize` — ``K`` evenly spaced levels (cell mid-points of ``[min w, max w]``).
* :func:`distortion`, :func:`diameter`, :func:`label_entropy_bits`, :func:`entropy_coded_bits` and
  :func:`quantize_model` (every Linear/Conv weight of a model, per layer, biases untouched), with the
  quantizers registered by name in :data:`METHODS`; :func:`check_importances` validates a ``{layer: h}`` dict.

Conventions shared by every quantizer
-------------------------------------
* It returns ``(centers, labels)``: ``centers`` a float64 array (``(K,)`` ascending for scalar weights,
  ``(K, m)`` for vector weights) and ``labels`` int64 indices into it; ``centers[labels]`` is the quantized
  weight, so the output uses exactly the codebook values.
* Shapes: a 1-D ``w`` is scalar weights with ``h`` of shape ``(n,)`` (``None``: all ones); a 2-D ``w`` of shape
  ``(d, m)`` is the vector case with ``h`` of shape ``(d, m, m)`` (SPD blocks), ``(d, m)`` (diagonal blocks) or
  ``None`` (identity). :func:`kmeans`, :func:`weighted_kmeans_1d` and :func:`uniform_quantize` are scalar-only
  and flatten any input.
* Empty clusters (Lloyd and DRHW): an empty cluster keeps its previous centre, so no NaN can appear; if it is
  a member of DRHW's farthest pair it is held fixed and its partner solves its half of the joint system,
  ``(A_2 + βI) c_2 = B_2 + β c_1`` (for ``β = 0`` that is the HW mean, as in :func:`hw_kmeans`).
* Scale: every problem here is invariant to multiplying ``h`` by a constant (and ``w`` and the centres by
  another; DRHW's ``beta`` scales with ``h``), so each quantizer first rescales ``h`` and ``w`` by powers of two
  (exact in floating point: results are bit-for-bit those of the unscaled problem wherever that one does not
  overflow or underflow) — importances of 1e-200 or 1e160, or spanning 17 orders of magnitude, give the same
  answers as importances near 1.
* Bad input raises, before any work, ``TypeError`` for a wrong kind of value (a string, ``None``, a bool where a
  number is expected, a ragged list, a complex or boolean array) and ``ValueError`` for a wrong value —
  mismatched shapes (a per-weight ``h`` must have ``w``'s shape, or be its flat ``(n,)`` form: a transposed
  ``h`` of the same size is refused), non-positive or non-finite ``h``, non-finite ``w`` or centres, ``k < 1``,
  ``beta < 0``, a negative seed, a block of ``h`` that is not symmetric positive definite — each naming the
  argument. :func:`check_importances` is the same check for a whole model's ``{layer: h}`` dict.
* Seeds are non-negative integers (``None`` is refused: every random draw of the book is reproducible).
* ``import poprisk.quantize`` imports neither torch nor numba: torch is imported by :func:`quantize_model` and
  :func:`check_importances`, numba (whose compiled kernel is cached on disk, or recompiled quietly where no cache
  directory is writable) on the first call of :func:`weighted_kmeans_1d`.

Modules
-------
:mod:`.base` (validation, initialisation, assignment), :mod:`.lloyd` (the Lloyd family and DRHW),
:mod:`.exact` with its numba :mod:`.kernels` (the exact 1-D optimum), :mod:`.coding` (distortion, diameter,
entropy-coded size) and :mod:`.model` (:data:`METHODS`, :func:`check_importances`, :func:`quantize_model`).
"""

from poprisk.quantize.base import BACKENDS, INITS, LAGRANGIAN_MIN_K, assign, init_centers
from poprisk.quantize.coding import diameter, distortion, entropy_coded_bits, label_entropy_bits
from poprisk.quantize.exact import brute_force_kmeans, weighted_kmeans_1d
from poprisk.quantize.lloyd import (drhw_kmeans, drhw_linear, drhw_pair_update, farthest_pair, hw_kmeans, kmeans,
                                    uniform_quantize)
from poprisk.quantize.model import (METHODS, SIGNS, LayerReport, QuantizationReport, check_importances,
                                    check_masks, quantize_model)
from poprisk.quantize import study  # noqa: E402  (chapter 7's experiments; imports the names above)

__all__ = ["BACKENDS", "INITS", "LAGRANGIAN_MIN_K", "METHODS", "SIGNS", "LayerReport", "QuantizationReport",
           "assign", "brute_force_kmeans", "check_importances", "check_masks", "diameter", "distortion", "drhw_kmeans",
           "drhw_linear", "drhw_pair_update", "entropy_coded_bits", "farthest_pair", "hw_kmeans", "init_centers",
           "kmeans", "label_entropy_bits", "quantize_model", "uniform_quantize", "weighted_kmeans_1d"]
