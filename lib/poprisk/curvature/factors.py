"""The output-space machinery of the exact and GGN paths (chapter 8): piecewise linearity of the graph (when
the GGN is the exact Hessian), the softmax Hessian factor and the seeds each estimator back-propagates."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from poprisk.curvature.plumbing import _quiet_func


# ------------------------------------------------------------------------- piecewise linearity of the graph
# Autograd nodes through which the outputs stay (piecewise) linear in every input jointly ...
_LINEAR_NODES = frozenset("""
    AddBackward0 AddBackward1 SubBackward0 SubBackward1 RsubBackward1 NegBackward0 CloneBackward0 ToCopyBackward0
    ViewBackward0 UnsafeViewBackward0 ReshapeAliasBackward0 AsStridedBackward0 TBackward0 PermuteBackward0
    TransposeBackward0 TransposeBackward1 ExpandBackward0 SqueezeBackward0 SqueezeBackward1 SqueezeBackward2
    SqueezeBackward3 SqueezeBackward4 UnsqueezeBackward0 CatBackward0 StackBackward0 SliceBackward0
    SelectBackward0 SplitBackward0 SplitWithSizesBackward0 UnbindBackward0 IndexBackward0 IndexSelectBackward0
    GatherBackward0 SumBackward0 SumBackward1 MeanBackward0 MeanBackward1 AvgPool2DBackward0 AvgPool3DBackward0
    AdaptiveAvgPool2DBackward0 AdaptiveAvgPool3DBackward0 ConstantPadNdBackward0 ReflectionPad1DBackward0
    ReflectionPad2DBackward0 ReplicationPad1DBackward0 ReplicationPad2DBackward0 FlipBackward0 RollBackward0
    ReluBackward0 ThresholdBackward0 LeakyReluBackward0 HardtanhBackward0 ClampBackward1 ClampMinBackward0
    ClampMaxBackward0 AbsBackward0 MaxPool2DWithIndicesBackward0 MaxPool3DWithIndicesBackward0
    AdaptiveMaxPool2DBackward0 AdaptiveMaxPool3DBackward0 MaximumBackward0 MinimumBackward0 MaxBackward0
    MaxBackward1 MinBackward0 MinBackward1 AmaxBackward0 AminBackward0 BackwardHookFunctionBackward
""".split())
# ... and nodes linear in each input separately: fine when no compressible weight reaches two of their inputs
_MULTILINEAR_NODES = frozenset("""
    MulBackward0 MmBackward0 AddmmBackward0 BmmBackward0 BaddbmmBackward0 MvBackward0 DotBackward0
    ConvolutionBackward0 PreluKernelBackward0 NativeBatchNormBackward0 CudnnBatchNormBackward0
    MiopenBatchNormBackward0 EmbeddingBackward0
""".split())


def _piecewise_linear(out, layers) -> bool:
    """Whether every autograd node between the compressible weights and ``out`` is piecewise linear in each
    weight (so that the diagonal of the residual term of the Hessian is zero almost everywhere)."""
    weights = {id(m.weight) for _, m in layers}
    reach: dict = {}
    order, stack = [], [(out.grad_fn, False)]
    while stack:  # iterative post-order over the graph
        fn, done = stack.pop()
        if fn is None or (fn in reach and not done):
            continue
        if done:
            order.append(fn)
            continue
        reach[fn] = None
        stack.append((fn, True))
        stack.extend((child, False) for child, _ in fn.next_functions if child is not None and child not in reach)
    for fn in order:
        if type(fn).__name__ == "AccumulateGrad":
            reach[fn] = frozenset({id(fn.variable)}) & weights
            continue
        parts = [reach[c] if c is not None else frozenset() for c, _ in fn.next_functions]
        reach[fn] = frozenset().union(*parts)
        if not reach[fn]:
            continue  # nothing here depends on a compressible weight
        name = type(fn).__name__
        if name in _LINEAR_NODES:
            continue
        if name == "DivBackward0" and len(parts) == 2 and not parts[1]:
            continue  # x / c with c free of the weights
        if name in _MULTILINEAR_NODES:
            if "BatchNorm" in name and getattr(fn, "_saved_training", True):
                return False  # batch statistics: not linear in the input
            seen: set = set()
            for part in parts:
                if seen & part:
                    return False
                seen |= part
            continue
        return False
    return True

# --------------------------------------------------------------------------------- output-space factors
def _per_example_loss_terms(z, y, loss_fn, kind):
    """Per-example losses ``ℓ_i``, gradients ``∇_z ℓ_i`` and Hessians ``∇²_z ℓ_i`` (shapes (B,), (B,C), (B,C,C));
    for plain cross-entropy the Hessian is left to the closed form and the probabilities are returned instead."""
    z = z.detach()
    if kind == "ce":
        logp = torch.log_softmax(z, dim=1)
        p = logp.exp()
        loss = -logp.gather(1, y.reshape(-1, 1)).squeeze(1)
        grad_ = p - F.one_hot(y, z.shape[1]).to(z.dtype)
        return loss, grad_, None, p
    from torch.func import grad, hessian, vmap

    def single(zi, yi):
        return loss_fn(zi.unsqueeze(0), yi.unsqueeze(0)).reshape(())

    with _quiet_func():
        loss = vmap(single)(z, y)
        grad_ = vmap(grad(single))(z, y)
        hess = vmap(hessian(single))(z, y)
    return loss, grad_, hess, None


def softmax_hessian_factor(p: torch.Tensor) -> torch.Tensor:
    """Closed-form Cholesky factor of the softmax cross-entropy output Hessian ``Λ = diag(p) − ppᵀ``.

    ``p`` holds probability vectors in its rows, ``(B, C)`` with ``C ≥ 2``. Returns ``L`` shaped ``(B, C, C−1)``
    with ``L Lᵀ = Λ`` (``Λ`` has rank ``C − 1``, so ``C − 1`` columns suffice): with the tail masses
    ``q_j = Σ_{k>j} p_k``, ``L_jj = √(p_j q_j / q_{j−1})`` and ``L_ij = −p_i √(p_j / (q_{j−1} q_j))`` for
    ``i > j``. Tails are summed from the end, so there is no cancellation; a column whose tail mass underflows
    to zero is zero.
    """
    if not isinstance(p, torch.Tensor):
        raise TypeError(f"p must be a torch tensor, got {type(p).__name__}")
    if p.dim() != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"p must be shaped (B, C) with B >= 1 and C >= 2, got {tuple(p.shape)}")
    if not p.is_floating_point():
        raise TypeError(f"p must be a floating-point tensor, got {p.dtype}")
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError("p must hold finite, non-negative probabilities")
    tol = 100 * p.shape[1] * torch.finfo(p.dtype).eps
    if ((p.sum(1) - 1).abs() > tol).any():
        raise ValueError(f"the rows of p must sum to 1 (within {tol:.1e})")
    c = p.shape[1]
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


def output_space_traces(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per example, the output-space quantities of chapter 8's empirical-Fisher proposition for softmax
    cross-entropy with logits ``z_i`` and labels ``y_i``, in float64: ``eps`` ``= 1 − p_{i,y_i}`` (from
    ``log_softmax``, without cancellation), ``empirical_fisher`` ``= tr (p_i − e_{y_i})(p_i − e_{y_i})ᵀ =
    ‖p_i − e_{y_i}‖²`` and ``ggn`` ``= tr Λ_i = 1 − ‖p_i‖²``."""
    if not (isinstance(logits, torch.Tensor) and logits.ndim == 2):
        raise ValueError("logits must be a 2-D tensor (examples, classes)")
    if not (isinstance(y, torch.Tensor) and y.shape == logits.shape[:1]):
        raise ValueError(f"y must be a tensor of {logits.shape[0]} labels")
    z = logits.detach().double()
    p = torch.softmax(z, 1)
    onehot = torch.nn.functional.one_hot(y, z.shape[1]).double()
    eps = -torch.expm1(torch.log_softmax(z, 1)[torch.arange(len(z)), y])
    return dict(eps=eps, empirical_fisher=((p - onehot) ** 2).sum(1), ggn=1 - (p**2).sum(1))


