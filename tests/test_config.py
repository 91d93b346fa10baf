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


# ------------------------------------------------------------- one strict parser for every switch (issue 22)

FLAGS = [("POPRISK_FAST", config.is_fast, False), ("POPRISK_PROGRESS", config.progress_enabled, True)]


@pytest.mark.parametrize("name, read, default", FLAGS, ids=[f[0] for f in FLAGS])
@pytest.mark.parametrize("raw, want", [("1", True), ("TRUE", True), (" yes ", True), ("On", True),
                                       ("0", False), ("false", False), ("NO", False), ("off\n", False),
                                       ("", None), ("   ", None)])
def test_switches_share_one_vocabulary(monkeypatch, name, read, default, raw, want):
    monkeypatch.setenv(name, raw)
    assert read() is (default if want is None else want)
    monkeypatch.delenv(name)
    assert read() is default


@pytest.mark.parametrize("name, read, default", FLAGS, ids=[f[0] for f in FLAGS])
@pytest.mark.parametrize("raw", ["maybe", "2", "-1", "y", "tru", "1.0", "\uff11", "enabled", "0x1", "nein"])
def test_switches_refuse_anything_else_naming_the_variable(monkeypatch, name, read, default, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=name):
        read()


@pytest.mark.parametrize("raw, want", [("1", 1), (" 2 ", 2), ("3", 3), ("", 1)])
def test_threads_parse(monkeypatch, raw, want):
    monkeypatch.setenv("POPRISK_THREADS", raw)
    assert config.train_threads() == want


@pytest.mark.parametrize("raw", ["0", "-1", "+2", "1.5", "1e2", "two", "\u0662", "\uff12", "2 3", "0x2",
                                 str(10**6), "9" * 40])
def test_threads_refuse_non_ascii_digits_and_absurd_counts(monkeypatch, raw):
    monkeypatch.setenv("POPRISK_THREADS", raw)
    with pytest.raises(ValueError, match="POPRISK_THREADS"):
        config.train_threads()


@pytest.mark.parametrize("raw", ["gpu", "cuda:x", "tpu", "\u0441pu", "cpu;rm", "mps" if not (
    getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()) else "gpu"]
    + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"]))
def test_device_variable_refused_naming_it(monkeypatch, raw):
    monkeypatch.setenv("POPRISK_DEVICE", raw)
    with pytest.raises(ValueError, match="POPRISK_DEVICE"):
        config.device()
    monkeypatch.delenv("POPRISK_DEVICE")
    with pytest.raises(ValueError, match="device"):
        config.device(raw)


def test_device_variable_accepts_cpu_and_blank_means_default(monkeypatch):
    monkeypatch.setenv("POPRISK_DEVICE", " cpu ")
    assert config.device().type == "cpu"
    monkeypatch.setenv("POPRISK_DEVICE", "")
    assert config.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("POPRISK_DEVICE", "cpu:0")
    assert config.device() == torch.device("cpu", 0)


def test_mps_without_mps_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("POPRISK_DEVICE", "mps")
    with pytest.raises(ValueError, match="POPRISK_DEVICE.*MPS"):
        config.device()


def test_in_colab_and_progress_switch(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert config.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert config.in_colab() is True
    monkeypatch.setenv("POPRISK_PROGRESS", "0")
    assert config.progress_enabled() is False
    monkeypatch.setenv("POPRISK_PROGRESS", "1")
    assert config.progress_enabled() is True
