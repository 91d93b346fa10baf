"""Training a network in a random low-dimensional subspace, then quantizing and coding its coordinates
(chapter 10).

Intrinsic-dimension training (Li et al. 2018): the ``d`` weights of a network are ``w = w₀ + A u``, where
``w₀`` is its random initialisation and ``A ∈ ℝ^{d×m}`` a fixed random projection, both drawn from seeds
chosen before the data are seen; only the ``m ≪ d`` coordinates ``u`` are trained. Lotfi et al. (2022) then
quantize ``u`` to ``K`` shared values and entropy-code it: the network is described by ``m``, ``K``, the
codebook and the labels — a few hundred to a few thousand bits instead of ``32 d`` — which is what the Occam
bound of :mod:`poprisk.bounds` charges.

* :func:`sparse_projection` — the very sparse random projection of Li et al.: each column has
  ``t = ⌈√d⌉`` entries ``±1`` at uniformly drawn rows (a repeated row adds up), scaled to unit norm, so
  ``‖A u‖ ≈ ‖u‖`` and a product costs ``O(m √d)``.
* :class:`Subspace` — a network architecture, its ``w₀`` and ``A``: ``weights(u)``, ``forward(u, x)`` (a
  functional call, so gradients reach ``u`` only), ``error(u, x, y)`` (the 0–1 error) and ``materialize(u)``
  (an ordinary module, for :func:`poprisk.train.evaluate`).
* :func:`fit_subspace` — Adam on the training cross-entropy over ``u``, seeded mini-batches.
* :func:`certificate_search` — chapter 10's grid of dimensions and codes, with the Occam bound of each row.
* :func:`quantize_coordinates` — the exact 1-D K-means of ``u`` (:func:`poprisk.quantize.weighted_kmeans_1d`),
  then quantization-aware training of the centres and of ``u`` (straight-through estimator: the labels may
  move), the centres rounded to float16 — the values the code stores — and the description length of the
  result (:func:`description_bits`; :func:`raw_bits` for unquantized coordinates; the codes themselves are
  :func:`encode_description` / :func:`decode_description`).
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from poprisk import bounds, checks, quantize

__all__ = [
    "QuantizedCoordinates",
    "Subspace",
    "certificate_search",
    "decode_description",
    "description_bits",
    "encode_description",
    "fit_subspace",
    "quantize_coordinates",
    "raw_bits",
    "sparse_projection",
]

#: Bits per stored codebook value: the centres are rounded to IEEE half precision.
VALUE_BITS = 16


def _positive_int(value, name: str) -> int:
    return checks.integer(value, name, low=1)


#: the largest finite float16: a coordinate beyond it has no float16 codebook value
FLOAT16_MAX = 65504.0


def sparse_projection(d: int, m: int, seed: int) -> torch.Tensor:
    """A ``(d, m)`` float32 sparse CSR matrix: column ``j`` has ``⌈√d⌉`` entries ``±1`` at rows drawn
    uniformly (with replacement; repeats add up) from a generator seeded with ``seed``, divided by the
    column's norm. A pure function of ``(d, m, seed)``."""
    d, m, seed = _positive_int(d, "d"), _positive_int(m, "m"), checks.seed(seed)
    rng = np.random.default_rng(int(seed))
    t = math.isqrt(d - 1) + 1 if d > 1 else 1
    rows = rng.integers(0, d, size=m * t)
    cols = np.repeat(np.arange(m), t)
    signs = rng.choice(np.array([-1.0, 1.0]), size=m * t)
    with warnings.catch_warnings():  # torch's notes that sparse checks are off and CSR is "beta"
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(torch.as_tensor(np.stack([rows, cols])), torch.as_tensor(signs),
                                      (d, m), dtype=torch.float64).coalesce()
        idx, val = coo.indices(), coo.values()
        norms = torch.zeros(m, dtype=torch.float64).index_add_(0, idx[1], val * val).sqrt()
        # a column whose repeats all cancelled keeps norm 0; it contributes nothing (probability ~0)
        val = val / torch.where(norms > 0, norms, torch.ones_like(norms))[idx[1]]
        keep = val != 0
        out = torch.sparse_coo_tensor(idx[:, keep], val[keep].float(), (d, m)).coalesce()
        return out.to_sparse_csr()