def _hessian_columns(hess, p):
    """``[(columns, sign)]`` with ``Σ sign · Σ_k s_k s_kᵀ = Λ_i`` for every example; columns ``(K, B, C)``.
    The negative part (a loss that is not convex in the outputs) is its own entry, absent when empty."""
    if p is not None:  # softmax cross-entropy: closed-form rank-(C−1) factor
        return [(softmax_hessian_factor(p).permute(2, 0, 1), 1.0)]
    evals, evecs = torch.linalg.eigh(0.5 * (hess + hess.transpose(1, 2)))
    out = []
    for sign, part in ((1.0, evals.clamp_min(0)), (-1.0, (-evals).clamp_min(0))):
        keep = (part > 0).any(0)  # eigen-directions that carry mass in some example
        if keep.any():
            out.append(((evecs * part.sqrt().unsqueeze(1))[:, :, keep].permute(2, 0, 1), sign))
    return out


def _seeds(method, out, y, loss_fn, kind, gen, mc_samples):
    """``[(columns, sign)]``: output-space vectors whose back-propagated squares, signed, sum to the chunk's
    contribution (mean over the chunk); columns are ``(K, B, C)``."""
    b = out.shape[0]
    loss, grad_, hess, p = _per_example_loss_terms(out, y, loss_fn, kind)
    if not (torch.isfinite(loss).all() and torch.isfinite(grad_).all() and (hess is None or torch.isfinite(hess).all())):
        raise ValueError("loss_fn has non-finite values, gradients or curvature at the model's outputs")
    if method == "empirical_fisher":
        return [(grad_.unsqueeze(0) / math.sqrt(b), 1.0)]
    if method in ("ggn", "exact"):
        return [(cols / math.sqrt(b), sign) for cols, sign in _hessian_columns(hess, p)]
    if method == "mc_fisher":
        draws = torch.multinomial(p.detach().cpu().double(), mc_samples, replacement=True, generator=gen)
        draws = draws.to(p.device).transpose(0, 1)  # (m, B)
        return [((p.unsqueeze(0) - F.one_hot(draws, p.shape[1]).to(p.dtype)) / math.sqrt(b * mc_samples), 1.0)]
    if method == "authors_sq_ce":
        # ∇²_z(ℓ²) = 2(∇ℓ∇ℓᵀ + ℓΛ): factor columns √2∇ℓ and √(2ℓ) s_c; the sum over examples (not the mean)
        # matches the authors' accumulation, and the per-layer normalisation removes the constants anyway.
        (cols, _), = _hessian_columns(hess, p)  # cross-entropy: Λ is positive semi-definite
        cols = cols * loss.clamp_min(0).sqrt().unsqueeze(0).unsqueeze(-1)
        return [(math.sqrt(2.0) * torch.cat([grad_.unsqueeze(0), cols], dim=0), 1.0)]
    raise AssertionError(method)

