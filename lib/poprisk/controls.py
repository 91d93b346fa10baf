"""The noise control of chapters 9 and 9b, matched two ways.

A compressor ``Ŵ`` of ``W`` is compared with a Gaussian perturbation ``W + s·z`` (``z ~ N(0, I)`` per layer)
of the same *size*. Which size is the question:

* **matched on the Hessian-weighted distortion** (:mod:`poprisk.experiments`, ``method="noise"``): per layer
  ``Σ_j h_j (s z_j)² = Σ_j h_j (ŵ_j − w_j)²``, the quadratic model of the training-loss increase that the
  Hessian-weighted quantizers minimise. It asks: does *any* perturbation that the quadratic model calls
  equally harmful change the test loss as much? The quadratic model can be far off for a perturbation as
  large as 2-bit quantization, so equal distortion need not mean equal damage.
* **matched on the measured training-loss rise** (:func:`loss_matched_noise`): the distortion-matched noise
  ``d = Ŵ_noise − W`` scaled by one factor ``c`` per network, ``W + c·d``, with ``c`` found by bisection so
  that ``L_S(W + c·d) − L_S(W) = L_S(Ŵ) − L_S(W)`` (``L_S`` the mean cross-entropy on the seed's own training
  sample). It asks: at equal real damage on the sample, is the compressor's perturbation more or less
  benign on the test set than a random one?
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from poprisk import calibration, checks, config, train

__all__ = ["scaled_perturbation", "match_training_loss", "loss_matched_noise", "noise_table", "NOISE_LABELS"]

#: The ``experiment`` values of :func:`loss_matched_noise`'s rows and how a page names them.
NOISE_LABELS = {"noise_hw": "noise, equal HW distortion", "noise_loss": "noise, equal training-CE rise"}


def scaled_perturbation(model: torch.nn.Module, perturbed: torch.nn.Module, c: float) -> torch.nn.Module:
    """A copy of ``model`` whose weights (not biases) are ``w + c·(w' − w)``, ``w'`` those of
    ``perturbed`` (a copy of ``model`` with changed weights)."""
    c = checks.real(c, "c", low=0.0)
    out = copy.deepcopy(model)
    new, other = dict(out.named_parameters()), dict(perturbed.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in other or other[name].shape != p.shape:
                raise ValueError(f"perturbed has no parameter {name!r} shaped like model's: not a copy")
            if name.endswith("weight"):
                new[name].copy_(p + c * (other[name] - p))
    return out


def _train_ce(model, x, y) -> float:
    return float(calibration.per_example_ce(train.predict(model, x), y.detach().cpu(), 1.0).mean())


def match_training_loss(model, perturbed, x, y, target: float, *, rtol: float = 1e-3,
                        max_doublings: int = 20, max_steps: int = 60) -> tuple[float, float]:
    """The factor ``c`` with ``L(w + c·(w' − w)) − L(w) = target`` on ``(x, y)`` (``L`` the mean
    cross-entropy), by doubling an upper end from 1 and then bisecting until the rise is within
    ``rtol·target``. Returns ``(c, rise)``. ``target`` must be positive; a rise that stays below it after
    ``max_doublings`` doublings raises ``ValueError``."""
    target = checks.real(target, "target", low=0.0, low_open=True)
    base = _train_ce(model, x, y)

    def rise(c):
        return _train_ce(scaled_perturbation(model, perturbed, c), x, y) - base

    lo, hi = 0.0, 1.0
    r_hi = rise(hi)
    for _ in range(max_doublings):
        if r_hi >= target:
            break
        lo, hi = hi, 2 * hi
        r_hi = rise(hi)
    else:
        raise ValueError(f"the perturbation never raises the training loss by {target:g} nats")
    c, r = hi, r_hi
    for _ in range(max_steps):
        if abs(r - target) <= rtol * target:
            break
        c = 0.5 * (lo + hi)
        r = rise(c)
        lo, hi = (c, hi) if r < target else (lo, c)
    return c, r


def loss_matched_noise(cfg, trained, *, bits: int = 2, reference: str = "kmeans"):
    """For each network of ``trained`` (:func:`poprisk.experiments.train_models` of ``cfg``): the uncompressed
    network, the ``reference`` quantizer at ``bits``, the noise matched on its Hessian-weighted distortion
    and the noise matched on its training-loss rise (module docstring), measured as
    :func:`poprisk.experiments.measure` measures a sweep row.

    Returns ``(frame, PerExample)`` in the layout of :func:`poprisk.experiments.run_sweeps` (``experiment`` is
    ``"baseline"``, ``"quantize"``, ``"noise_hw"`` or ``"noise_loss"``; ``method`` the reference; ``scale``
    the factor ``c``, 1 for the distortion-matched noise; ``train_rise`` the training-CE rise against the
    uncompressed network), so :func:`poprisk.protocol.verdict_table` compares its rows.
    """
    from poprisk import experiments as ex

    bits = checks.integer(bits, "bits", low=1, high=16)
    rows, per_rows = [], []
    with config.torch_threads(config.train_threads()):
        for tm in trained:
            n = min(cfg.curvature_samples, tm.split.x_train.shape[0])
            h = ex.importances(tm.model, tm.split.x_train[:n], tm.split.y_train[:n], method=cfg.curvature)
            kw = dict(bits=bits, h=h, iters=cfg.iters, seed=tm.seed)
            ref, _ = ex.compress(tm.model, method=reference, **kw)
            noise, _ = ex.compress(tm.model, method=ex.NOISE, noise_reference=reference, **kw)
            x, y = tm.split.x_train, tm.split.y_train
            base_ce = _train_ce(tm.model, x, y)
            c, _ = match_training_loss(tm.model, noise, x, y, _train_ce(ref, x, y) - base_ce)
            nets = (("baseline", tm.model, 1.0), ("quantize", ref, 1.0), ("noise_hw", noise, 1.0),
                    ("noise_loss", scaled_perturbation(tm.model, noise, c), c))
            for experiment, net, scale in nets:
                metrics, per = ex.measure(net, tm.split, fixed_temperature=cfg.fixed_temperature,
                                          bins=cfg.ece_bins)
                rows.append({"row": len(rows), "experiment": experiment, "seed": tm.seed, "method": reference,
                             "bits": bits, "scale": scale, **metrics,
                             "train_rise": metrics["train_ce"] - base_ce})
                per_rows.append(per)
    frame = pd.DataFrame(rows)
    losses = {kind: np.stack([p[kind] for p in per_rows]) for kind in ex.PER_EXAMPLE_KINDS}
    return frame, ex.PerExample(losses, frame["seed"].to_numpy())


def noise_table(frame: pd.DataFrame, per, *, margin: float | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """The two matchings side by side, from :func:`loss_matched_noise`'s rows: per noise its mean
    training-CE rise against that of the reference quantizer, and ``noise − reference`` on the raw and on
    the calibrated test loss with its interval and verdict (:func:`poprisk.protocol.verdict_table`, the
    four comparisons corrected together: positive means the quantizer is the more benign perturbation)."""
    from poprisk import protocol, stats

    ref = dict(experiment="quantize")
    comps = {}
    for exp, label in NOISE_LABELS.items():
        for kind, word in (("test_ce", "raw"), ("test_ce_cal", "own T")):
            comps[(exp, word, kind)] = (dict(experiment=exp), ref)
    rows = []
    k = len(comps)
    for (exp, word, kind), pair in comps.items():
        t = protocol.verdict_table(frame, per, {"x": pair}, kind=kind, margin=margin,
                                   alpha=alpha / k).iloc[0]
        rise = stats.select(frame, experiment=exp)["train_rise"].mean()
        rows.append({"control": NOISE_LABELS[exp], "loss": word, "training-CE rise (nats)": rise,
                     "reference's rise (nats)": stats.select(frame, **ref)["train_rise"].mean(),
                     "noise − quantizer (nats)": t["difference (nats)"], "interval": t["interval"],
                     "verdict for the noise": t["verdict"]})
    return pd.DataFrame(rows)
