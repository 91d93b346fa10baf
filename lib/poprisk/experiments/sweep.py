"""The sweep runner (chapter 9): one row per seed × compression setting, each measured by
:func:`poprisk.experiments.measure` (the protocol is in :mod:`poprisk.experiments`)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from poprisk import checks, config, data
from poprisk.experiments.compressors import BETA_GRIDS, compress, hw_distortion, importances, prune_masks
from poprisk.experiments.measuring import PER_EXAMPLE_KINDS, PerExample, measure
from poprisk.experiments.networks import TrainedModel, cache_key, train_models
from poprisk.experiments.settings import SWEEPS, SweepConfig, _check_cfg, _names

#: ``hw_distortion``, the ``base_*`` numbers of the seed's uncompressed network and ``seconds``).
SETTING_COLUMNS = ("row", "experiment", "seed", "method", "bits", "beta", "prune", "prune_ratio", "layers")


def _jobs(cfg: SweepConfig, sweeps) -> list[dict]:
    def betas(method, grid_of=None):
        if method not in BETA_GRIDS:
            return (None,)
        return getattr(cfg, grid_of or BETA_GRIDS[method])

    jobs = []
    for layers in cfg.layers:
        if "quantize" in sweeps:
            for method in cfg.methods:
                for bits in cfg.bits:
                    for beta in betas(method):
                        jobs.append(dict(experiment="quantize", method=method, bits=bits, beta=beta,
                                         layers=layers))
        if "prune" in sweeps:
            for pm in cfg.prune_methods:
                for r in cfg.prune_ratios:
                    jobs.append(dict(experiment="prune", prune=pm, prune_ratio=r, layers=layers))
        if "prune_quantize" in sweeps:
            for pm in cfg.prune_methods:
                for r in cfg.prune_ratios:
                    for method in cfg.prune_quant_methods:
                        for beta in betas(method, "prune_quant_betas" if method in BETA_GRIDS else None):
                            jobs.append(dict(experiment="prune_quantize", prune=pm, prune_ratio=r,
                                             method=method, bits=cfg.prune_quant_bits, beta=beta,
                                             layers=layers))
    return jobs


def _sweep_network(cfg: SweepConfig, tm: TrainedModel, jobs: list[dict], add) -> None:
    """The baseline row and every job's row of one trained network (``add`` measures and records a row)."""
    base = add(tm, tm.model, dict(experiment="baseline"), 1.0, 0.0, None, time.perf_counter())
    if not jobs:
        return
    n = min(cfg.curvature_samples, tm.split.x_train.shape[0])
    h = importances(tm.model, tm.split.x_train[:n], tm.split.y_train[:n], method=cfg.curvature)
    masks_cache = {}
    for job in jobs:
        start = time.perf_counter()
        masks = None
        if job.get("prune") is not None and job["prune_ratio"] > 0:
            key = (job["prune"], job["prune_ratio"])
            if key not in masks_cache:
                masks_cache[key] = prune_masks(tm.model, job["prune"], job["prune_ratio"], h)
            masks = masks_cache[key]
        compressed, ratio = compress(tm.model, method=job.get("method"), bits=job.get("bits"), h=h, masks=masks,
                                     beta=job.get("beta"), iters=cfg.iters, seed=tm.seed, layers=job["layers"],
                                     noise_reference=cfg.noise_reference)
        add(tm, compressed, job, ratio, hw_distortion(tm.model, compressed, h), base, start)


def run_sweeps(cfg: SweepConfig, split: data.Split | None = None, *, sweeps=SWEEPS, trained=None,
               cache_dir=None, device=None, progress: bool = True, per_example: bool = False):
    """Train (or load) the networks of ``cfg`` and run the requested ``sweeps`` (a subset of :data:`SWEEPS`).

    Returns a tidy :class:`pandas.DataFrame` with one ``"baseline"`` row per seed (the uncompressed network,
    ratio 1, ``method="none"``) and one row per seed × compression setting; with ``per_example=True``,
    ``(frame, PerExample)``. Columns: :data:`SETTING_COLUMNS` (``bits``/``beta``/``prune`` are missing where
    they do not apply; ``row`` numbers the rows), the metrics of :func:`measure` (train/val/test CE and
    accuracy, gap, test ECE, ``temperature`` and the ``*_cal``/``*_fixed`` numbers, ``logit_norm``), ``ratio``,
    ``hw_distortion`` (against the seed's ``h``), ``base_train_ce``, ``base_test_ce``, ``base_test_ce_cal``,
    ``base_train_acc``, ``base_test_acc`` and ``seconds`` (compression + evaluation). ``trained`` reuses
    networks from :func:`train_models` (their seeds must be ``cfg.seeds``).
    """
    _check_cfg(cfg)
    sweeps = _names(sweeps, "sweeps", SWEEPS)
    checks.boolean(per_example, "per_example")
    checks.boolean(progress, "progress")
    if trained is None:
        trained = train_models(cfg, split, cache_dir=cache_dir, device=device, progress=progress)
    elif not isinstance(trained, (list, tuple)) or not all(isinstance(t, TrainedModel) for t in trained):
        raise TypeError("trained must be the list returned by train_models")
    elif tuple(t.seed for t in trained) != cfg.seeds:
        raise ValueError(f"trained holds seeds {[t.seed for t in trained]}, cfg.seeds is {list(cfg.seeds)}")
    else:
        for t in trained:
            param = next(t.model.parameters())
            if t.key != cache_key(cfg, t.seed, t.split, param.device, param.dtype):
                raise ValueError(f"trained network of seed {t.seed} was not trained with this cfg's training "
                                 "settings (or on other data/code): pass the cfg it was trained with")
    jobs = _jobs(cfg, sweeps)
    rows, per_rows = [], []
    bar = config.progress_bar(total=len(trained) * (len(jobs) + 1), desc="compress", disable=not progress)

    def add(tm, net, setting, ratio, distortion, base, start):
        metrics, per = measure(net, tm.split, fixed_temperature=cfg.fixed_temperature, bins=cfg.ece_bins)
        row = {"row": len(rows), "experiment": None, "seed": tm.seed, "method": "none", "bits": None,
               "beta": None, "prune": None, "prune_ratio": 0.0, "layers": None}
        row.update(setting)
        row.update(metrics)
        base = base or metrics
        row.update(ratio=float(ratio), hw_distortion=distortion, base_train_ce=base["train_ce"],
                   base_test_ce=base["test_ce"], base_test_ce_cal=base["test_ce_cal"],
                   base_train_acc=base["train_acc"], base_test_acc=base["test_acc"],
                   seconds=time.perf_counter() - start)
        rows.append(row)
        per_rows.append(per)
        bar.update(1)
        return metrics

    # the thread count of training, so that the importances and every evaluation reproduce across machines
    with config.torch_threads(config.train_threads()):
        for tm in trained:
            _sweep_network(cfg, tm, jobs, add)
    bar.close()
    frame = pd.DataFrame(rows)
    for col in ("bits", "beta", "prune", "layers"):  # keep ints as ints and missing as None (not NaN floats)
        frame[col] = pd.Series([r[col] for r in rows], dtype=object)
    if not per_example:
        return frame
    losses = {kind: np.stack([p[kind] for p in per_rows]) for kind in PER_EXAMPLE_KINDS}
    return frame, PerExample(losses, frame["seed"].to_numpy())
