"""The tables of chapter 10 ("What the theory explains"), computed from chapter 9's networks and sweep.

* :func:`frame_information` — the mutual information of a small joint law written as a table of outcomes.
* :func:`code_report` — per parameter tensor of a network, the prefix code of :mod:`poprisk.bounds` and the
  checks chapter 10 states about it: the two-part code is within ``header + (k − 1) log₂ n + 2`` bits of
  the empirical entropy bound ``n Ĥ + 32 k``, never below the label index ``log₂ multinomial``, and (small
  tensors) encodes to a codeword of exactly the charged length that decodes back to the tensor.
* :func:`error_record` — a network's code length (bits, :func:`poprisk.bounds.network_code_bits`) and 0–1
  errors on its training and test digits.
* :func:`importance_sources` — HW K-means with the Hessian importances computed on the training digits
  (``Ŵ`` a function of ``(W, S)``) or on independent validation digits (the Markov chain ``S → W → Ŵ``).
* :func:`validation_verdicts` — per method, the rate chosen on calibrated validation loss and its paired
  difference from the uncompressed network, both calibrated, with the across-seed t-interval and (for the
  cross-entropy) the bootstrap over seeds and test images; :func:`verdict_sentences` states each verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from poprisk import bounds, checks

__all__ = ["code_report", "error_record", "frame_information", "importance_sources", "validation_verdicts",
           "verdict_sentences"]


def frame_information(law: pd.DataFrame, x, y, *, weight: str = "p") -> float:
    """``I(X;Y) = H(X) + H(Y) − H(X, Y)`` in nats for a finite joint law listed as rows of ``law``: one row
    per outcome, the probability in column ``weight``, ``x`` and ``y`` column names (or lists of them) —
    chapter 10's toy laws of a training sample, an algorithm's output and a temperature."""
    from poprisk import infotheory

    if weight not in law or not np.isclose(law[weight].sum(), 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"law[{weight!r}] must hold probabilities summing to 1")
    xs, ys = ([x] if isinstance(x, str) else list(x)), ([y] if isinstance(y, str) else list(y))
    h = {k: infotheory.entropy(law.groupby(cols)[weight].sum().to_numpy())
         for k, cols in (("x", xs), ("y", ys), ("xy", xs + ys))}
    return h["x"] + h["y"] - h["xy"]


def code_report(model, *, decode_up_to: int = 3000) -> pd.DataFrame:
    """One row per parameter tensor of ``model`` (``named_parameters`` order): ``tensor``, ``entries``,
    ``code bits`` (:func:`poprisk.bounds.tensor_code_bits`), ``within entropy bound`` (the two-part code
    ``≤ n Ĥ + 32k + header + (k − 1) log₂ n + 2``), ``at least its label index`` (label bits
    ``≥ log₂ multinomial(counts)``) and ``decodes`` (for tensors of at most ``decode_up_to`` entries: the
    codeword of :func:`poprisk.bounds.encode_tensor` has exactly the charged length and decodes back to the
    tensor; ``None`` for larger tensors, whose encoding is too slow to run on the page)."""
    decode_up_to = checks.integer(decode_up_to, "decode_up_to", low=0)
    rows = []
    for name, p in model.named_parameters():
        w = p.detach().cpu().numpy()
        two = bounds.two_part_code(w)
        bits = bounds.tensor_code_bits(w)
        slack = two.header + (two.k - 1) * math.log2(w.size) + 2
        counts = np.unique(w, return_counts=True)[1]
        decodes = None
        if w.size <= decode_up_to:
            word = bounds.encode_tensor(w)
            back = bounds.decode_tensor(word, w.size)[0]
            decodes = len(word) == bits and bool(np.array_equal(back, w.reshape(-1)))
        rows.append({"tensor": name, "entries": int(w.size), "code bits": bits,
                     "within entropy bound": two.total <= two.entropy_bits + slack,
                     "at least its label index": two.labels >= bounds.log2_multinomial(counts),
                     "decodes": decodes})
    return pd.DataFrame(rows)


def error_record(model, split, **labels) -> dict:
    """``labels`` plus ``code_bits`` (:func:`poprisk.bounds.network_code_bits`), ``train_err`` and
    ``test_err`` (0–1 errors of :func:`poprisk.train.evaluate` on ``split``'s training and test digits)."""
    from poprisk import train

    tr = train.evaluate(model, split.x_train, split.y_train)
    te = train.evaluate(model, split.x_test, split.y_test)
    return dict(labels, code_bits=bounds.network_code_bits(model)["total"], train_err=1 - tr.accuracy,
                test_err=1 - te.accuracy)


def _labels(net) -> np.ndarray:
    from poprisk import models

    # each weight's cluster, by the rank of its centre within its layer
    return np.concatenate([np.unique(m.weight.detach().cpu().numpy(), return_inverse=True)[1].ravel()
                           for _, m in models.compressible_layers(net)])


def importance_sources(trained, n_curvature: int, *, bits: int = 2) -> pd.DataFrame:
    """For each trained network of chapter 9 (``trained``: :func:`poprisk.experiments.train_models`), HW
    K-means at ``bits`` bits with the importances (:func:`poprisk.experiments.importances`, on the first
    ``n_curvature`` digits) from the training sample (``h_from="train"``) and from the validation digits
    (``"validation"``). Columns: ``seed``, ``h_from``, ``train_ce``, ``test_ce``, ``gap`` (nats),
    ``test_acc``, ``code_bits`` and ``label_agreement``, the share of weights in the same cluster both ways."""
    from poprisk import experiments as ex
    from poprisk import train

    n_curvature = checks.integer(n_curvature, "n_curvature", low=1)
    bits = checks.integer(bits, "bits", low=1)
    rows = []
    for t in trained:
        s, n_h = t.split, min(n_curvature, t.split.x_train.shape[0])
        nets = {}
        for source, (x, y) in (("train", (s.x_train, s.y_train)), ("validation", (s.x_val, s.y_val))):
            h = ex.importances(t.model, x[:n_h], y[:n_h])
            nets[source], _ = ex.compress(t.model, method="hw_kmeans", bits=bits, h=h)
            tr = train.evaluate(nets[source], s.x_train, s.y_train)
            te = train.evaluate(nets[source], s.x_test, s.y_test)
            rows.append(dict(seed=t.seed, h_from=source, train_ce=tr.loss, test_ce=te.loss,
                             gap=te.loss - tr.loss, test_acc=te.accuracy,
                             code_bits=bounds.network_code_bits(nets[source])["total"]))
        agreement = float(np.mean(_labels(nets["train"]) == _labels(nets["validation"])))
        for rec in rows[-2:]:
            rec["label_agreement"] = agreement
    return pd.DataFrame(rows)


def validation_verdicts(sweep: pd.DataFrame, per_example, methods) -> pd.DataFrame:
    """For each method of ``methods``: the bits chosen on calibrated validation cross-entropy
    (:func:`poprisk.selection.select_on_validation`, ``val_ce_cal``) and, for ``test_ce_cal`` and
    ``test_acc``, the paired difference compressed − uncompressed across seeds (:func:`poprisk.stats.\
paired_comparison`: ``diff``, ``t_lo``, ``t_hi``; means ``compressed``, ``uncompressed``) and, for the
    cross-entropy, the bootstrap over seeds and test images (``boot_lo``, ``boot_hi``)."""
    from poprisk import selection, stats

    base_rows = stats.select(sweep, experiment="baseline")
    out = []
    for method in methods:
        among = dict(experiment="quantize", method=method)
        bits = int(selection.select_on_validation(sweep, "bits", among, metric="val_ce_cal").setting["bits"])
        chosen = dict(among, bits=bits)
        for metric in ("test_ce_cal", "test_acc"):
            r = stats.paired_comparison(sweep, chosen, dict(experiment="baseline"), metric)
            row = dict(method=method, bits_on_validation=bits, metric=metric, compressed=np.mean(r["a"]),
                       uncompressed=np.mean(r["b"]), diff=r["mean"], t_lo=r["lo"], t_hi=r["hi"])
            if metric == "test_ce_cal":
                boot = stats.bootstrap_interval(per_example.matrix(stats.select(sweep, **chosen), metric),
                                                per_example.matrix(base_rows, metric))
                row.update(boot_lo=boot["lo"], boot_hi=boot["hi"])
            out.append(row)
    return pd.DataFrame(out)


def verdict_sentences(verdicts: pd.DataFrame, margin: float | None = None) -> str:
    """One sentence per method of :func:`validation_verdicts`: the verdict of :func:`poprisk.stats.verdict`
    (against ``margin``, default :data:`poprisk.stats.MARGIN` nats) on the union of the t- and bootstrap
    intervals of the calibrated test cross-entropy — both must agree for a firm word — with the numbers."""
    from poprisk import protocol, stats

    margin = stats.MARGIN if margin is None else margin
    out = []
    for r in verdicts[verdicts.metric == "test_ce_cal"].itertuples():
        lo, hi = min(r.boot_lo, r.t_lo), max(r.boot_hi, r.t_hi)
        out.append(protocol.fill(
            "{method} at {bits} bits (chosen on validation): calibrated test CE against the calibrated "
            "original **{verdict}** (margin {margin} nats), a difference of {diff} nats, interval {ci}.",
            method=r.method, bits=r.bits_on_validation, verdict=stats.verdict(lo, hi, margin),
            margin=margin, diff=float(r.diff), ci=protocol.interval_text(lo, hi)))
    return " ".join(out)
