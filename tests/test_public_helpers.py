"""Direct tests of small public helpers that the chapters reach only through other functions (issue 23: every
public function is used by a chapter, a test or a bench)."""
import math

import pytest

from poprisk import cache, config, data, protocol, tables


def test_env_flag_and_env_int_parse_strictly(monkeypatch):
    monkeypatch.setenv("POPRISK_TEST_FLAG", " Yes ")
    assert config.env_flag("POPRISK_TEST_FLAG", False) is True
    monkeypatch.setenv("POPRISK_TEST_FLAG", "")
    assert config.env_flag("POPRISK_TEST_FLAG", True) is True
    monkeypatch.setenv("POPRISK_TEST_FLAG", "sometimes")
    with pytest.raises(ValueError, match="POPRISK_TEST_FLAG"):
        config.env_flag("POPRISK_TEST_FLAG", False)
    monkeypatch.setenv("POPRISK_TEST_INT", " 7 ")
    assert config.env_int("POPRISK_TEST_INT", 1, low=1, high=8) == 7
    for raw in ("9", "0", "-1", "7.0", "\u0667"):
        monkeypatch.setenv("POPRISK_TEST_INT", raw)
        with pytest.raises(ValueError, match="POPRISK_TEST_INT"):
            config.env_int("POPRISK_TEST_INT", 1, low=1, high=8)


def test_default_key_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POPRISK_CACHE_KEY", str(tmp_path / "k"))
    assert cache.default_key_path() == tmp_path / "k"
    monkeypatch.delenv("POPRISK_CACHE_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert cache.default_key_path() == tmp_path / "cfg" / "poprisk" / "cache.key"


def test_fashion_mnist_files_names_the_package_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=data.FASHION_PACKAGE):
        data.fashion_mnist_files(tmp_path)


def test_fashion_mnist_files_finds_the_installed_files():
    try:
        files = data.fashion_mnist_files()
    except FileNotFoundError:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    assert len(files) == 4 and all(p.is_file() for p in files.values())


@pytest.mark.parametrize("boot, seeds, want", [
    ((-0.01, 0.01), (-0.015, 0.012), "equivalent"),
    ((-0.05, -0.03), (-0.06, -0.025), "better"),
    ((0.03, 0.05), (0.025, 0.06), "worse"),
    ((-0.05, -0.03), (-0.06, 0.01), "inconclusive"),  # the two intervals give different words
    ((0.03, 0.05), (math.nan, math.nan), "worse"),  # one seed: only the bootstrap speaks
])
def test_verdict_of_needs_both_intervals_to_agree(boot, seeds, want):
    d = {"boot_lo": boot[0], "boot_hi": boot[1], "seeds_lo": seeds[0], "seeds_hi": seeds[1]}
    assert protocol.verdict_of(d, 0.02) == want


def test_latex_table_is_a_captioned_longtable_with_numbers_right_aligned():
    tex = tables.latex_table(["method", "test CE (nats)"], [["K-means", "0.281"]], [False, True], "A caption")
    assert r"\begin{longtable}" in tex and r"\caption*{\itshape A caption}" in tex
    spec = tex.split(r"\begin{longtable}{", 1)[1]
    assert spec.index("raggedright") < spec.index("raggedleft")
