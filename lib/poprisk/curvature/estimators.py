"""The curvature estimators (chapter 8): the Hessian diagonal by exact Hessian-vector products, GGN, Fisher
(Monte Carlo and empirical), Hutchinson probes and the authors' squared-CE rule, behind :func:`hessian_diag`."""

from __future__ import annotations

import torch
from torch import nn

from poprisk import checks
from poprisk.curvature.factors import _piecewise_linear, _seeds
from poprisk.curvature.plumbing import (_CHUNK_ELEMS, _PROBE, DEFAULT_METHOD, METHODS, _as_data, _Capture,
                                        _check_loss_convention, _check_model, _check_outputs, _check_targets,
                                        _chunk_size, _chunks, _loss_kind, _prepared)
from poprisk.curvature.products import _patchable, _patches, _Squares
from poprisk.curvature.summaries import normalize
from poprisk.models import compressible_layers


# ----------------------------------------------------------------------------------------------- estimators
def _probe(model, layers, x, y, loss_fn, kind, method, exact_path="auto"):
    """Forward a few examples: check the outputs, the targets and the loss conventions, and measure the memory
    that one example costs. Returns ``(kind, bytes per example, piecewise linear?)``; the bytes count what
    back-propagation keeps (a second-order graph keeps about three times as much), the image patches of the
    convolutions and one column's gradients at the layer outputs."""
    m = min(_PROBE, x.shape[0])
    params = {p.data_ptr() for p in model.parameters()}
    saved = [0]

    def pack(t):
        if t.data_ptr() not in params:
            saved[0] += t.numel() * t.element_size()
        return t

    if x.is_floating_point() and x.dtype != next(model.parameters()).dtype:
        raise TypeError(f"data: x is {x.dtype} but the model's weights are {next(model.parameters()).dtype}; "
                        "convert one of them")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _Capture(layers) as cap:
        try:
            out = model(x[:m])
        except (RuntimeError, TypeError, IndexError) as err:  # a shape or type mismatch inside the model
            raise ValueError(f"model(x) failed on data's x shaped {tuple(x.shape)} ({x.dtype}): {err}") from err
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a tensor of outputs, got {type(out).__name__}")
    if out.grad_fn is None:
        raise ValueError("model: its outputs do not depend differentiably on its weights (torch.no_grad() or "
                         "detach() inside forward?)")
    _check_outputs(out)
    if out.dim() != 2 and method not in ("exact", "hutchinson"):
        raise ValueError(f"method {method!r} needs model outputs shaped (N, C), got {tuple(out.shape)}")
    kind = _check_targets(loss_fn, kind, y, out.shape[1]) if out.dim() == 2 else "generic"
    _check_loss_convention(loss_fn, out, y[:m])
    linear = out.dim() == 2 and _piecewise_linear(out, layers)
    if method == "exact" and exact_path == "factor" and not linear:
        raise ValueError("exact_path='factor' needs a net that is piecewise linear in each weight (ReLU, "
                         "max-pooling, ...) with outputs (N, C); this one is not: use 'auto' or 'hvp'")
    linear = linear and exact_path != "hvp"
    per_example = saved[0] / m * (3.0 if method == "hutchinson" or (method == "exact" and not linear) else 1.0)
    for name, module in layers:
        if name in cap.outputs:
            inp, layer_out = cap.inputs[name][:1], cap.outputs[name][:1]
            per_example += layer_out.numel() * layer_out.element_size()
            if _patchable(module, inp) and not isinstance(module, nn.Linear):
                per_example += _patches(module, inp).numel() * inp.element_size()
    return kind, per_example, linear


def _diag_from_seeds(model, layers, x, y, loss_fn, kind, method, gen, mc_samples, step):
    """The seed methods (``"ggn"``, ``"exact"`` on piecewise-linear nets, the Fishers, the authors')."""
    n = x.shape[0]
    names = [name for name, _ in layers]
    acc = {name: torch.zeros(m.weight.shape, dtype=m.weight.dtype, device=m.weight.device) for name, m in layers}
    for xb, yb in _chunks(x, y, step):
        frac = 1.0 if method == "authors_sq_ce" else xb.shape[0] / n
        with _Capture(layers) as cap:
            out = model(xb)
        _check_outputs(out)
        missing = [name for name in names if name not in cap.outputs]
        if missing:
            raise ValueError(f"layers {missing} were not called in the forward pass")
        seed_sets = [(cols.to(out.dtype), sign) for cols, sign in _seeds(method, out, yb, loss_fn, kind, gen,
                                                                          mc_samples)]
        n_cols = sum(cols.shape[0] for cols, _ in seed_sets)
        squares = {name: _Squares(m, cap.inputs[name], cap.outputs[name], n_cols) for name, m in layers}
        targets = [cap.outputs[name] for name in names]
        done = 0
        for cols, sign in seed_sets:
            for col in cols:
                done += 1
                grads = torch.autograd.grad(out, targets, grad_outputs=col, retain_graph=done < n_cols,
                                            allow_unused=True)
                for name, g in zip(names, grads):
                    if g is not None:
                        squares[name].add(g, sign)
        for name in names:
            acc[name].add_(squares[name].total(), alpha=frac)
        del squares, cap, out
    return acc


