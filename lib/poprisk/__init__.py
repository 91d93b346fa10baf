"""poprisk — companion library of the book *Population risk improvement with model compression*.

One module per idea; each module's docstring names the chapter that uses it:

* :mod:`poprisk.config`    — FAST switch, device choice, seeding (every chapter).
* :mod:`poprisk.plotting`  — the book's single figure style (every chapter with a figure).
* :mod:`poprisk.data`      — offline MNIST sample, digits, optional torchvision datasets (chapters 1, 8, 9).
* :mod:`poprisk.models`    — the 784-256-256-10 MLP of the paper's MNIST experiment (chapters 1, 8, 9).
* :mod:`poprisk.train`     — training loop and evaluation (chapters 1, 8, 9).
* :mod:`poprisk.quantize`  — weight sharing: exact weighted 1-D K-means, HW K-means, DRHW (chapters 1, 3, 7, 9).
* :mod:`poprisk.infotheory` — MI bounds, Gaussian R(D), reverse water-filling, Blahut–Arimoto (chapters 2–5).
* :mod:`poprisk.linreg`    — the linear-regression example in closed form and by Monte Carlo (chapter 6).
* :mod:`poprisk.curvature` — Hessian-diagonal estimators (chapters 7–9).
* :mod:`poprisk.prune`     — magnitude and curvature (OBD) pruning (chapter 9).
* :mod:`poprisk.experiments` — sweeps: train, compress, calibrate, measure; tidy DataFrames (chapter 9).
* :mod:`poprisk.cache`     — the verified on-disk cache of trained networks (chapter 9).
* :mod:`poprisk.stats`     — summaries, paired comparisons, t and bootstrap intervals of sweeps (ch. 9, 10).
* :mod:`poprisk.selection` — choosing β, bits or a pruning fraction on validation data (chapter 9).
* :mod:`poprisk.calibration` — temperature scaling and the expected calibration error (chapters 1, 9, 10).
* :mod:`poprisk.protocol`  — the authors' protocol vs the book's; the calibration split of a loss change (ch. 9).
* :mod:`poprisk.checks`    — argument checks shared by the core modules (every public function).
* :mod:`poprisk.tables`    — a DataFrame on the page: HTML on the site, LaTeX in the PDF (every chapter).
* :mod:`poprisk.bounds`    — Occam / PAC-Bayes bounds, kl inverse, prefix code lengths of networks (chapter 10).
* :mod:`poprisk.subspace`  — random-subspace training, quantized and coded coordinates (chapter 10).

Modules are imported lazily so that ``import poprisk`` stays cheap (no torch import until needed).
"""

from importlib import import_module

__version__ = "0.1.0"

_MODULES = ("config", "plotting", "data", "models", "train", "quantize", "infotheory", "linreg", "curvature",
            "prune", "experiments", "tables", "calibration", "checks", "protocol", "bounds", "subspace",
            "cache", "stats", "selection")

__all__ = ["__version__", *_MODULES]


def __getattr__(name):
    if name in _MODULES:
        return import_module(f"poprisk.{name}")
    raise AttributeError(f"module 'poprisk' has no attribute {name!r}")
