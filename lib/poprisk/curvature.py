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

``"exact"``
    The diagonal of :math:`\\nabla^2 L` itself. For a ``Linear`` layer with 2-D input it uses that the loss is a
    sum over examples: :math:`\\partial^2 L/\\partial W_{ab}^2 = \\sum_i x_{ib}^2\\, [\\nabla^2_{a_i} L]_{aa}` with
    :math:`a_i = W x_i`, so one Hessian–vector product per *output unit* (not per weight) suffices; other layers
    take one Hessian–vector product per weight. Small nets only: it can be **negative**.
``"ggn"`` (the default)
    The exact diagonal of the generalized Gauss–Newton matrix :math:`G`, from a factorization
    :math:`\\Lambda_i = \\sum_k s_{ik} s_{ik}^\\top`:
    :math:`\\mathrm{diag}\\,G = \\frac1N\\sum_i\\sum_k (J_i^\\top s_{ik})^{\\odot 2}`. For softmax cross-entropy
    the :math:`C-1` columns of the closed-form Cholesky factor of :math:`\\mathrm{diag}(p) - pp^\\top`
    (:func:`softmax_hessian_factor`) are used; for other losses, per-example output Hessians from ``torch.func``
    and their eigen-decomposition. Each column is back-propagated to the layer *outputs* and, for a ``Linear``
    layer, the squares are contracted as :math:`(\\sum_k g_{ik}^{\\odot 2})^\\top x_i^{\\odot 2}` — no per-example
    loop and no per-example gradient.
``"mc_fisher"``
    The Fisher :math:`F = \\frac1N \\sum_i E_{\\hat y\\sim p_i} [\\nabla\\ell(\\hat y)\\nabla\\ell(\\hat y)^\\top]`
    with one label sampled from the model per example (``mc_samples`` of them if asked): unbiased for :math:`G`
    (cross-entropy only). Costs one backward pass.
``"empirical_fisher"``
    :math:`\\frac1N\\sum_i (\\nabla\\ell_i)^{\\odot 2}` with the *observed* labels :cite:`kunstner2019limitations`,
    computed without materializing per-example gradients (the :math:`(g^{\\odot 2})^\\top x^{\\odot 2}` trick).
``"hutchinson"``
    :math:`\\frac1m\\sum_k v_k \\odot \\nabla^2 L\\, v_k` with Rademacher probes :cite:`hutchinson1989stochastic`:
    unbiased for the exact diagonal, noisy, can be negative.
``"authors_sq_ce"``
    The importance of the authors' code (paper notes §6): the Gauss–Newton diagonal of the per-example
    *squared* loss, :math:`\\sum_i \\mathrm{diag}(J_i^\\top \\nabla_z^2(\\ell_i^2) J_i)` with
    :math:`\\nabla_z^2(\\ell^2) = 2(\\nabla\\ell\\nabla\\ell^\\top + \\ell\\,\\Lambda)`, normalized to mean 1 per layer.

**Default: ``"ggn"``.** It is positive semi-definite (so it is a valid quantizer/pruning importance after a tiny
floor, see :func:`positive`), deterministic, equals the Fisher for softmax cross-entropy, costs one forward
pass, :math:`C-1` backward passes to the layer outputs and one weight-gradient-sized contraction (for the book's
784-256-256-10 MLP: 1.9 gradient passes in multiply–adds, 2.2–2.6 measured on one CPU thread), and — the
decisive point for this book — for networks that are piecewise linear in each weight (ReLU MLPs and CNNs,
max-pooling, dropout and batch-norm in eval mode) its diagonal *is* the exact Hessian diagonal almost
everywhere, because the residual term's diagonal vanishes (chapter 8 proves it).

