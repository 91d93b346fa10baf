"""References for the estimators (chapter 8): full curvature matrices of tiny nets, the cost of a gradient
pass, and the side-by-side cost/accuracy comparison of every estimator."""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from poprisk import checks
from poprisk.curvature.estimators import _check_exact_path, _check_method, _options, hessian_diag
from poprisk.curvature.factors import _per_example_loss_terms
from poprisk.curvature.plumbing import (_PROBE, METHODS, _as_data, _check_loss_convention, _check_model,
                                        _check_outputs, _check_targets, _loss_kind, _quiet_func)
from poprisk.curvature.summaries import _rank_correlation, flatten
from poprisk.models import compressible_layers


# ----------------------------------------------------------------------------------- full matrices (tiny nets)
def curvature_matrices(model: nn.Module, loss_fn, data, *, max_weights: int = 4000) -> dict[str, torch.Tensor]:
    """The full ``d × d`` Hessian, GGN and residual matrices over all Linear/Conv weights (tiny nets only).

    Weights are flattened layer by layer in :func:`poprisk.models.compressible_layers` order (biases are held
    fixed). The three matrices are computed independently — ``"hessian"`` by double differentiation of the mean
    loss, ``"ggn"`` as ``(1/n) Σ_i J_iᵀ Λ_i J_i`` from explicit per-example Jacobians and output Hessians, and
    ``"residual"`` as ``(1/n) Σ_i Σ_c (∂ℓ_i/∂z_c) ∇²z_ic`` — so that chapter 8 can check ``H = G + R``.
    Eval mode, as in :func:`hessian_diag` (same conventions for ``loss_fn`` and ``data``). Raises ``ValueError``
    when ``d > max_weights``.
    """
    from torch.func import functional_call, hessian, jacrev, vmap

    kind = _loss_kind(loss_fn, "ggn")
    max_weights = checks.integer(max_weights, "max_weights", low=1)
    layers = compressible_layers(model)
    param = _check_model(model, layers)
    names = [f"{name}.weight" if name else "weight" for name, _ in layers]
    shapes = [m.weight.shape for _, m in layers]
    sizes = [m.weight.numel() for _, m in layers]
    d = sum(sizes)
    if d > max_weights:
        raise ValueError(f"the model has {d} weights; full matrices are for tiny nets (max_weights={max_weights})")
    x, y = _as_data(data, param.device)
    flat0 = torch.cat([m.weight.detach().reshape(-1) for _, m in layers])

    def outputs(flat, xs):
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(flat, sizes), shapes))))
        return functional_call(model, parts, (xs,))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            z = outputs(flat0, x)
        _check_outputs(z)
        if z.dim() != 2:
            raise ValueError(f"curvature_matrices needs model outputs shaped (N, C), got {tuple(z.shape)}")
        kind = _check_targets(loss_fn, kind, y, z.shape[1])
        _check_loss_convention(loss_fn, z[:_PROBE], y[:_PROBE])
        with _quiet_func():
            hess = hessian(lambda f: loss_fn(outputs(f, x), y))(flat0)
            jac = vmap(jacrev(lambda f, xi: outputs(f, xi.unsqueeze(0))[0]), in_dims=(None, 0))(flat0, x)
            _, grad_z, lam, p = _per_example_loss_terms(z, y, loss_fn, kind)
            if lam is None:
                lam = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
            n = x.shape[0]
            ggn = torch.einsum("icp,icd,idq->pq", jac, lam, jac) / n
            residual = hessian(lambda f: (outputs(f, x) * grad_z).sum() / n)(flat0)
    finally:
        model.train(was_training)
    return {"hessian": hess.detach(), "ggn": ggn.detach(), "residual": residual.detach()}


