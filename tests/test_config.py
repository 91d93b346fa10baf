import sys
import types

import numpy as np
import pytest
import torch

from poprisk import config


def test_fast_switch(monkeypatch):
    monkeypatch.setenv("POPRISK_FAST", "1")
    assert config.is_fast() and config.fast_or_full("a", "b") == "a"
    monkeypatch.setenv("POPRISK_FAST", "0")
    assert not config.is_fast() and config.fast_or_full("a", "b") == "b"
    monkeypatch.delenv("POPRISK_FAST")
    assert not config.is_fast()
    monkeypatch.setenv("POPRISK_FAST", "maybe")
    with pytest.raises(ValueError, match="POPRISK_FAST"):
        config.is_fast()


def test_device_defaults_and_validates(monkeypatch):
    monkeypatch.delenv("POPRISK_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.device().type == expected
    assert config.device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.device("cuda")


def test_seed_everything_reproduces():
    rng1 = config.seed_everything(3)
    a = (rng1.normal(), np.random.rand(), torch.rand(1).item())
    rng2 = config.seed_everything(3)
    assert a == (rng2.normal(), np.random.rand(), torch.rand(1).item())
    for bad in (-1, 1.5, "3", True, None):
        with pytest.raises((ValueError, TypeError), match="seed"):
            config.seed_everything(bad)


def test_progress_bar_switch(monkeypatch):
    monkeypatch.setenv("POPRISK_PROGRESS", "0")
    assert config.progress_bar(range(3)).disable
    monkeypatch.setenv("POPRISK_PROGRESS", "1")
    assert list(config.progress_bar(range(3), file=open("/dev/null", "w"))) == [0, 1, 2]


def test_in_colab_and_progress_switch(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert config.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert config.in_colab() is True
    monkeypatch.setenv("POPRISK_PROGRESS", "0")
    assert config.progress_enabled() is False
    monkeypatch.setenv("POPRISK_PROGRESS", "1")
    assert config.progress_enabled() is True
