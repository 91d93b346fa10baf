"""Squared per-example gradient contractions (chapter 8): Linear layers directly, Conv layers by unfolded
patches — per-example products or position pairs, whichever moves less memory."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from poprisk.curvature.plumbing import _CHUNK_ELEMS, _quiet_func

_BLOCK_ELEMS = 1 << 18  # elements of a per-example gradient block (~1 MB: stays in cache while squared)
_PAIRS_MEMORY = 16  # "pairs" when P² ≤ K (P + this): a per-example gradient entry costs ~16 multiply-adds of traffic


# ------------------------------------------------------------------- squared per-example gradient contraction
def _patchable(module, inp) -> bool:
    """Whether the layer's per-example gradient is ``Σ_p g_p u_pᵀ`` with ``u`` from :func:`_patches`."""
    if isinstance(module, nn.Linear):
        return True
    return (isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding_mode == "zeros"
            and not isinstance(module.padding, str) and inp.dim() == module.weight.dim())


def _patches(module, inp):
    """The layer inputs as ``(B, G, J, P)``: ``P`` positions where the weight applies (one per row of a dense
    layer's input, the output pixels of a convolution), ``J`` the weight's input dimension, ``G`` groups."""
    b = inp.shape[0]
    if isinstance(module, nn.Linear):
        return inp.reshape(b, -1, inp.shape[-1]).transpose(1, 2).unsqueeze(1)
    if isinstance(module, nn.Conv1d):
        inp = inp.unsqueeze(2)
        geometry = [(1, module.kernel_size[0]), (1, module.dilation[0]), (0, module.padding[0]), (1, module.stride[0])]
    else:
        geometry = [module.kernel_size, module.dilation, module.padding, module.stride]
    u = F.unfold(inp, *geometry)  # (B, Cin·k, P), channel-major like the weight's trailing dimensions
    return u.reshape(b, module.groups, u.shape[1] // module.groups, u.shape[2])


def _grad_view(module, g):
    """The gradient at the layer output as ``(B, G, O, P)``, matching :func:`_patches`."""
    b = g.shape[0]
    if isinstance(module, nn.Linear):
        return g.reshape(b, -1, g.shape[-1]).transpose(1, 2).unsqueeze(1)
    return g.reshape(b, module.groups, module.out_channels // module.groups, -1)


def _per_example_sq(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``Σ_i (∂⟨module(x_i), g_i⟩/∂W)²`` for any layer (``Conv3d``, other padding modes): per-example weight
    gradients by ``torch.func``, in chunks of bounded memory. The general path where :func:`_patches` does not
    apply."""
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


class _Squares:
    """``Σ_k σ_k Σ_i (∂⟨f(x_i), s_ki⟩/∂W)²`` for one layer, accumulated over the output columns ``s_k``.

    :meth:`add` takes one column's gradient at the layer output; :meth:`total` finishes. The strategy is chosen
    per layer (module docstring): *pairs* when the layer has few positions (dense layers always), *examples*
    otherwise, and :func:`_per_example_sq` for layers without a patch view.
    """

    def __init__(self, module, inp, out, n_columns):
        self.module, self.inp = module, inp
        self.sum = torch.zeros(module.weight.shape, dtype=inp.dtype, device=inp.device)
        self.pairs = self.u = None
        if _patchable(module, inp):
            self.u = _patches(module, inp)  # once per chunk, shared by all columns
            b, groups, o, p = _grad_view(module, out.detach()).shape
            if p == 1 or (p * p <= n_columns * (p + _PAIRS_MEMORY) and b * groups * o * p * p <= 4 * _CHUNK_ELEMS):
                self.pairs = torch.zeros((b, groups, o, p, p), dtype=inp.dtype, device=inp.device)

    def add(self, g, sign):
        if self.u is None:
            self.sum.add_(_per_example_sq(self.module, self.inp, g), alpha=sign)
            return
        g = _grad_view(self.module, g)
        b, groups, o, p = g.shape
        if self.pairs is not None:  # Σ_k σ_k g_kp g_kq, per example, group and output unit
            if p == 1:
                self.pairs.view(g.shape).addcmul_(g, g, value=sign)
            else:
                flat = g.reshape(b * groups * o, p, 1)
                self.pairs.view(-1, p, p).baddbmm_(flat, flat.transpose(1, 2), alpha=sign)
            return
        view = self.sum.view(groups, o, -1)
        j = view.shape[2]
        width = max(1, _BLOCK_ELEMS // (groups * o))
        for i in range(b):  # per example and block of columns, so that each product stays in cache
            for s in range(0, j, width):
                block = torch.matmul(g[i], self.u[i, :, s:s + width].transpose(1, 2))  # (G, O, width)
                view[:, :, s:s + width].addcmul_(block, block, value=sign)

    def total(self):
        if self.pairs is not None:  # Σ_i Σ_pq pairs[i, g, o, p, q] u[i, g, j, p] u[i, g, j, q]
            b, groups, o, p, _ = self.pairs.shape
            view = self.sum.view(groups, o, -1)
            j = view.shape[2]
            step = max(1, _CHUNK_ELEMS // max(1, groups * j * p * p))
            for s in range(0, b, step):
                u = self.u[s:s + step]
                uu = (u.unsqueeze(-1) * u.unsqueeze(-2)).flatten(3)  # (b, G, J, P²)
                view.add_(torch.einsum("bgoz,bgjz->goj", self.pairs[s:s + step].flatten(3), uu))
        return self.sum

