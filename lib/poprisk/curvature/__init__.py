"""Diagonal curvature of a network's training loss (chapter 8; its estimates feed chapters 7 and 9).

For the mean training loss :math:`L(\\theta) = \\frac1N \\sum_i \\ell(f(x_i;\\theta), y_i)` with network outputs
:math:`z_i = f(x_i;\\theta)`, the Hessian splits into a Gauss–Newton part and a residual part
:cite:`schraudolph2002fast,martens2020new`

.. math:: \\nabla^2 L = \\underbrace{\\tfrac1N \\textstyle\\sum_i J_i^\\top \\Lambda_i J_i}_{G\\ (\\text{GGN})}
          + \\tfrac1N \\textstyle\\sum_i \\sum_c \\partial_{z_c}\\ell_i \\, \\nabla^2_\\theta z_{ic},
          \\qquad J_i = \\partial z_i / \\partial\\theta,\\ \\Lambda_i = \\nabla^2_z \\ell_i .

:func:`hessian_diag` estimates the diagonal of one of these matrices for the weight of every ``Linear`` and
``Conv`` layer and returns ``{module_name: tensor shaped like module.weight}`` — the ``h`` that
:func:`poprisk.quantize.quantize_model` and :func:`poprisk.prune.curvature_prune` take. Methods:

``"ggn"`` (the default)
    The exact diagonal of the generalized Gauss–Newton matrix :math:`G`, from a factorization
    :math:`\\Lambda_i = \\sum_k \\sigma_k s_{ik} s_{ik}^\\top` (:math:`\\sigma_k = \\pm1`):
    :math:`\\mathrm{diag}\\,G = \\frac1N\\sum_i\\sum_k \\sigma_k (J_i^\\top s_{ik})^{\\odot 2}`. For softmax
    cross-entropy the :math:`C-1` columns of the closed-form Cholesky factor of :math:`\\mathrm{diag}(p) - pp^\\top`
    (:func:`softmax_hessian_factor`) are used; for other losses, per-example output Hessians from ``torch.func``
    and their eigen-decomposition (negative eigenvalues, for a loss that is not convex in the outputs, enter
    with :math:`\\sigma_k = -1`, so the diagonal is that of :math:`G` itself). Each column is back-propagated to
    the layer *outputs* :math:`g_{ikp}` (``p`` runs over the positions where a layer applies its weight: one for a
    dense ``Linear``, the output pixels of a convolution) and squared against the layer inputs :math:`u_{ip}`
    (the image patches of a convolution) without a per-example loop, in one of two ways chosen per layer:
    *pairs* — :math:`\\sum_{i}\\sum_{p,q} (\\sum_k g_{ikp} g_{ikq}) (u_{ip} u_{iq})`, one matrix product
    over examples and position pairs, for layers with few positions (a dense layer is the case of one:
    :math:`(\\sum_k g_{ik}^{\\odot 2})^\\top u_i^{\\odot 2}`); *examples* — per-example weight gradients
    :math:`\\sum_p g_{ikp} u_{ip}^\\top` formed by batched matrix products in chunks of bounded memory and squared.
``"exact"``
    The diagonal of :math:`\\nabla^2 L` itself. When every operation between the weights and the outputs is
    piecewise linear in each weight (``Linear``/``Conv``, ReLU and leaky ReLU, max and average pooling, dropout
    and batch-norm in eval mode, reshapes, sums — checked on the autograd graph of the model's outputs), the
    residual term's diagonal vanishes (its second derivatives are zero almost everywhere: chapter 8), so the
    exact diagonal is the GGN diagonal above with the loss's full output Hessian, and it is computed that way.
    Otherwise (tanh, softplus, …, or a product of two activations) it takes the general path: for a dense
    ``Linear`` layer, :math:`\\partial^2 L/\\partial W_{ab}^2 = \\sum_i x_{ib}^2\\, [\\nabla^2_{a_i} L]_{aa}` with
    :math:`a_i = W x_i` from one Hessian–vector product per *output unit*; for other layers one
    Hessian–vector product per weight (small nets only); ``exact_path="hvp"`` takes this path on any net, as a
    reference computed independently of the GGN. It can be **negative**.
``"mc_fisher"``
    The Fisher :math:`F = \\frac1N \\sum_i E_{\\hat y\\sim p_i} [\\nabla\\ell(\\hat y)\\nabla\\ell(\\hat y)^\\top]`
    with one label sampled from the model per example (``mc_samples`` of them if asked): unbiased for :math:`G`
    (plain softmax cross-entropy only). Costs one backward pass.
``"empirical_fisher"``
    :math:`\\frac1N\\sum_i (\\nabla\\ell_i)^{\\odot 2}` with the *observed* labels :cite:`kunstner2019limitations`,
    computed without materializing per-example gradients (the same contractions as ``"ggn"``, one column).
``"hutchinson"``
    :math:`\\frac1m\\sum_k v_k \\odot \\nabla^2 L\\, v_k` with Rademacher probes :cite:`hutchinson1989stochastic`:
    unbiased for the exact diagonal, noisy, can be negative.
``"authors_sq_ce"``
    The importance of the authors' code (paper notes §6): the Gauss–Newton diagonal of the per-example
    *squared* loss, :math:`\\sum_i \\mathrm{diag}(J_i^\\top \\nabla_z^2(\\ell_i^2) J_i)` with
    :math:`\\nabla_z^2(\\ell^2) = 2(\\nabla\\ell\\nabla\\ell^\\top + \\ell\\,\\Lambda)`, normalized to mean 1 per layer
    (cross-entropy only, as in their code).

**Default: ``"ggn"``.** It is positive semi-definite for a loss convex in the outputs (so it is a valid
quantizer/pruning importance after a tiny floor, see :func:`positive`), deterministic, equals the Fisher for
softmax cross-entropy, and — the decisive point for this book — for networks that are piecewise linear in each
weight (ReLU MLPs and CNNs, max-pooling, dropout and batch-norm in eval mode) its diagonal *is* the exact Hessian
diagonal almost everywhere, because the residual term's diagonal vanishes (chapter 8 proves it).

**Cost** (``bench/curvature.py`` measures it: CPU seconds, one thread; a gradient pass is one forward and one
backward of the mean loss). ``"ggn"`` is one forward pass, :math:`C-1` backward passes to the layer outputs and
the contractions above; ``"exact"`` on a piecewise-linear net is the same computation. On the book's
784-256-256-10 MLP (4,000 digits) the contraction is one weight-gradient-sized product, so both cost about 2.2
gradient passes — BackPACK's ``DiagHessian``/``DiagGGNExact`` about 5, the Hessian–vector-product path of
``"exact"`` about 100. On ``models.VGGSmall`` at width 1 (64 CIFAR-shaped inputs) ``"ggn"`` costs about 10
gradient passes (BackPACK: about 22; the torch.func per-example path used before: about 17): about 2.7 for the 9
backward passes, 6.7 for the squared per-example gradients, whose matrix products already run at the CPU's
peak rate. An exact GGN diagonal of a 10-class convolutional net cannot cost a few gradient passes this way: a
gradient's weight gradient is one product summed over the batch (with a faster convolution algorithm), the
diagonal needs :math:`C-1` per-example ones, squared.

Conventions: ``loss_fn(outputs, targets)`` returns the **mean** over the batch of per-example losses (like
``nn.CrossEntropyLoss()``), and ``loss_fn(z[i:i+1], y[i:i+1])`` is the loss of example ``i``; both are checked on
a few examples, and losses that break them (``reduction="sum"``, class weights, which average with weights
:math:`\\sum w_{y_i}\\ell_i/\\sum w_{y_i}`, labels equal to ``ignore_index``) are refused. Examples must not
interact: the model is put in eval mode while the curvature is computed, so dropout is off and batch-norm uses
its running statistics (a batch-norm without running statistics is refused); it is restored afterwards.
Estimates refer to the mean loss over all of ``data`` (except ``"authors_sq_ce"``, which is normalized).
``data`` is processed in chunks of at most ``batch_size`` examples, and of fewer when the activations that
back-propagation keeps would exceed about 512 MB (measured on a few examples first), so the working memory stays
bounded — for ``VGGSmall`` at width 1 and 1,000 CIFAR images the whole process peaks at 1.34 GiB during
``"ggn"`` (``bench/curvature.py``); the result does not
depend on the chunking (up to rounding, and to the random draws of ``"mc_fisher"``).

Modules: :mod:`.estimators` (:func:`hessian_diag` and each estimator), :mod:`.factors` (output-space factors,
piecewise linearity), :mod:`.products` (squared per-example gradients, conv patches), :mod:`.plumbing`
(validation, hooks, memory chunking), :mod:`.summaries` (normalize, positive, flatten, spearman) and
:mod:`.reference` (full matrices of tiny nets, timing, :func:`compare_estimators`). A new estimator is a name
in :data:`METHODS` and its branch of seeds in :mod:`.factors` or its own function in :mod:`.estimators`.
"""

from poprisk.curvature.estimators import hessian_diag
from poprisk.curvature.factors import output_space_traces, softmax_hessian_factor
from poprisk.curvature.plumbing import DEFAULT_METHOD, METHODS
from poprisk.curvature.reference import (compare_estimators, curvature_matrices, fisher_diag_by_enumeration,
                                        gradient_seconds, tiny_mlp)
from poprisk.curvature.summaries import flatten, normalize, positive, spearman, split_by_layer

__all__ = ["DEFAULT_METHOD", "METHODS", "compare_estimators", "curvature_matrices", "fisher_diag_by_enumeration",
           "flatten", "gradient_seconds", "hessian_diag", "normalize", "output_space_traces", "positive",
           "softmax_hessian_factor", "spearman", "split_by_layer", "tiny_mlp"]