@dataclass
class Subspace:
    """The network ``template`` restricted to ``w₀ + A u``: ``w₀`` its parameters at construction (all of
    them, biases included, in ``named_parameters`` order), ``A = sparse_projection(d, m, seed)``."""

    template: nn.Module
    w0: torch.Tensor
    projection: torch.Tensor
    seed: int

    @classmethod
    def build(cls, model: nn.Module, m: int, seed: int = 0) -> Subspace:
        """The subspace of dimension ``m`` around ``model``'s current parameters (seed torch before building
        ``model`` to fix ``w₀``). The model is copied, put in eval mode and never trained."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        m, seed = _positive_int(m, "m"), checks.seed(seed)
        if not any(True for _ in model.parameters()):
            raise ValueError("model has no parameters: there is no subspace to train")
        template = copy.deepcopy(model).cpu().eval()
        w0 = torch.cat([p.detach().float().reshape(-1) for p in template.parameters()])
        return cls(template, w0, sparse_projection(w0.numel(), m, seed), int(seed))

    @property
    def dim(self) -> int:
        """The number ``m`` of trained coordinates."""
        return int(self.projection.shape[1])

    def _check(self, u: torch.Tensor) -> torch.Tensor:
        if not isinstance(u, torch.Tensor) or u.shape != (self.dim,):
            raise ValueError(f"u must be a tensor of shape ({self.dim},), got "
                             f"{getattr(u, 'shape', type(u).__name__)}")
        if not (u.is_floating_point() or u.dtype in (torch.int8, torch.int16, torch.int32, torch.int64)):
            raise TypeError(f"u must hold real numbers, got dtype {u.dtype}")
        if not torch.isfinite(u.float()).all():
            raise ValueError("u must be finite (it holds nan or inf, or values beyond float32)")
        return u.float()

    def check_data(self, x, y=None) -> None:
        """Refuse, naming the argument, ``x`` that is not a finite real tensor the network accepts, and
        labels ``y`` that are not integer class indices of the network's outputs (one per row of ``x``)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if y is not None and not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if x.ndim == 0 or x.shape[0] == 0 or (y is not None and (y.ndim != 1 or y.shape[0] != x.shape[0])):
            raise ValueError(f"x and y must be tensors with the same, non-zero number of rows (y 1-D), got "
                             f"x {tuple(x.shape)} and y {None if y is None else tuple(y.shape)}")
        if not x.is_floating_point() or not torch.isfinite(x.float()).all():
            raise ValueError(f"x must be a finite floating-point tensor, got dtype {x.dtype}"
                             + ("" if not x.is_floating_point() else " with nan or inf values"))
        try:
            with torch.no_grad():
                classes = self.forward(torch.zeros(self.dim), x[:1].cpu().float()).shape[-1]
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"x of shape {tuple(x.shape)} does not fit the network ({exc})") from None
        if y is None:
            return
        if y.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise ValueError(f"y must be class labels in [0, {classes - 1}] (the network has {classes} "
                             f"outputs), got values in [{int(y.min())}, {int(y.max())}]")

    def weights(self, u: torch.Tensor) -> torch.Tensor:
        """The flat parameter vector ``w₀ + A u`` (differentiable in ``u``)."""
        return self.w0 + (self.projection @ self._check(u)[:, None])[:, 0]

    def _params(self, flat: torch.Tensor) -> dict:
        out, start = {}, 0
        for name, p in self.template.named_parameters():
            out[name] = flat[start:start + p.numel()].view(p.shape)
            start += p.numel()
        return out

    def forward(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of the network with parameters ``w₀ + A u`` on ``x`` (eval mode: no dropout)."""
        return torch.func.functional_call(self.template, self._params(self.weights(u)), (x,))

    @torch.no_grad()
    def error(self, u: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        """The 0–1 error (fraction of misclassified rows) of the network ``w₀ + A u`` on ``(x, y)``."""
        self._check(u)
        self.check_data(x, y)
        return float((self.forward(u, x.cpu().float()).argmax(1) != y.cpu()).double().mean())

    def materialize(self, u: torch.Tensor) -> nn.Module:
        """An ordinary module (eval mode, CPU) holding the parameters ``w₀ + A u``."""
        self._check(u)
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, value in self._params(self.weights(u.detach())).items():
                model.get_parameter(name).copy_(value)
        return model.eval()


def fit_subspace(space: Subspace, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30,
                 batch_size: int = 250, lr: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, list[float]]:
    """Train the coordinates ``u`` (from 0, i.e. from ``w₀``) with Adam on the mean cross-entropy,
    shuffling with a generator seeded by ``seed``. Returns ``u`` and the per-epoch mean training loss."""
    if not isinstance(space, Subspace):
        raise TypeError(f"space must be a Subspace, got {type(space).__name__}")
    epochs, batch_size = _positive_int(epochs, "epochs"), _positive_int(batch_size, "batch_size")
    lr, seed = checks.real(lr, "lr", low=0.0, low_open=True), checks.seed(seed)
    space.check_data(x, y)
    x, y = x.cpu().float(), y.cpu()
    u = torch.zeros(space.dim, requires_grad=True)
    opt = torch.optim.Adam([u], lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    history = []
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(space.forward(u, x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        history.append(total / x.shape[0])
    return u.detach(), history


@dataclass(frozen=True)
class QuantizedCoordinates:
    """``u`` quantized: float16-representable ``centers`` (``K``), ``labels`` (``m``), the two-part code of
    the labels and centres, and the full description length in bits (:func:`description_bits`)."""

    centers: np.ndarray
    labels: np.ndarray
    code: bounds.CodeLength
    bits: int

    @property
    def u(self) -> torch.Tensor:
        """The quantized coordinates ``centers[labels]`` (float32)."""
        return torch.as_tensor(self.centers[self.labels], dtype=torch.float32)


def description_bits(m: int, code: bounds.CodeLength) -> int:
    """Length of the prefix code of a quantized subspace network: one flag bit (quantized, not raw), ``m``
    in Elias gamma, then the two-part code of its coordinates (``K`` in Elias gamma, ``K`` float16 centres,
    counts, labels). The architecture, ``w₀`` and the projection are fixed by seeds chosen before the data,
    so they cost nothing. The flag makes the union with :func:`raw_bits`'s code one prefix code (chapter
    10's search takes the best network of both kinds)."""
    if not isinstance(code, bounds.CodeLength):
        raise TypeError(f"code must be a bounds.CodeLength, got {type(code).__name__}")
    return 1 + bounds.elias_gamma_bits(_positive_int(m, "m")) + code.total


def raw_bits(m: int) -> int:
    """Length of the raw code of ``m`` float32 coordinates: flag bit, ``γ(m)``, ``32·m`` bits."""
    return 1 + bounds.elias_gamma_bits(_positive_int(m, "m")) + 32 * int(m)


def encode_description(u, *, quantized: bool) -> str:
    """The bit string whose length :func:`description_bits` (``quantized=True``: ``u`` must take float16
    values) or :func:`raw_bits` charges: flag, ``γ(m)``, then :func:`poprisk.bounds.encode_two_part` with
    16-bit values or the raw float32 words (chapter 10 encodes and decodes its certificate with it)."""
    v = np.asarray(u, dtype=np.float64).reshape(-1)
    head = bounds.gamma_encode(_positive_int(v.size, "len(u)"))
    if quantized:
        return "1" + head + bounds.encode_two_part(v, value_bits=VALUE_BITS)
    words = v.astype(np.float32).view(np.uint32)
    return "0" + head + "".join(format(int(w), "032b") for w in words)


def decode_description(bits: str) -> np.ndarray:
    """Inverse of :func:`encode_description`: the coordinates ``u`` (float64 holding the stored values);
    ValueError unless ``bits`` is exactly one codeword."""
    if not bits:
        raise ValueError("empty bit string")
    m, pos = bounds.gamma_decode(bits, 1)
    if bits[0] == "1":
        u, end = bounds.decode_two_part(bits, m, value_bits=VALUE_BITS, pos=pos)
    else:
        end = pos + 32 * m
        words = np.array([int(bits[i:i + 32], 2) for i in range(pos, end, 32)], dtype=np.uint32)
        u = words.view(np.float32).astype(np.float64)
    if end != len(bits):
        raise ValueError(f"bit string has {len(bits) - end} bits after the codeword")
    return u


def quantize_coordinates(space: Subspace, u: torch.Tensor, k: int, x: torch.Tensor, y: torch.Tensor, *,
                         epochs: int = 10, lr: float = 0.01, batch_size: int = 250,
                         seed: int = 0) -> QuantizedCoordinates:
    """Quantize ``u`` to ``k`` values and code the result.

    Start from the exact 1-D K-means of ``u``; then ``epochs`` of quantization-aware training on ``(x, y)``
    (``epochs=0``: plain K-means): the network sees ``c[k(u)]``, each coordinate's nearest centre, while
    the gradient updates both the centres ``c`` and — through the straight-through estimator (the
    quantizer's derivative taken as 1) — the continuous ``u``. Finally the centres are rounded to float16
    and every coordinate is sent to its nearest rounded centre.
    """
    if not isinstance(space, Subspace):
        raise TypeError(f"space must be a Subspace, got {type(space).__name__}")
    u = space._check(u).detach()
    if u.abs().max() > FLOAT16_MAX:
        raise ValueError(f"u must lie within ±{FLOAT16_MAX:g} (the float16 codebook), got |u| up to "
                         f"{float(u.abs().max()):g}")
    k = _positive_int(k, "k")
    epochs = checks.integer(epochs, "epochs", low=0)
    lr, seed = checks.real(lr, "lr", low=0.0, low_open=True), checks.seed(seed)
    batch_size = _positive_int(batch_size, "batch_size")
    space.check_data(x, y)
    centers, _ = quantize.weighted_kmeans_1d(u.double().numpy(), None, k)
    if epochs:
        x, y = x.cpu().float(), y.cpu()
        c = torch.as_tensor(centers, dtype=torch.float32).clone().requires_grad_(True)
        v = u.clone().requires_grad_(True)
        opt = torch.optim.Adam([c, v], lr=lr)
        gen = torch.Generator().manual_seed(int(seed))
        for _ in range(int(epochs)):
            order = torch.randperm(x.shape[0], generator=gen)
            for start in range(0, x.shape[0], batch_size):
                idx = order[start:start + batch_size]
                with torch.no_grad():
                    lab = (v[:, None] - c[None, :]).abs().argmin(1)
                # value c[lab]; gradient to c through the index and to v straight through
                q = c[lab] + (v - v.detach())
                loss = nn.functional.cross_entropy(space.forward(q, x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        centers, u = c.detach().double().numpy(), v.detach()
    values = np.unique(centers.astype(np.float16)).astype(np.float64)
    labels = quantize.assign(u.double().numpy(), values)
    used, labels = np.unique(labels, return_inverse=True)
    values, labels = values[used], labels.reshape(-1).astype(np.int64)
    code = bounds.two_part_code(values[labels].astype(np.float16), value_bits=VALUE_BITS)
    return QuantizedCoordinates(values, labels, code, description_bits(space.dim, code))


def certificate_search(make_model, x, y, x_test, y_test, *, dims, levels, fit: dict, qat_epochs: int,
                       projection_seed: int = 0, delta: float = 0.05) -> tuple[list[dict], dict]:
    """Chapter 10's search for the shortest Occam certificate: for each subspace dimension ``m`` in
    ``dims``, train ``u`` (:func:`fit_subspace` with ``fit``), then code it raw (:func:`raw_bits`) and
    quantized to each ``K`` in ``levels`` with 0 and ``qat_epochs`` epochs of QAT (:func:`description_bits`).

    ``make_model()`` must build the architecture with its seeded initialisation ``w₀`` (the prior is fixed
    before the data); ``projection_seed`` fixes ``A``. Every network is evaluated exactly as decoded (float16
    centres). The flag bit makes raw and quantized codes one prefix code, so the Occam bound (``delta``)
    holds for all rows at once and the smallest may be kept. Returns the rows (``d_sub, K, qat_epochs, bits,
    train_err, test_err, occam``) and ``{row index: (space, values u)}`` for decoding checks."""
    rows, coded = [], {}
    for m in dims:
        space = Subspace.build(make_model(), m, seed=projection_seed)
        u, _ = fit_subspace(space, x, y, **fit)
        candidates = [("float32", 0, u, raw_bits(m))]
        for k in levels:
            for epochs in (0, qat_epochs):
                qc = quantize_coordinates(space, u, k, x, y, epochs=epochs)
                candidates.append((str(qc.code.k), epochs, qc.u, qc.bits))
        for k, epochs, values, bits in candidates:
            coded[len(rows)] = (space, values)
            train_err = space.error(values, x, y)
            rows.append(dict(d_sub=m, K=k, qat_epochs=epochs, bits=bits, train_err=train_err,
                             test_err=space.error(values, x_test, y_test),
                             occam=bounds.occam_bound(train_err, bits, x.shape[0], delta)))
    return rows, coded
