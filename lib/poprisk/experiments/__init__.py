"""Sweeps of the neural-network experiments: train, compress, calibrate, measure (chapter 9; chapter 10 reads
its tables).

Protocol
--------
Data. The data set that :class:`SweepConfig` names is split once into a test set (``n_test`` images), a
**validation set** (``n_val`` images) and the training pool (the rest); all three are disjoint and fixed by
``split_seed`` (:meth:`poprisk.data.Split.with_validation`). Every seed draws its own training subsample of
``n_train`` images from the pool (with replacement by default, as the authors did). The validation set is a
fixed split of the pool rather than each seed's unused pool images because then (i) no validation image is
ever a training image of *any* seed, (ii) every seed is scored on the same validation images, so choices
made on them are paired across seeds exactly like the test comparisons, and (iii) its size does not vary
with the seed's draw. Inputs are in ``[0, 1]`` (``normalize="unit"``) or standardised as in the authors' code,
``(x − 0.1307)/0.3081`` (``normalize="authors"``).

Networks. One network ``W`` per seed (its own subsample, initialisation and SGD order) is trained to
over-fit, then compressed after training, without fine-tuning, into ``Ŵ`` by

* per-layer scalar quantization with ``K = 2**bits`` shared values (:mod:`poprisk.quantize`: uniform, K-means,
  Hessian-weighted K-means, its exact 1-D optimum, DRHW = Algorithm 1 with diameter weight ``β`` on a grid
  ``betas``, and the authors' released regularizer ``drhw_linear`` — a penalty linear in the diameter — on
  its own grid ``linear_betas``);
* pruning a fraction of the weights of each layer (:mod:`poprisk.prune`: by magnitude, or by the curvature
  saliency ``h w²/2`` of optimal brain damage), and pruning followed by quantization of the survivors;
* the **perturbation control** ``"noise"``: ``Ŵ = W + s·z`` per layer with ``z ~ N(0, I)`` and the scale ``s``
  set so that the Hessian-weighted distortion ``Σ_j h_j (ŵ_j − w_j)²`` equals, exactly, that of the reference
  quantizer ``noise_reference`` (default K-means) at the same number of bits on the same layer. Nothing is
  compressed (ratio 1): it asks whether *any* perturbation of that size changes the test loss as much.

``layers`` chooses what is compressed: ``"all"`` layers, the ``"hidden"`` ones (all but the last Linear/Conv),
or the ``"output"`` layer only; untouched layers count 32 bits per weight in the ratio.

Measurements (one row per seed × setting, the uncompressed network as the ``"baseline"`` row). For
``Ŵ`` with logits ``z``: the mean cross-entropy (nats) and accuracy on the seed's training subsample, the
validation set and the test set; the gap ``L_test − L_train``; the test ECE (15 equal-width bins,
:func:`poprisk.calibration.expected_calibration_error`); the mean test-logit norm ``mean_i ‖z_i‖₂``; the
temperature ``T`` fitted on the **validation** logits (:func:`poprisk.calibration.fit_temperature`; column
``temperature``, since ``df.T`` is pandas' transpose) and the train/val/test cross-entropy and test ECE of
``z / T`` (columns ``*_cal``); the same at the data-free ``fixed_temperature`` (columns ``*_fixed``).
Accuracy does not change with a temperature. The test set only reports: every choice (``T``, and β, bits
or the pruning fraction through :func:`poprisk.selection.select_on_validation`) is made on validation
numbers. ``run_sweeps(..., per_example=True)`` also returns the per-example test losses of every row
(raw, calibrated, fixed-T) as a :class:`PerExample`, for the bootstrap intervals of :mod:`poprisk.stats`.

The compression ratio counts, per layer, ``n·Ĥ(symbols) + 32·K`` bits against ``32·n`` (paper notes §6); for
a pruned layer the symbols are "zero" and the labels of the survivors (the zero costs no codebook entry), and
a pruned but unquantized layer stores its survivors as 32-bit floats: ``n·h₂(density) + 32·n_nonzero`` bits.
The importances ``h`` are a Hessian-diagonal estimate of the training cross-entropy
(:func:`poprisk.curvature.hessian_diag`), clipped to be positive and normalised to mean 1 per layer.

Results are tidy :class:`pandas.DataFrame` objects (summaries, paired comparisons and intervals in
:mod:`poprisk.stats`). Trained networks are cached on disk by :mod:`poprisk.cache` (``POPRISK_CACHE`` or
``~/.cache/poprisk``), keyed by everything the weights depend on and verified on load. :class:`SweepConfig`
validates every field when it is built — names against the real registries, numbers finite, booleans real
booleans, and the memory the exact quantizer would need — so a bad setting fails before any training.
Everything runs on :func:`poprisk.config.device`; tensors go through ``.cpu()`` before ``.numpy()``.
"""

from poprisk.experiments.compressors import (BETA_GRIDS, LAYER_SUBSETS, NOISE, NOISE_REFERENCES,
                                             PRUNE_METHODS, REGISTRY, WEIGHTED_METHODS, Compressor,
                                             LayerOptions, compress, hw_distortion, importances,
                                             per_layer_arrays, prune_masks, selected_layers)
from poprisk.experiments.measuring import PER_EXAMPLE_KINDS, PerExample, measure
from poprisk.experiments.networks import (TrainedModel, augment_images, build_model, cache_key,
                                          default_cache_dir, load_split, prepare_split, tensor_fingerprint,
                                          train_models, training_payload)
from poprisk.experiments.settings import (MODELS, NORMALIZATIONS, SWEEPS, TRAINING_FIELDS, SweepConfig,
                                          check_memory, hw_exact_memory_bytes, machine_memory_bytes,
                                          paper_scale_config)
from poprisk.experiments.sweep import SETTING_COLUMNS, run_sweeps

__all__ = ["BETA_GRIDS", "LAYER_SUBSETS", "MODELS", "NOISE", "NOISE_REFERENCES", "NORMALIZATIONS",
           "PER_EXAMPLE_KINDS", "PRUNE_METHODS", "REGISTRY", "SETTING_COLUMNS", "SWEEPS", "TRAINING_FIELDS",
           "WEIGHTED_METHODS", "Compressor", "LayerOptions", "PerExample", "SweepConfig", "TrainedModel",
           "augment_images", "build_model", "cache_key", "check_memory", "compress", "default_cache_dir",
           "hw_distortion", "hw_exact_memory_bytes", "importances", "load_split", "machine_memory_bytes",
           "measure", "paper_scale_config", "per_layer_arrays", "prepare_split", "prune_masks", "run_sweeps",
           "selected_layers", "tensor_fingerprint", "train_models", "training_payload"]