Conventions: ``loss_fn(outputs, targets)`` returns the **mean** over the batch of per-example losses (like
``nn.CrossEntropyLoss()``), and ``loss_fn(z[i:i+1], y[i:i+1])`` is the loss of example ``i``; examples must not
interact (the model is put in eval mode while the curvature is computed, so dropout is off and batch-norm uses
its running statistics; it is restored afterwards). Estimates refer to the mean loss over all of ``data``
(except ``"authors_sq_ce"``, which is normalized). ``batch_size`` splits the data into chunks to bound memory;
the result does not depend on it (up to rounding, and to the random draws of the stochastic methods).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from poprisk.models import compressible_layers

METHODS = ("exact", "ggn", "mc_fisher", "empirical_fisher", "hutchinson", "authors_sq_ce")
#: The method the book uses downstream (see the module docstring for why).
DEFAULT_METHOD = "ggn"

_CHUNK_ELEMS = 1 << 23  # elements per temporary tensor in chunked loops (~32 MB in float32)


# ----------------------------------------------------------------------------------------------- validation
def _as_data(data, device):
    x = y = None
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x, y = data.x_train, data.y_train
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("data must be a pair (x, y) of torch tensors or a poprisk.data.Split")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"data: x and y must have the same, non-zero length; got {x.shape[0]} and {y.shape[0]}")
    return x.to(device), y.to(device)  # finiteness is checked on the (much smaller) outputs


def _check_outputs(out):
    if not torch.isfinite(out).all():
        raise ValueError("the model's outputs on data contain non-finite values (check x and the weights)")


def _is_cross_entropy(loss_fn) -> bool:
    if loss_fn is F.cross_entropy:
        return True
    return (isinstance(loss_fn, nn.CrossEntropyLoss) and loss_fn.reduction == "mean" and loss_fn.weight is None
            and loss_fn.label_smoothing == 0.0)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------ model plumbing
@contextlib.contextmanager
def _quiet_func():
    """torch.func's first vmap of some ops scripts a decomposition and warns that torch.jit is deprecated: noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning)
        yield


@contextlib.contextmanager
def _prepared(model, layers):
    """Eval mode and differentiable weights for the duration of the computation; both restored after."""
    was_training = model.training
    flags = [m.weight.requires_grad for _, m in layers]
    model.eval()
    for _, m in layers:
        m.weight.requires_grad_(True)
    try:
        yield
    finally:
        model.train(was_training)
        for (_, m), flag in zip(layers, flags):
            m.weight.requires_grad_(flag)


class _Capture:
    """Forward hooks recording each layer's input (detached) and output (in the graph)."""

    def __init__(self, layers):
        self.layers = layers
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}

    def __enter__(self):
        def hook_for(name):
            def hook(_module, inp, out):
                if name in self.outputs:
                    raise ValueError(f"layer {name!r} is called more than once per forward pass; weight sharing "
                                     "is not supported by the per-example methods (use 'hutchinson')")
                self.inputs[name] = inp[0].detach()
                self.outputs[name] = out
            return hook

        self.handles = [m.register_forward_hook(hook_for(n)) for n, m in self.layers]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return False


def _chunks(x, y, batch_size):
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    for start in range(0, n, step):
        yield x[start:start + step], y[start:start + step]


# ------------------------------------------------------------------- squared per-example gradient contraction
def _is_dense(module: nn.Module, x: torch.Tensor) -> bool:
    return isinstance(module, nn.Linear) and x.dim() == 2


