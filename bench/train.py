"""Training throughput of ``poprisk.train.fit`` against a plain PyTorch DataLoader loop (issue 6).

Both train the same network (the 784-256-256-10 MLP of chapter 9) on the same data (the offline MNIST sample)
with the same optimiser (SGD, lr 0.01, momentum 0.9, weight decay 1e-4), batch size and number of epochs.
The reference is the textbook loop: ``DataLoader(TensorDataset(x, y), batch_size, shuffle=True)`` feeding
``for xb, yb in loader: ...`` with PyTorch's default SGD. ``fit`` keeps the data on the device, takes each
mini-batch as a contiguous slice of a once-per-epoch shuffled copy, and uses the fused SGD kernel. The two
are timed alternately, several rounds, in one run; the median samples/s of each and their ratio are printed
(target: ≥ 1.5× on CPU).

    python bench/train.py [--epochs 2] [--rounds 3] [--batch-sizes 10 100] [--n 3000] [--threads 1]

Batch 10 is the authors' protocol; at that size both loops are bound by the per-step cost of the tiny
forward/backward/optimizer kernels, so the data path matters less than at larger batches. One torch thread by
default: small-batch training gains nothing from more, and the measurement is steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from poprisk import config, data, models, train


def reference_fit(model, x, y, *, epochs, batch_size, lr=0.01, momentum=0.9, weight_decay=1e-4, seed=0):
    """The plain loop every tutorial shows: a DataLoader over a TensorDataset, shuffled each epoch."""
    dev = next(model.parameters()).device
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--n", type=int, default=3000, help="training images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = config.device()
    split = data.load_dataset("mnist_sample", n_test=5000 - args.n, seed=0)
    x, y = split.x_train.to(dev), split.y_train.to(dev)
    x_cpu, y_cpu = split.x_train, split.y_train  # a DataLoader's usual source: host tensors
    samples = args.epochs * x.shape[0]
    print(f"device {dev}, torch threads {torch.get_num_threads()}, {x.shape[0]} images, "
          f"{args.epochs} epochs per measurement, {args.rounds} rounds, timed alternately")

    def run(which: str, batch_size: int) -> float:
        config.seed_everything(0)
        model = models.MLP().to(dev)
        start = time.perf_counter()
        if which == "fit":
            train.fit(model, x, y, epochs=args.epochs, batch_size=batch_size, progress=False)
        else:
            reference_fit(model, x_cpu, y_cpu, epochs=args.epochs, batch_size=batch_size)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return samples / (time.perf_counter() - start)

    for batch_size in args.batch_sizes:
        run("fit", batch_size), run("reference", batch_size)  # warm-up (allocator, kernels)
        rates = {"fit": [], "reference": []}
        for _ in range(args.rounds):
            for which in ("fit", "reference"):
                rates[which].append(run(which, batch_size))
        fit_rate, ref_rate = statistics.median(rates["fit"]), statistics.median(rates["reference"])
        ratio = fit_rate / ref_rate
        print(f"batch {batch_size:4d}: poprisk.train.fit {fit_rate:9.0f} samples/s | DataLoader reference "
              f"{ref_rate:9.0f} samples/s | ratio {ratio:.2f}x (target >= 1.5x on CPU: "
              f"{'met' if ratio >= 1.5 else 'NOT met'})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