def _unit_vectors(count, start, stop, dtype, device):
    """Rows ``e_start, …, e_{stop-1}`` of the ``count × count`` identity, as a ``(stop-start, count)`` tensor."""
    k = stop - start
    e = torch.zeros((k, count), dtype=dtype, device=device)
    e[torch.arange(k, device=device), torch.arange(start, stop, device=device)] = 1
    return e


def _exact_hvp(model, layers, x, y, loss_fn, step):
    """``"exact"`` on any net: Hessian–vector products, one per output unit of a dense layer (its Hessian with
    respect to the layer output, contracted with the squared inputs) and one per weight elsewhere."""
    n = x.shape[0]
    acc = {name: torch.zeros_like(m.weight).detach() for name, m in layers}
    for xb, yb in _chunks(x, y, step):
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
            if g is None or g.grad_fn is None:
                continue
            a = cap.outputs[name]
            b, units = a.shape
            d = torch.empty_like(a.detach())
            k_step = max(1, min(units, _CHUNK_ELEMS // max(1, a.numel())))
            for s in range(0, units, k_step):
                t = min(units, s + k_step)
                e = _unit_vectors(units, s, t, a.dtype, a.device)  # (k, units)
                tangents = e.unsqueeze(1).expand(t - s, b, units).contiguous()
                hv = torch.autograd.grad(g, a, grad_outputs=tangents, is_grads_batched=True, retain_graph=True,
                                         allow_unused=True)[0]
                d[:, s:t] = 0 if hv is None else hv[torch.arange(t - s), :, torch.arange(s, t)].transpose(0, 1)
            acc[name] += frac * (d.transpose(0, 1) @ cap.inputs[name].square())
        for (name, m), g in zip(other, first[len(trick):]):
            if g is None or g.grad_fn is None:
                continue
            w = m.weight
            count = w.numel()
            flat = torch.empty(count, dtype=w.dtype, device=w.device)
            k_step = max(1, min(count, _CHUNK_ELEMS // max(1, count)))
            for s in range(0, count, k_step):
                t = min(count, s + k_step)
                e = _unit_vectors(count, s, t, w.dtype, w.device).reshape(t - s, *w.shape)
                hv = torch.autograd.grad(g, w, grad_outputs=e, is_grads_batched=True, retain_graph=True,
                                         allow_unused=True)[0]
                flat[s:t] = 0 if hv is None else hv.reshape(t - s, count)[torch.arange(t - s), torch.arange(s, t)]
            acc[name] += frac * flat.reshape(w.shape)
    return acc


def _hutchinson(model, layers, x, y, loss_fn, n_probes, seed, step):
    n = x.shape[0]
    weights = [m.weight for _, m in layers]
    acc = [torch.zeros_like(w).detach() for w in weights]
    total = sum(w.numel() for w in weights)
    p_step = max(1, min(n_probes, _CHUNK_ELEMS // max(1, total)))
    for xb, yb in _chunks(x, y, step):
        frac = xb.shape[0] / n
        out = model(xb)
        _check_outputs(out)
        loss = loss_fn(out, yb)
        grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        live = [i for i, g in enumerate(grads) if g is not None and g.grad_fn is not None]
        gen = torch.Generator(device="cpu").manual_seed(seed)  # the same probes for every chunk
        for s in range(0, n_probes, p_step):
            k = min(p_step, n_probes - s)
            probes = [(torch.randint(0, 2, (k, *w.shape), generator=gen, dtype=torch.int8) * 2 - 1)
                      .to(device=w.device, dtype=w.dtype) for w in weights]
            if not live:
                continue
            hv = torch.autograd.grad([grads[i] for i in live], weights, grad_outputs=[probes[i] for i in live],
                                     is_grads_batched=True, retain_graph=True, allow_unused=True)
            for a, v, h in zip(acc, probes, hv):
                if h is not None:
                    a += frac * (v * h).sum(0) / n_probes
    return {name: a for (name, _), a in zip(layers, acc)}


def _options(n_probes, mc_samples, seed, batch_size):
    n_probes = checks.integer(n_probes, "n_probes", low=1)
    mc_samples = checks.integer(mc_samples, "mc_samples", low=1)
    seed = checks.seed(seed)
    if batch_size is not None:
        batch_size = checks.integer(batch_size, "batch_size", low=1)
    return n_probes, mc_samples, seed, batch_size


def _check_exact_path(exact_path):
    if exact_path not in ("auto", "factor", "hvp") or not isinstance(exact_path, str):
        raise ValueError(f"exact_path must be 'auto', 'factor' or 'hvp', got {exact_path!r}")
    return exact_path


def _check_method(method, name="method"):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"{name} must be one of {METHODS}, got {method!r}")
    return method


def hessian_diag(model: nn.Module, loss_fn, data, method: str = DEFAULT_METHOD, *, n_probes: int = 100,
                 mc_samples: int = 1, seed: int = 0, batch_size: int | None = None,
                 exact_path: str = "auto") -> dict[str, torch.Tensor]:
    """Estimate the diagonal curvature of the mean training loss for every Linear/Conv weight of ``model``.

    Parameters
    ----------
    model : the network (any ``nn.Module`` mapping ``x`` to outputs ``(N, C)``); put in eval mode meanwhile.
    loss_fn : mean-reduced loss ``loss_fn(outputs, targets)`` (e.g. ``nn.CrossEntropyLoss()``); see the module
        docstring for the conventions it must follow (checked).
    data : ``(x, y)`` tensors or a :class:`poprisk.data.Split` (its training part is used).
    method : one of :data:`METHODS`; default :data:`DEFAULT_METHOD` (``"ggn"``). See the module docstring.
    n_probes : Rademacher probes of ``"hutchinson"``.
    mc_samples : sampled labels per example of ``"mc_fisher"``.
    seed : seed of the random draws (``"mc_fisher"``, ``"hutchinson"``); the result is a function of it.
    batch_size : at most this many examples per chunk (bounds memory; ``None``: as many as about 512 MB of
        activations allow).
    exact_path : how ``"exact"`` is computed: ``"auto"`` (output-Hessian factors when the net is piecewise
        linear in each weight, Hessian–vector products otherwise), ``"factor"`` (factors; ``ValueError`` if the
        net is not piecewise linear) or ``"hvp"`` (always Hessian–vector products: slow, but independent of the
        GGN computation — the reference that checks chapter 8's theorem). Other methods ignore it.

    Returns ``{module_name: tensor shaped like that module's weight}`` on the weight's device and dtype.
    ``"ggn"`` (for a loss convex in the outputs), ``"mc_fisher"``, ``"empirical_fisher"`` and
    ``"authors_sq_ce"`` are non-negative; ``"exact"`` and ``"hutchinson"`` can be negative: use
    :func:`positive` before handing an estimate to a quantizer that needs strictly positive importances.
    Raises ``TypeError``/``ValueError`` naming the argument for bad input (before any expensive work), and
    ``ValueError`` when the model's outputs or the estimate are not finite.
    """
    method = _check_method(method)
    kind = _loss_kind(loss_fn, method)
    n_probes, mc_samples, seed, batch_size = _options(n_probes, mc_samples, seed, batch_size)
    exact_path = _check_exact_path(exact_path)
    layers = compressible_layers(model)
    param = _check_model(model, layers)
    x, y = _as_data(data, param.device)
    with _prepared(model, layers), torch.enable_grad():
        kind, per_example, linear = _probe(model, layers, x, y, loss_fn, kind, method, exact_path)
        step = _chunk_size(x.shape[0], batch_size, per_example)
        if method == "hutchinson":
            h = _hutchinson(model, layers, x, y, loss_fn, n_probes, seed, step)
        elif method == "exact" and not linear:
            h = _exact_hvp(model, layers, x, y, loss_fn, step)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            h = _diag_from_seeds(model, layers, x, y, loss_fn, kind, method, gen, mc_samples, step)
    h = {name: t.detach() for name, t in h.items()}
    bad = [name for name, t in h.items() if not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"the {method!r} estimate is not finite in layers {bad} (overflow: the outputs or the "
                         "curvature are too large for the model's dtype)")
    if method == "authors_sq_ce":
        h = normalize(h)
    return h

