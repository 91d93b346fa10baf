"""Benchmark of the Hessian-diagonal estimators of ``poprisk.curvature`` (issue 5, chapter 8).

Prints, measured side by side in one run on this machine:

* each estimator's wall time relative to **one full-batch gradient pass** (forward + backward of the mean
  cross-entropy w.r.t. every parameter, eval mode) and its Spearman rank correlation with the **exact** Hessian
  diagonal, on two nets trained briefly on 4,000 offline MNIST digits:
  the paper's 784-256-256-10 ReLU MLP (exact is feasible there: one Hessian–vector product per unit) and a
  784-64-64-10 tanh MLP (where the exact diagonal differs from the Gauss–Newton one and has negative entries);
* the empirical Fisher's wall time and peak extra resident memory (Linux ``VmHWM``, reset before the call)
  beside what materialising the per-example gradients would take.

Targets (issue 5): GGN ≤ 2× a gradient, MC-Fisher ≤ 1.1×, empirical Fisher ≤ 2 s and ≤ 1 GB, the default
(GGN) with Spearman ≥ 0.97 against the exact diagonal. Run: ``OMP_NUM_THREADS=1 python bench/curvature.py``
(``--threads`` to change; ``--probes`` for Hutchinson).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

from poprisk import config, curvature, data, models, train


def tanh_mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_extra_memory(fn) -> int | None:
    """Peak resident memory above the current level while ``fn()`` runs (bytes), or None off Linux."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5" resets the high-water mark VmHWM
            fh.write("5")
        base = _status("VmRSS")
    except (OSError, KeyError):
        return None
    fn()
    return _status("VmHWM") - base


def _ef_memory_child(path: str, threads: int) -> None:
    """Run in a fresh process, so that memory freed by earlier work cannot hide the estimator's peak."""
    torch.set_num_threads(threads)
    saved = torch.load(path)
    model = models.MLP()
    model.load_state_dict(saved["state"])
    x, y = saved["x"], saved["y"]
    loss_fn = nn.CrossEntropyLoss()
    curvature.hessian_diag(model, loss_fn, (x[:8], y[:8]), "empirical_fisher")  # warm the code paths, not memory
    start = time.perf_counter()
    extra = peak_extra_memory(lambda: curvature.hessian_diag(model, loss_fn, (x, y), "empirical_fisher"))
    print(f"{time.perf_counter() - start} {-1 if extra is None else extra}")


def ef_memory(model, x, y, threads: int) -> tuple[float, int | None]:
    """Wall time and peak extra memory of the empirical Fisher in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.pt")
        torch.save({"state": model.state_dict(), "x": x, "y": y}, path)
        out = subprocess.run([sys.executable, __file__, "--ef-memory-child", path, "--threads", str(threads)],
                             check=True, capture_output=True, text=True).stdout.split()
    seconds, extra = float(out[0]), int(out[1])
    return seconds, None if extra < 0 else extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probes", type=int, default=100, help="Rademacher probes of Hutchinson")
    parser.add_argument("--epochs", type=int, default=3, help="brief training before measuring")
    parser.add_argument("--ef-memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ef_memory_child:
        _ef_memory_child(args.ef_memory_child, args.threads)
        return 0
    torch.set_num_threads(args.threads)
    config.seed_everything(0)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s)")

    split = data.load_dataset("mnist_sample", n_test=1000, seed=0)
    x, y = split.x_train, split.y_train  # 4,000 training digits
    loss_fn = nn.CrossEntropyLoss()
    order = ["ggn", "mc_fisher", "empirical_fisher", "authors_sq_ce", "hutchinson", "exact"]
    nets = {"ReLU MLP 784-256-256-10": models.MLP(), "tanh MLP 784-64-64-10": tanh_mlp(0)}

    header = (f"{'net':<24} {'method':<17} {'seconds':>8} {'x grad':>8} {'Spearman':>9} {'nonzero':>8} "
              f"{'worst layer':>11} {'neg frac':>8}")
    print(f"\nN = {x.shape[0]} examples; Spearman against the exact diagonal (pooled / entries where exact != 0 / "
          "worst layer)")
    print(header)
    print("-" * len(header))
    results = {}
    for label, model in nets.items():
        train.fit(model, x, y, epochs=args.epochs, seed=0, progress=False)
        rows, _ = curvature.compare_estimators(model, loss_fn, (x, y), order, reference="exact",
                                               repeats=5, n_probes=args.probes, seed=0)
        results[label] = {r["method"]: r for r in rows}
        for r in rows:
            print(f"{label:<24} {r['method']:<17} {r['seconds']:8.3f} {r['x_gradient']:8.2f} {r['spearman']:9.4f} "
                  f"{r['spearman_nonzero']:8.4f} {r['spearman_min_layer']:11.4f} {r['negative_fraction']:8.3f}")

    model = nets["ReLU MLP 784-256-256-10"]
    n_params = sum(m.weight.numel() for _, m in models.compressible_layers(model))
    ef_seconds, extra = ef_memory(model, x, y, args.threads)
    naive = x.shape[0] * n_params * 4
    print(f"\nempirical Fisher on the ReLU MLP, in a fresh process: {ef_seconds:.3f} s, peak extra resident memory "
          + ("n/a" if extra is None else f"{extra / 2**20:.1f} MiB")
          + f" (materialised per-example gradients would need {naive / 2**30:.2f} GiB)")

    relu = results["ReLU MLP 784-256-256-10"]
    checks = [
        ("GGN <= 2x gradient", relu["ggn"]["x_gradient"] <= 2.0, f"{relu['ggn']['x_gradient']:.2f}x"),
        ("MC-Fisher <= 1.1x gradient", relu["mc_fisher"]["x_gradient"] <= 1.1,
         f"{relu['mc_fisher']['x_gradient']:.2f}x"),
        ("empirical Fisher <= 2 s", ef_seconds <= 2.0, f"{ef_seconds:.3f} s"),
        ("empirical Fisher <= 1 GB", extra is not None and extra <= 2**30,
         "n/a" if extra is None else f"{extra / 2**20:.0f} MiB"),
        ("default (GGN) Spearman >= 0.97 vs exact, ReLU MLP", relu["ggn"]["spearman_nonzero"] >= 0.97,
         f"{relu['ggn']['spearman_nonzero']:.4f}"),
    ]
    print("\ntargets (the book's net):")
    for name, ok, value in checks:
        print(f"  {'met ' if ok else 'MISS'}  {name}: {value}")
    tanh = results["tanh MLP 784-64-64-10"]["ggn"]
    print("\n(information, not a target: on the smooth tanh net GGN vs exact Spearman = "
          f"{tanh['spearman_nonzero']:.4f}, worst layer {tanh['spearman_min_layer']:.4f} — the residual term is not zero there)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