def _per_example_sq(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``Σ_i (∂⟨module(x_i), g_i⟩/∂W)^2`` for a layer that is not a dense ``Linear`` (convolutions, ``Linear`` on
    sequences): per-example weight gradients by ``torch.func``, in chunks of bounded memory."""
    from torch.func import functional_call, grad, vmap

    def pairing(weight, xi, gi):
        out = functional_call(module, {"weight": weight}, (xi.unsqueeze(0),))
        return (out * gi.unsqueeze(0)).sum()

    per_example = vmap(grad(pairing), in_dims=(None, 0, 0))
    w0 = module.weight.detach()
    acc = torch.zeros_like(w0)
    step = max(1, _CHUNK_ELEMS // max(1, w0.numel()))
    with _quiet_func():
        for start in range(0, x.shape[0], step):
            acc += per_example(w0, x[start:start + step], g[start:start + step]).square().sum(0)
    return acc


def _accumulate_seeds(out, seeds, capture, layers, acc, frac):
    """Add ``frac · Σ_k Σ_i (∂⟨f(x_i), s_ki⟩/∂W)²`` to ``acc`` for the output-space vectors ``seeds`` ``(K, B, C)``.

    One backward pass per seed to the layer *outputs* (never to the weights). For a dense ``Linear`` layer the
    squares are summed over seeds in place and contracted once at the end: ``(Σ_k g_k^2)ᵀ x^2`` — no
    per-example gradient is ever formed (and no ``(K, B, units)`` tensor either).
    """
    names = [name for name, _ in layers]
    targets = [capture.outputs[name] for name in names]
    dense_sq = {name: None for name, m in layers if _is_dense(m, capture.inputs[name])}
    k = seeds.shape[0]
    for j in range(k):
        grads = torch.autograd.grad(out, targets, grad_outputs=seeds[j], retain_graph=j < k - 1, allow_unused=True)
        for (name, module), g in zip(layers, grads):
            if g is None:
                continue
            if name in dense_sq:
                if dense_sq[name] is None:
                    dense_sq[name] = g.square()
                else:
                    dense_sq[name].addcmul_(g, g)
            else:
                acc[name].add_(_per_example_sq(module, capture.inputs[name], g), alpha=frac)
    for name, sq in dense_sq.items():
        if sq is not None:
            acc[name].add_(sq.transpose(0, 1) @ capture.inputs[name].square(), alpha=frac)


# --------------------------------------------------------------------------------- output-space factors
def _per_example_loss_terms(z, y, loss_fn):
    """Per-example losses ``ℓ_i``, gradients ``∇_z ℓ_i`` and Hessians ``∇²_z ℓ_i`` (shapes (B,), (B,C), (B,C,C))."""
    z = z.detach()
    if _is_cross_entropy(loss_fn):
        logp = torch.log_softmax(z, dim=1)
        p = logp.exp()
        loss = -logp.gather(1, y.reshape(-1, 1)).squeeze(1)
        grad_ = p - F.one_hot(y, z.shape[1]).to(z.dtype)
        return loss, grad_, None, p
    from torch.func import grad, hessian, vmap

    def single(zi, yi):
        return loss_fn(zi.unsqueeze(0), yi.unsqueeze(0))

    with _quiet_func():
        loss = vmap(single)(z, y)
        grad_ = vmap(grad(single))(z, y)
        hess = vmap(hessian(single))(z, y)
    return loss, grad_, hess, None


def softmax_hessian_factor(p: torch.Tensor) -> torch.Tensor:
    """Closed-form Cholesky factor of the softmax cross-entropy output Hessian ``Λ = diag(p) − ppᵀ``.

    ``p`` holds probability vectors in its rows, ``(B, C)``. Returns ``L`` shaped ``(B, C, C−1)`` with
    ``L Lᵀ = Λ`` (``Λ`` has rank ``C − 1``, so ``C − 1`` columns suffice): with the tail masses ``q_j = Σ_{k>j} p_k``, ``L_jj = √(p_j q_j / q_{j−1})`` and
    ``L_ij = −p_i √(p_j / (q_{j−1} q_j))`` for ``i > j``. Tails are summed from the end, so there is no
    cancellation; a column whose tail mass underflows to zero is zero.
    """
    b, c = p.shape
    tail = p.flip(1).cumsum(1).flip(1)  # tail[:, j] = Σ_{k≥j} p_k
    q_prev, q = tail[:, :c - 1], tail[:, 1:]
    pj = p[:, :c - 1]
    tiny = torch.finfo(p.dtype).tiny

    def ratio(num, den):
        return torch.where(den > 0, num / den.clamp_min(tiny), torch.zeros_like(num))

    diag = ratio(pj * q, q_prev).sqrt()
    coef = ratio(pj, q_prev * q).sqrt()
    below = (torch.arange(c, device=p.device).unsqueeze(1) > torch.arange(c - 1, device=p.device).unsqueeze(0))
    factor = torch.where(below, -p.unsqueeze(2) * coef.unsqueeze(1), torch.zeros((), dtype=p.dtype, device=p.device))
    idx = torch.arange(c - 1, device=p.device)
    factor[:, idx, idx] = diag
    return factor


def _hessian_sqrt_columns(hess, p):
    """Columns ``s_k`` with ``Σ_k s_k s_kᵀ = Λ_i`` for every example, as a ``(K, B, C)`` tensor."""
    if p is not None:  # softmax cross-entropy: closed-form rank-(C−1) factor
        return softmax_hessian_factor(p).permute(2, 0, 1)
    evals, evecs = torch.linalg.eigh(0.5 * (hess + hess.transpose(1, 2)))
    factor = evecs * evals.clamp_min(0).sqrt().unsqueeze(1)  # (B, C, C), columns are the factors
    return factor.permute(2, 0, 1)


def _seeds(method, out, y, loss_fn, gen, mc_samples):
    """Output-space vectors whose back-propagated squares sum to the chunk's contribution (mean over chunk)."""
    if out.dim() != 2:
        raise ValueError(f"method {method!r} needs model outputs shaped (N, C), got {tuple(out.shape)}")
    b = out.shape[0]
    loss, grad_, hess, p = _per_example_loss_terms(out, y, loss_fn)
    if method == "empirical_fisher":
        return grad_.unsqueeze(0) / math.sqrt(b)
    if method == "ggn":
        return _hessian_sqrt_columns(hess, p) / math.sqrt(b)
    if method == "mc_fisher":
        if p is None:
            raise ValueError("method 'mc_fisher' samples labels from the model's softmax, so loss_fn must be "
                             "softmax cross-entropy (nn.CrossEntropyLoss() or F.cross_entropy)")
        draws = torch.multinomial(p.detach().cpu().double(), mc_samples, replacement=True, generator=gen)
        draws = draws.to(p.device).transpose(0, 1)  # (m, B)
        return (p.unsqueeze(0) - F.one_hot(draws, p.shape[1]).to(p.dtype)) / math.sqrt(b * mc_samples)
    if method == "authors_sq_ce":
        # ∇²_z(ℓ²) = 2(∇ℓ∇ℓᵀ + ℓΛ): factor columns √2∇ℓ and √(2ℓ) s_c; the sum over examples (not the mean)
        # matches the authors' accumulation, and the per-layer normalisation removes the constants anyway.
        cols = _hessian_sqrt_columns(hess, p) * loss.clamp_min(0).sqrt().unsqueeze(0).unsqueeze(-1)
        return math.sqrt(2.0) * torch.cat([grad_.unsqueeze(0), cols], dim=0)
    raise AssertionError(method)


# ----------------------------------------------------------------------------------------------- estimators
def _diag_from_seeds(model, layers, x, y, loss_fn, method, gen, mc_samples, batch_size):
    n = x.shape[0]
    names = [n_ for n_, _ in layers]
    acc = {name: torch.zeros_like(m.weight, memory_format=torch.contiguous_format).detach() for name, m in layers}
    for xb, yb in _chunks(x, y, batch_size):
        frac = 1.0 if method == "authors_sq_ce" else xb.shape[0] / n
        with _Capture(layers) as cap:
            out = model(xb)
        _check_outputs(out)
        missing = [name for name in names if name not in cap.outputs]
        if missing:
            raise ValueError(f"layers {missing} were not called in the forward pass")
        seeds = _seeds(method, out, yb, loss_fn, gen, mc_samples).to(out.dtype)
        _accumulate_seeds(out, seeds, cap, layers, acc, frac)
    return acc


def _unit_vectors(count, start, stop, dtype, device):
    """Rows ``e_start, …, e_{stop-1}`` of the ``count × count`` identity, as a ``(stop-start, count)`` tensor."""
    k = stop - start
    e = torch.zeros((k, count), dtype=dtype, device=device)
    e[torch.arange(k, device=device), torch.arange(start, stop, device=device)] = 1
    return e


def _exact(model, layers, x, y, loss_fn, batch_size):
    n = x.shape[0]
    acc = {name: torch.zeros_like(m.weight).detach() for name, m in layers}
    for xb, yb in _chunks(x, y, batch_size):
        frac = xb.shape[0] / n
        with _Capture(layers) as cap:
            out = model(xb)
        _check_outputs(out)
        loss = loss_fn(out, yb)
        trick = [(name, m) for name, m in layers if isinstance(m, nn.Linear) and cap.inputs[name].dim() == 2]
        other = [(name, m) for name, m in layers if (name, m) not in trick]
        outs = [cap.outputs[name] for name, _ in trick]
        weights = [m.weight for _, m in other]
        first = torch.autograd.grad(loss, outs + weights, create_graph=True, allow_unused=True)
        for (name, m), g in zip(trick, first[:len(trick)]):
            if g is None:
                continue
            a = cap.outputs[name]
            b, units = a.shape
            d = torch.empty_like(a.detach())
            step = max(1, min(units, _CHUNK_ELEMS // max(1, a.numel())))
            for s in range(0, units, step):
                t = min(units, s + step)
                e = _unit_vectors(units, s, t, a.dtype, a.device)  # (k, units)
                tangents = e.unsqueeze(1).expand(t - s, b, units).contiguous()
                hv = torch.autograd.grad(g, a, grad_outputs=tangents, is_grads_batched=True, retain_graph=True)[0]
                d[:, s:t] = hv[torch.arange(t - s), :, torch.arange(s, t)].transpose(0, 1)
            acc[name] += frac * (d.transpose(0, 1) @ cap.inputs[name].square())
        for (name, m), g in zip(other, first[len(trick):]):
            if g is None:
                continue
            w = m.weight
            count = w.numel()
            flat = torch.empty(count, dtype=w.dtype, device=w.device)
            step = max(1, min(count, _CHUNK_ELEMS // max(1, count)))
            for s in range(0, count, step):
                t = min(count, s + step)
                e = _unit_vectors(count, s, t, w.dtype, w.device).reshape(t - s, *w.shape)
                hv = torch.autograd.grad(g, w, grad_outputs=e, is_grads_batched=True, retain_graph=True)[0]
                flat[s:t] = hv.reshape(t - s, count)[torch.arange(t - s), torch.arange(s, t)]
            acc[name] += frac * flat.reshape(w.shape)
    return acc


def _hutchinson(model, layers, x, y, loss_fn, n_probes, seed, batch_size):
    n = x.shape[0]
    weights = [m.weight for _, m in layers]
    acc = [torch.zeros_like(w).detach() for w in weights]
    total = sum(w.numel() for w in weights)
    step = max(1, min(n_probes, _CHUNK_ELEMS // max(1, total)))
    for xb, yb in _chunks(x, y, batch_size):
        frac = xb.shape[0] / n
        out = model(xb)
        _check_outputs(out)
        loss = loss_fn(out, yb)
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        gen = torch.Generator(device="cpu").manual_seed(seed)  # the same probes for every chunk
        for s in range(0, n_probes, step):
            k = min(step, n_probes - s)
            probes = [(torch.randint(0, 2, (k, *w.shape), generator=gen, dtype=torch.int8) * 2 - 1)
                      .to(device=w.device, dtype=w.dtype) for w in weights]
            hv = torch.autograd.grad(grads, weights, grad_outputs=probes, is_grads_batched=True, retain_graph=True)
            for a, v, h in zip(acc, probes, hv):
                a += frac * (v * h).sum(0) / n_probes
    return {name: a for (name, _), a in zip(layers, acc)}


def hessian_diag(model: nn.Module, loss_fn, data, method: str = DEFAULT_METHOD, *, n_probes: int = 100,
                 mc_samples: int = 1, seed: int = 0, batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """Estimate the diagonal curvature of the mean training loss for every Linear/Conv weight of ``model``.

    Parameters
    ----------
    model : the network (any ``nn.Module`` mapping ``x`` to outputs ``(N, C)``); put in eval mode meanwhile.
    loss_fn : mean-reduced loss ``loss_fn(outputs, targets)`` (e.g. ``nn.CrossEntropyLoss()``).
    data : ``(x, y)`` tensors or a :class:`poprisk.data.Split` (its training part is used).
    method : one of :data:`METHODS`; default :data:`DEFAULT_METHOD` (``"ggn"``). See the module docstring.
    n_probes : Rademacher probes of ``"hutchinson"``.
    mc_samples : sampled labels per example of ``"mc_fisher"``.
    seed : seed of the random draws (``"mc_fisher"``, ``"hutchinson"``); the result is a function of it.
    batch_size : examples per chunk (bounds memory); ``None`` processes all of ``data`` at once.

    Returns ``{module_name: tensor shaped like that module's weight}`` on the weight's device and dtype.
    Every method but ``"exact"`` and ``"hutchinson"`` is non-negative; use :func:`positive` before handing an
    estimate to a quantizer that needs strictly positive importances.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (e.g. nn.CrossEntropyLoss()), got {type(loss_fn).__name__}")
    n_probes = _positive_int(n_probes, "n_probes")
    mc_samples = _positive_int(mc_samples, "mc_samples")
    if batch_size is not None:
        batch_size = _positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    layers = compressible_layers(model)
    param = next(model.parameters())
    x, y = _as_data(data, param.device)
    with _prepared(model, layers), torch.enable_grad():
        if method == "exact":
            h = _exact(model, layers, x, y, loss_fn, batch_size)
        elif method == "hutchinson":
            h = _hutchinson(model, layers, x, y, loss_fn, n_probes, int(seed), batch_size)
        else:
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            h = _diag_from_seeds(model, layers, x, y, loss_fn, method, gen, mc_samples, batch_size)
    h = {name: t.detach() for name, t in h.items()}
    if method == "authors_sq_ce":
        h = normalize(h)
    return h


# ------------------------------------------------------------------------------------------------- helpers
def _check_h(h, name="h"):
    if not isinstance(h, dict) or not h:
        raise TypeError(f"{name} must be a non-empty dict {{layer_name: tensor}} as returned by hessian_diag")
    for key, t in h.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a torch tensor, got {type(t).__name__}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}[{key!r}] contains non-finite values")


def normalize(h: dict) -> dict:
    """Rescale every layer to mean 1 (the authors' normalisation). An all-zero layer becomes all ones."""
    _check_h(h)
    out = {}
    for key, t in h.items():
        mean = t.mean()
        out[key] = t / mean if mean != 0 else torch.ones_like(t)
    return out


def positive(h: dict, floor: float = 1e-6) -> dict:
    """Clip a curvature estimate to strictly positive importances, layer by layer.

    Entries below ``floor · mean(|h_layer|)`` (negative ones included) are raised to that value; an identically
    zero layer becomes all ones (nothing distinguishes its weights). Use it on ``"exact"`` and ``"hutchinson"``
    estimates — whose negative entries mean *the loss is locally concave along that weight*, which a quadratic
    importance cannot express — before Hessian-weighted quantization or OBD pruning. Why clip rather than take
    absolute values: a negative curvature says that moving the weight does not raise the quadratic model of the
    loss, so the weight is among the *least* important, which clipping keeps and ``|h|`` would invert.
    """
    _check_h(h)
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not floor > 0 or not math.isfinite(floor):
        raise ValueError(f"floor must be a positive finite number, got {floor!r}")
    out = {}
    for key, t in h.items():
        scale = t.abs().mean()
        out[key] = t.clamp_min(floor * scale) if scale > 0 else torch.ones_like(t)
    return out


def flatten(h: dict) -> np.ndarray:
    """All entries of ``h`` as one float64 NumPy vector (layers in insertion order)."""
    _check_h(h)
    return np.concatenate([t.detach().cpu().double().numpy().reshape(-1) for t in h.values()])


def spearman(a: dict, b: dict, *, per_layer: bool = False, drop_zeros: bool = False):
    """Spearman rank correlation between two curvature estimates with the same layers and shapes.

    Pooled over all weights of all layers by default; ``per_layer=True`` gives ``{layer: correlation}``.
    ``drop_zeros=True`` leaves out the entries where ``b`` (the reference) is exactly zero — weights fed by an
    input that is zero on every example (MNIST's border pixels) or by a dead unit, whose curvature every
    estimator gets exactly right and whose ties would inflate the correlation.
    """
    from scipy.stats import spearmanr

    _check_h(a, "a")
    _check_h(b, "b")
    if list(a) != list(b) or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("a and b must have the same layers (in the same order) with the same shapes")

    def rho(keys):
        va, vb = flatten({k: a[k] for k in keys}), flatten({k: b[k] for k in keys})
        if drop_zeros:
            va, vb = va[vb != 0], vb[vb != 0]
        return float(spearmanr(va, vb).statistic) if va.size > 1 else float("nan")

    if per_layer:
        return {k: rho([k]) for k in a}
    return rho(list(a))


# ----------------------------------------------------------------------------------- full matrices (tiny nets)
def curvature_matrices(model: nn.Module, loss_fn, data, *, max_weights: int = 4000) -> dict[str, torch.Tensor]:
    """The full ``d × d`` Hessian, GGN and residual matrices over all Linear/Conv weights (tiny nets only).

    Weights are flattened layer by layer in :func:`poprisk.models.compressible_layers` order (biases are held fixed). The three
    matrices are computed independently — ``"hessian"`` by double differentiation of the mean loss,
    ``"ggn"`` as ``(1/n) Σ_i J_iᵀ Λ_i J_i`` from explicit per-example Jacobians and output Hessians, and
    ``"residual"`` as ``(1/n) Σ_i Σ_c (∂ℓ_i/∂z_c) ∇²z_ic`` — so that chapter 8 can check ``H = G + R``.
    Eval mode, as in :func:`hessian_diag`. Raises ``ValueError`` when ``d > max_weights``.
    """
    from torch.func import functional_call, hessian, jacrev, vmap

    layers = compressible_layers(model)
    x, y = _as_data(data, next(model.parameters()).device)
    names = [f"{name}.weight" if name else "weight" for name, _ in layers]
    shapes = [m.weight.shape for _, m in layers]
    sizes = [m.weight.numel() for _, m in layers]
    d = sum(sizes)
    if d > max_weights:
        raise ValueError(f"the model has {d} weights; full matrices are for tiny nets (max_weights={max_weights})")
    flat0 = torch.cat([m.weight.detach().reshape(-1) for _, m in layers])

    def outputs(flat, xs):
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(flat, sizes), shapes))))
        return functional_call(model, parts, (xs,))

    was_training = model.training
    model.eval()
    try:
        with _quiet_func():
            hess = hessian(lambda f: loss_fn(outputs(f, x), y))(flat0)
            z = outputs(flat0, x).detach()
            jac = vmap(jacrev(lambda f, xi: outputs(f, xi.unsqueeze(0))[0]), in_dims=(None, 0))(flat0, x)
            _, grad_z, lam, p = _per_example_loss_terms(z, y, loss_fn)
            if lam is None:
                lam = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
            n = x.shape[0]
            ggn = torch.einsum("icp,icd,idq->pq", jac, lam, jac) / n
            residual = hessian(lambda f: (outputs(f, x) * grad_z).sum() / n)(flat0)
    finally:
        model.train(was_training)
    return {"hessian": hess.detach(), "ggn": ggn.detach(), "residual": residual.detach()}


def split_by_layer(vector: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """Cut a flat vector over all Linear/Conv weights (e.g. ``curvature_matrices(...)["ggn"].diagonal()``) into
    ``{layer name: tensor shaped like its weight}``, the format of :func:`hessian_diag`."""
    layers = compressible_layers(model)
    sizes = [m.weight.numel() for _, m in layers]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"vector must be 1-D with {sum(sizes)} entries, got shape {tuple(vector.shape)}")
    return {name: t.reshape(m.weight.shape) for (name, m), t in zip(layers, torch.split(vector, sizes))}


# ------------------------------------------------------------------------------------------ cost vs accuracy
def gradient_seconds(model: nn.Module, loss_fn, data) -> float:
    """Wall time of one full-batch gradient pass (forward + ``backward()`` of the mean loss w.r.t. every
    parameter, eval mode): the unit in which chapter 8 and ``bench/curvature.py`` express estimator costs.
    The parameters' ``.grad`` are left as they were."""
    import time

    x, y = _as_data(data, next(model.parameters()).device)
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = model.training
    model.eval()
    try:
        start = time.perf_counter()
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        elapsed = time.perf_counter() - start
        del grads
    finally:
        model.train(was_training)
        for p, g in zip(params, saved):
            p.grad = g
    return elapsed


def compare_estimators(model: nn.Module, loss_fn, data, methods=METHODS, *, reference: str = "exact",
                       repeats: int = 3, n_probes: int = 100, seed: int = 0, batch_size: int | None = None):
    """Cost and accuracy of curvature estimators, measured side by side in one run.

    Every method in ``methods`` (and ``reference``) is run on the same ``model`` and ``data``. Its cost is
    measured against gradient passes interleaved with its own runs (so that a machine whose load drifts
    affects both alike): ``x_gradient`` is the best of ``repeats`` runs over the best of the adjacent gradient
    passes (a method whose first run takes over 2 s runs once, beside three gradient passes). Accuracy is the
    Spearman rank correlation with the ``reference`` estimate.

    Returns ``(rows, estimates)``: ``rows`` a list of dicts with keys ``method``, ``seconds``, ``x_gradient``,
    ``spearman`` (pooled), ``spearman_nonzero`` (entries where the reference is not exactly zero),
    ``spearman_min_layer`` (the worst layer), ``negative_fraction``; ``estimates`` ``{method: hessian_diag output}``.
    """
    import time

    methods = list(methods)
    for m in methods + [reference]:
        if m not in METHODS:
            raise ValueError(f"methods and reference must be among {METHODS}, got {m!r}")
    repeats = _positive_int(repeats, "repeats")
    kw = dict(n_probes=n_probes, seed=seed, batch_size=batch_size)
    gradient_seconds(model, loss_fn, data)  # warm-up
    estimates, seconds, ratio = {}, {}, {}
    for m in dict.fromkeys([reference] + methods):
        runs, grads = [], []
        for _ in range(repeats):
            grads.append(gradient_seconds(model, loss_fn, data))
            start = time.perf_counter()
            estimates[m] = hessian_diag(model, loss_fn, data, m, **kw)
            runs.append(time.perf_counter() - start)
            grads.append(gradient_seconds(model, loss_fn, data))
            if runs[0] > 2.0:
                grads.append(gradient_seconds(model, loss_fn, data))
                break
        seconds[m], ratio[m] = min(runs), min(runs) / min(grads)
    rows = []
    for m in methods:
        rows.append({"method": m, "seconds": seconds[m], "x_gradient": ratio[m],
                     "spearman": spearman(estimates[m], estimates[reference]),
                     "spearman_nonzero": spearman(estimates[m], estimates[reference], drop_zeros=True),
                     "spearman_min_layer": min(spearman(estimates[m], estimates[reference], per_layer=True,
                                                        drop_zeros=True).values()),
                     "negative_fraction": float((flatten(estimates[m]) < 0).mean())})
    return rows, estimates