def tiny_mlp(act=nn.Tanh, seed: int = 0, sizes=(6, 5, 4, 3)) -> nn.Sequential:
    """Chapter 8's float64 MLP for exact checks: ``Linear`` layers of ``sizes`` with ``act()`` and
    ``Dropout(0.2)`` after every hidden one (the dropout is there so that a check sees eval mode switch it
    off), initialized from ``torch.manual_seed(seed)``."""
    seed = checks.seed(seed)
    sizes = tuple(checks.integer(s, "sizes", low=1) for s in sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must name at least an input and an output width, got {sizes}")
    with torch.random.fork_rng(devices=[]):  # seeded here, the caller's global generator left untouched
        torch.manual_seed(seed)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += [act(), nn.Dropout(0.2)]
        return nn.Sequential(*layers).double()


def fisher_diag_by_enumeration(model: nn.Module, loss_fn, x: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The Fisher diagonal of a softmax classifier by enumerating labels (chapter 8, a reference):
    ``(1/N) Σ_i Σ_c p_ic (∇_θ ℓ(x_i, c))^{⊙2}`` with ``p_i = softmax(f(x_i))`` in eval mode — each term the
    empirical Fisher (:func:`hessian_diag` ``"empirical_fisher"``) of one example relabelled ``c``, so it is
    computed without the GGN's output-space factor that it is compared with. Returned flattened in
    :func:`poprisk.curvature.flatten` order."""
    n_classes = checks.integer(n_classes, "n_classes", low=2)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    if probs.shape[1] != n_classes:
        raise ValueError(f"n_classes = {n_classes} but the model has {probs.shape[1]} outputs")
    total = 0.0
    for c in range(n_classes):
        label = torch.full((1,), c, dtype=torch.long)
        for i in range(len(x)):
            term = flatten(hessian_diag(model, loss_fn, (x[i:i + 1], label), "empirical_fisher"))
            total = total + probs[i, c].item() * term / len(x)
    return total


# ------------------------------------------------------------------------------------------ cost vs accuracy
def _sync(device):
    """Wait for queued GPU work, so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_gradient(model, loss_fn, x, y) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = model.training
    model.eval()
    try:
        _sync(x.device)
        start = time.perf_counter()
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        _sync(x.device)
        elapsed = time.perf_counter() - start
        del grads
    finally:
        model.train(was_training)
        for p, g in zip(params, saved):
            p.grad = g
    return elapsed


def gradient_seconds(model: nn.Module, loss_fn, data) -> float:
    """Wall time of one full-batch gradient pass (forward + ``backward()`` of the mean loss w.r.t. every
    parameter, eval mode; GPU work synchronized): the unit in which chapter 8 and ``bench/curvature.py`` express
    estimator costs. The parameters' ``.grad`` are left as they were."""
    _loss_kind(loss_fn, "ggn")
    layers = compressible_layers(model)
    x, y = _as_data(data, _check_model(model, layers).device)
    return _timed_gradient(model, loss_fn, x, y)


def compare_estimators(model: nn.Module, loss_fn, data, methods=METHODS, *, reference: str = "exact",
                       repeats: int = 3, n_probes: int = 100, seed: int = 0, batch_size: int | None = None,
                       exact_path: str = "auto"):
    """Cost and accuracy of curvature estimators, measured side by side in one run.

    Every method in ``methods`` (and ``reference``) is run on the same ``model`` and ``data``. Its cost is
    measured against gradient passes interleaved with its own runs (so that a machine whose load drifts
    affects both alike; GPU work is synchronized before each clock reading): ``x_gradient`` is the best of
    ``repeats`` runs over the best of the adjacent gradient passes (a method whose first run takes over 2 s
    runs once, beside three gradient passes). Accuracy is the Spearman rank correlation with the ``reference``
    estimate. ``exact_path`` is passed to :func:`hessian_diag` for ``"exact"`` (``"hvp"`` makes the exact
    diagonal independent of the GGN computation, as a reference should be).

    Returns ``(rows, estimates)``: ``rows`` a list of dicts with keys ``method``, ``seconds``, ``x_gradient``,
    ``spearman`` (pooled), ``spearman_nonzero`` (entries where the reference is not exactly zero),
    ``spearman_min_layer`` (the worst layer where the correlation is defined; NaN if it is nowhere),
    ``negative_fraction``; ``estimates`` ``{method: hessian_diag output}``.
    """
    if isinstance(methods, str) or not isinstance(methods, (list, tuple)):
        raise TypeError(f"methods must be a list or tuple of method names, got {methods!r}")
    if not methods:
        raise ValueError("methods must name at least one method")
    methods = [_check_method(m, "methods") for m in methods]
    reference = _check_method(reference, "reference")
    repeats = checks.integer(repeats, "repeats", low=1)
    _options(n_probes, 1, seed, batch_size)
    exact_path = _check_exact_path(exact_path)
    for m in dict.fromkeys([reference] + methods):
        _loss_kind(loss_fn, m)
    layers = compressible_layers(model)
    x, y = _as_data(data, _check_model(model, layers).device)
    kw = dict(n_probes=n_probes, seed=seed, batch_size=batch_size)
    _timed_gradient(model, loss_fn, x, y)  # warm-up
    estimates, seconds, ratio = {}, {}, {}
    for m in dict.fromkeys([reference] + methods):
        runs, grads = [], []
        for _ in range(repeats):
            grads.append(_timed_gradient(model, loss_fn, x, y))
            _sync(x.device)
            start = time.perf_counter()
            estimates[m] = hessian_diag(model, loss_fn, (x, y), m, exact_path=exact_path, **kw)
            _sync(x.device)
            runs.append(time.perf_counter() - start)
            grads.append(_timed_gradient(model, loss_fn, x, y))
            if runs[0] > 2.0:
                grads.append(_timed_gradient(model, loss_fn, x, y))
                break
        seconds[m], ratio[m] = min(runs), min(runs) / min(grads)
    ref = estimates[reference]
    rows = []
    for m in methods:
        est = estimates[m]
        per_layer = [_rank_correlation(est, ref, [k], True) for k in ref]
        defined = [r for r in per_layer if not math.isnan(r)]
        rows.append({"method": m, "seconds": seconds[m], "x_gradient": ratio[m],
                     "spearman": _rank_correlation(est, ref, list(ref), False),
                     "spearman_nonzero": _rank_correlation(est, ref, list(ref), True),
                     "spearman_min_layer": min(defined) if defined else float("nan"),
                     "negative_fraction": float((flatten(est) < 0).mean())})
    return rows, estimates
