import pytest
import torch

from poprisk import data


@pytest.fixture(scope="module")
def mnist():
    return data.load_dataset("mnist_sample", n_test=2000, seed=0)


def test_mnist_sample_split(mnist):
    assert mnist.x_train.shape == (3000, 784) and mnist.x_test.shape == (2000, 784)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    assert mnist.n_classes == 10 and mnist.n_features == 784
    # the file is sorted by class: the shuffle must mix every class into both parts
    assert torch.bincount(mnist.y_test, minlength=10).min() > 150
    assert torch.bincount(mnist.y_train, minlength=10).min() > 250


def test_split_is_deterministic_and_seeded(mnist):
    again = data.load_dataset("mnist_sample", n_test=2000, seed=0)
    other = data.load_dataset("mnist_sample", n_test=2000, seed=1)
    assert torch.equal(mnist.x_test, again.x_test)
    assert not torch.equal(mnist.x_test, other.x_test)


def test_subsample_with_replacement(mnist):
    sub = mnist.subsample_train(3000, seed=4)
    assert sub.x_train.shape == (3000, 784)
    assert torch.equal(sub.x_test, mnist.x_test)
    assert torch.equal(sub.x_train, mnist.subsample_train(3000, seed=4).x_train)
    unique = torch.unique(sub.x_train, dim=0).shape[0]
    assert unique < 3000  # drawn with replacement
    with pytest.raises(ValueError, match="n must be"):
        mnist.subsample_train(0, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        mnist.subsample_train(5000, seed=0, replace=False)


def test_digits():
    d = data.load_dataset("digits", n_test=500, seed=0)
    assert d.x_train.shape == (1297, 64) and d.x_test.shape == (500, 64)
    assert d.x_train.max() <= 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="n_test"):
        data.load_dataset("digits", n_test=0)
    with pytest.raises(ValueError, match="n_test"):
        data.load_dataset("digits", n_test=1797)
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_torchvision("svhn")


def test_torchvision_path_fails_clearly_offline(tmp_path):
    # torchvision is not part of the book's environment (it does not import beside torch 2.13.0); where it is
    # present, the files are absent and download is off — either way the error must say what to do.
    with pytest.raises(RuntimeError, match="torchvision|download=True"):
        data.load_torchvision("mnist", root=str(tmp_path), download=False)


# ---------------------------------------------------------------------------------- Fashion-MNIST (idx)

import gzip  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402


def write_idx(path, array):
    """An idx file of unsigned bytes, gzipped (the layout of the MNIST family)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def tiny_fashion(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    parts = {"train": 12, "t10k": 5}
    for part, n in parts.items():
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    sums = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in data.FASHION_SHA256}
    monkeypatch.setattr(data, "FASHION_SHA256", sums)
    monkeypatch.setenv("POPRISK_FASHION_DIR", str(tmp_path))
    return tmp_path


def test_read_idx_round_trip_and_refusals(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz", expect="images"), arr)
    with pytest.raises(ValueError, match="expected labels"):
        data.read_idx(tmp_path / "a.gz", expect="labels")
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(9))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "b.gz")
    with gzip.open(tmp_path / "c.gz", "wb") as fh:
        fh.write(bytes([0, 0, 0x0D, 1]) + (1).to_bytes(4, "big") + bytes(4))
    with pytest.raises(ValueError, match="unsigned-byte"):
        data.read_idx(tmp_path / "c.gz")


def test_fashion_loader_on_small_files(tiny_fashion):
    split = data.load_dataset("fashion_mnist")
    assert split.x_train.shape == (12, 784) and split.x_test.shape == (5, 784)
    assert split.x_train.dtype == torch.float32 and split.y_test.dtype == torch.int64
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert split.y_train.tolist() == [i % 10 for i in range(12)]  # file order: the official split
    assert data.load_dataset("fashion_mnist", n_test=3).x_test.shape == (3, 784)
    with pytest.raises(ValueError, match="official"):
        data.load_dataset("fashion_mnist", n_test=10001)


def test_fashion_checksum_and_missing_package(tiny_fashion, monkeypatch):
    write_idx(tiny_fashion / "t10k-labels-idx1-ubyte.gz", np.zeros(5))  # another file than the summed one
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_dataset("fashion_mnist")
    monkeypatch.setenv("POPRISK_FASHION_DIR", str(tiny_fashion / "absent"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load_dataset("fashion_mnist")


@pytest.mark.skipif(not os.path.isdir(data.FASHION_DIR), reason="Debian's dataset-fashion-mnist not installed")
def test_the_installed_fashion_mnist(monkeypatch):
    monkeypatch.delenv("POPRISK_FASHION_DIR", raising=False)
    split = data.load_dataset("fashion_mnist")
    assert split.x_train.shape == (60000, 784) and split.x_test.shape == (10000, 784)
    assert torch.bincount(split.y_train).tolist() == [6000] * 10
    assert torch.bincount(split.y_test).tolist() == [1000] * 10
