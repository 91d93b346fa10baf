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
