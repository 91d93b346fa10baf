"""Tests of poprisk.cache: an entry is served only when it is the right, intact, finite model; a damaged entry
is reported by path, moved aside and counts as a miss; an unwritable folder warns once; concurrent writers
leave one complete entry; editing the library changes the key (issue 14, classes 1 and 2)."""

from __future__ import annotations

import errno
import io
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from poprisk import cache
from tools import timeouts

PAYLOAD = {"settings": {"epochs": 1}, "seed": 0, "data": "abc", "code": "x", "device": "cpu"}
OTHER = {**PAYLOAD, "seed": 1}


@pytest.fixture(autouse=True)
def _key_outside(tmp_path_factory, monkeypatch):
    """Every test signs with its own key, kept outside the cache folders the tests use."""
    path = tmp_path_factory.mktemp("key") / "cache.key"
    monkeypatch.setenv(cache.KEY_ENV, str(path))
    return path


def net(seed: int = 0, width: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_round_trip_and_keys(tmp_path):
    store = cache.ModelCache(tmp_path)
    model = net(0)
    assert store.load(PAYLOAD, net(5)) is None  # a miss is not a warning
    assert store.save(PAYLOAD, model, [0.5, 0.25], config={"lr": 0.1})
    fresh = net(5)
    assert store.load(PAYLOAD, fresh) == [0.5, 0.25] and same(fresh, model)
    assert cache.key_of(PAYLOAD) == cache.key_of(dict(reversed(list(PAYLOAD.items()))))  # order-free
    assert cache.key_of(PAYLOAD) != cache.key_of(OTHER)
    entry = _body(store.path(cache.key_of(PAYLOAD)))
    assert entry["key"] == cache.key_of(PAYLOAD) and '"lr":0.1' in entry["config"]
    assert [p.name for p in tmp_path.iterdir()] == [f"{cache.key_of(PAYLOAD)}.pt"]  # no temp files left
    with pytest.raises(ValueError, match="JSON"):
        cache.key_of({"lr": float("nan")})
    with pytest.raises(TypeError, match="dict"):
        cache.key_of("seed=0")
    with pytest.raises(TypeError, match="Module"):
        store.load(PAYLOAD, model.state_dict())
    with pytest.raises(ValueError, match="finite"):
        store.save(PAYLOAD, model, [float("nan")])
    with pytest.raises(TypeError, match="history"):
        store.save(PAYLOAD, model, 0.5)
    assert cache.ModelCache(None).load(PAYLOAD, net()) is None and not cache.ModelCache(None).save(PAYLOAD, net(), [])


def _write_entry(path: pathlib.Path, **changes):
    """A well-formed entry for PAYLOAD with some fields replaced (checksum recomputed unless given)."""
    state = changes.pop("state_dict", net(0).state_dict())
    entry = {"format": cache.FORMAT, "version": cache.VERSION, "key": cache.key_of(PAYLOAD),
             "payload": cache.canonical_json(PAYLOAD), "config": "{}", "state_dict": state,
             "checksum": cache.state_checksum(state), "history": [0.1]}
    entry.update(changes)
    _write_signed(path, entry)


def _write_signed(path: pathlib.Path, entry, secret: bytes | None = None):
    """``entry`` as an entry file signed with ``secret`` (default: this user's key)."""
    buffer = io.BytesIO()
    torch.save(entry, buffer)
    path.write_bytes(cache.sign(secret or cache.load_secret(), cache.key_of(PAYLOAD), buffer.getvalue()))


def _body(path: pathlib.Path):
    data = path.read_bytes()
    return torch.load(io.BytesIO(data[len(cache.MAGIC) + 40:]), weights_only=True)


def _damage(kind: str, path: pathlib.Path, tmp_path: pathlib.Path):
    if kind == "swapped":  # another key's intact entry copied over this one
        other = cache.ModelCache(tmp_path / "other")
        other.save(OTHER, net(1), [0.3])
        shutil.copy(other.path(cache.key_of(OTHER)), path)
    elif kind == "nan":
        state = net(0).state_dict()
        state["0.weight"][0, 0] = float("nan")
        _write_entry(path, state_dict=state)
    elif kind == "tampered":
        state = net(0).state_dict()
        checksum = cache.state_checksum(state)
        state["2.bias"] += 1.0
        _write_entry(path, state_dict=state, checksum=checksum)
    elif kind == "recomputed":  # other weights with a recomputed checksum, written without the key
        state = net(0).state_dict()
        state["2.bias"] += 1.0
        _write_entry(path, state_dict=state)
        data = bytearray(path.read_bytes())
        data[len(cache.MAGIC) + 8:len(cache.MAGIC) + 40] = bytes(32)  # the attacker cannot compute the tag
        path.write_bytes(bytes(data))
    elif kind == "resigned":  # same, signed with a guessed key whose id was copied from the real one
        state = net(0).state_dict()
        state["2.bias"] += 1.0
        _write_entry(path, state_dict=state)
        good = path.read_bytes()
        buffer = io.BytesIO()
        torch.save(_body(path), buffer)
        forged = cache.sign(b"\x00" * 32, cache.key_of(PAYLOAD), buffer.getvalue())
        path.write_bytes(good[:len(cache.MAGIC) + 8] + forged[len(cache.MAGIC) + 8:])
    elif kind == "bitflip":  # one byte of the weights changed after signing
        cache.ModelCache(path.parent).save(PAYLOAD, net(0), [0.1])
        data = bytearray(path.read_bytes())
        data[-200] ^= 1
        path.write_bytes(bytes(data))
    elif kind == "unsigned":  # a well-formed entry of the old layout (plain torch.save, no header)
        state = net(0).state_dict()
        torch.save({"format": cache.FORMAT, "version": cache.VERSION, "key": cache.key_of(PAYLOAD),
                    "payload": cache.canonical_json(PAYLOAD), "config": "{}", "state_dict": state,
                    "checksum": cache.state_checksum(state), "history": [0.1]}, path)
    elif kind == "truncated":
        cache.ModelCache(path.parent).save(PAYLOAD, net(0), [0.1])
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "missing_field":
        _write_entry(path)
        entry = _body(path)
        del entry["checksum"]
        _write_signed(path, entry)
    elif kind == "wrong_shapes":
        _write_entry(path, state_dict=net(0, width=5).state_dict())
    elif kind == "not_a_dict":
        _write_signed(path, [1, 2, 3])
    elif kind == "bad_history":
        _write_entry(path, history=[float("inf")])
    elif kind == "payload":  # right key, payload of another run
        _write_entry(path, payload=cache.canonical_json(OTHER))
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["swapped", "nan", "tampered", "recomputed", "resigned", "bitflip",
                                  "unsigned", "truncated", "empty", "garbage",
                                  "missing_field", "wrong_shapes", "not_a_dict", "bad_history", "payload"])
def test_damaged_entry_is_reported_moved_aside_and_missed(tmp_path, kind):
    store = cache.ModelCache(tmp_path)
    path = store.path(cache.key_of(PAYLOAD))
    _damage(kind, path, tmp_path)
    model = net(7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(cache.CacheWarning, match=rf"damaged model cache entry {path}"):
        assert store.load(PAYLOAD, model) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    assert not path.exists() and len(list(tmp_path.glob(f"{path.name}.damaged-*"))) == 1
    # the retrained network is written and served afterwards
    assert store.save(PAYLOAD, net(0), [0.2])
    assert store.load(PAYLOAD, net(9)) == [0.2]


def test_unwritable_folder_warns_once_and_keeps_going(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = cache.ModelCache(blocker / "cache")  # mkdir fails: a file is in the way
    with pytest.warns(cache.CacheWarning, match="cannot write the model cache") as record:
        assert not store.save(PAYLOAD, net(0), [0.1])
        assert not store.save(OTHER, net(1), [0.1])
    assert len(record) == 1
    # a folder that refuses the temporary file (read-only, full disk): same, and nothing is left behind
    folder = tmp_path / "ro"
    folder.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache.tempfile, "mkstemp", refuse)
    with pytest.warns(cache.CacheWarning, match="Permission denied"):
        assert not cache.ModelCache(folder).save(PAYLOAD, net(0), [0.1])
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.warns(cache.CacheWarning, match="cannot write"):
            assert not cache.ModelCache(folder).save(PAYLOAD, net(0), [0.1])
    finally:
        folder.chmod(0o755)


def test_failed_write_leaves_the_old_entry_intact(tmp_path, monkeypatch):
    store = cache.ModelCache(tmp_path)
    store.save(PAYLOAD, net(0), [0.1])

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", crash)
    with pytest.warns(cache.CacheWarning, match="No space"):
        assert not cache.ModelCache(tmp_path).save(PAYLOAD, net(3), [0.9])
    monkeypatch.undo()
    model = net(5)
    assert store.load(PAYLOAD, model) == [0.1] and same(model, net(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{cache.key_of(PAYLOAD)}.pt"]


WRITER = textwrap.dedent("""
    import sys, warnings, torch
    from poprisk import cache
    warnings.simplefilter("error")  # a damaged read would raise here
    folder, role = sys.argv[1], sys.argv[2]
    payload = {"seed": 0, "data": "concurrent"}
    torch.manual_seed(0)
    model = torch.nn.Linear(300, 300)
    store = cache.ModelCache(folder)
    for i in range(40):
        if role == "writer" or i % 2:
            assert store.save(payload, model, [0.5])
        else:  # the other process reads between its own writes, while the first one writes
            got = store.load(payload, torch.nn.Linear(300, 300))
            assert got in (None, [0.5]), got
    print("ok")
""")


def test_concurrent_writers_and_readers_leave_one_complete_entry(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), role], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for role in ("writer", "both")]
    for p in procs:
        out, err = p.communicate(timeout=timeouts.child_process())
        assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{cache.key_of({'seed': 0, 'data': 'concurrent'})}.pt"]  # no temp or damaged files
    torch.manual_seed(0)
    want = torch.nn.Linear(300, 300)
    got = torch.nn.Linear(300, 300)
    assert cache.ModelCache(tmp_path).load({"seed": 0, "data": "concurrent"}, got) == [0.5] and same(got, want)


def test_code_fingerprint_covers_every_source_file(tmp_path):
    package = pathlib.Path(cache.__file__).parent
    copy = tmp_path / "poprisk"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = cache.code_fingerprint(str(copy))
    assert base == cache.code_fingerprint(str(package))  # content, not location
    for name in ("config.py", "experiments/networks.py", "models.py", "data.py", "train.py"):  # subpackages too
        edited = tmp_path / f"edit-{name.replace('/', '-')}"
        shutil.copytree(copy, edited)
        with open(edited / name, "a") as fh:
            fh.write("\n# an edit\n")
        assert cache.code_fingerprint(str(edited)) != base, name
    (copy / "new_module.py").write_text("X = 1\n")
    assert cache.code_fingerprint(str(copy)) != base


# ------------------------------------------------------------------- the write path: full disk, bad folders

def _refuse_with(exc):
    def refuse(*args, **kwargs):
        raise exc
    return refuse


DISK_FAULTS = [("os", "write", OSError(errno.ENOSPC, "No space left on device")),
               ("os", "write", RuntimeError("PytorchStreamWriter failed writing file data/0")),
               ("os", "fsync", OSError(errno.EIO, "Input/output error")),
               ("os", "replace", OSError(errno.EXDEV, "Invalid cross-device link")),
               ("tempfile", "mkstemp", OSError(errno.EDQUOT, "Disk quota exceeded")),
               ("torch", "save", RuntimeError("PytorchStreamWriter failed writing file data/0"))]


@pytest.mark.parametrize("module, name, exc", DISK_FAULTS, ids=[f"{m}.{n}-{type(e).__name__}"
                                                               for m, n, e in DISK_FAULTS])
def test_a_failing_write_warns_keeps_the_network_and_leaves_no_file(tmp_path, monkeypatch, module, name, exc):
    model = net(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    store = cache.ModelCache(tmp_path / "c")
    cache.load_secret()  # the key exists already (a full disk while creating it is the next test)
    with monkeypatch.context() as m:
        m.setattr(getattr(cache, module), name, _refuse_with(exc))
        with pytest.warns(cache.CacheWarning, match=rf"cannot write the model cache.*{type(exc).__name__}"):
            assert store.save(PAYLOAD, model, [0.1]) is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once: the second network of the run is silent
            assert store.save(OTHER, net(1), [0.1]) is False
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []  # no temporary file


def test_a_key_that_cannot_be_created_warns_and_keeps_the_network(tmp_path, monkeypatch, _key_outside):
    monkeypatch.setattr(cache.os, "write", _refuse_with(OSError(errno.ENOSPC, "No space left on device")))
    store = cache.ModelCache(tmp_path / "c")
    with pytest.warns(cache.CacheWarning, match="cannot use the model cache key.*No space"):
        assert store.save(PAYLOAD, net(0), [0.1]) is False
    monkeypatch.undo()
    assert not _key_outside.exists() and list(_key_outside.parent.iterdir()) == []  # no temporary key file


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 64 KiB tmpfs (root on Linux only; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("needs Linux mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_warns_and_cleans_up(small_filesystem):
    big = torch.nn.Linear(300, 300)  # ~360 KB of weights: cannot fit in 64 KiB
    want = {k: v.clone() for k, v in big.state_dict().items()}
    store = cache.ModelCache(small_filesystem / "c")
    with pytest.warns(cache.CacheWarning, match="No space left on device"):
        assert store.save(PAYLOAD, big, [0.1]) is False
    assert list((small_filesystem / "c").iterdir()) == []  # the partial temporary file is gone
    assert all(torch.equal(want[k], v) for k, v in big.state_dict().items())
    small = cache.ModelCache(small_filesystem / "c")  # the space was given back: a small entry fits
    assert small.save(OTHER, net(0), [0.2]) and small.load(OTHER, net(4)) == [0.2]


def test_train_models_keeps_its_networks_on_a_full_disk(tmp_path, monkeypatch):
    from poprisk import data, experiments
    cfg = experiments.SweepConfig(model_kwargs=(("hidden", (8,)),), epochs=1, batch_size=10, n_train=40, n_val=20,
                                  seeds=(0, 1), bits=(2,), methods=("uniform",))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand((100, 784), generator=g), torch.arange(100) % 10
    split = data.Split(x[:80], y[:80], x[80:], y[80:], "random")
    monkeypatch.setattr(cache.os, "write", _refuse_with(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.warns(cache.CacheWarning, match="No space left") as record:
        nets = experiments.train_models(cfg, split, cache_dir=tmp_path / "c", device="cpu", progress=False)
    monkeypatch.undo()
    assert len(record) == 1 and [t.seed for t in nets] == [0, 1] and not any(t.cached for t in nets)
    assert all(torch.isfinite(p).all() for t in nets for p in t.model.parameters())
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []


def test_the_folder_is_type_checked_and_tilde_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = cache.ModelCache("~/models")
    assert store.folder == tmp_path / "models"
    assert store.save(PAYLOAD, net(0), [0.1]) and (tmp_path / "models" / f"{cache.key_of(PAYLOAD)}.pt").exists()
    monkeypatch.setenv("POPRISK_CACHE", "~/elsewhere")
    assert cache.default_cache_dir() == tmp_path / "elsewhere"
    for bad in (5, 1.5, True, b"/tmp/x", ["/tmp"], {"dir": "/tmp"}, object()):
        with pytest.raises(TypeError, match="cache_dir"):
            cache.ModelCache(bad)
    for bad in ("", "   ", "a\0b"):
        with pytest.raises(ValueError, match="cache_dir"):
            cache.ModelCache(bad)


def test_damaged_entries_kept_aside_are_bounded(tmp_path):
    store = cache.ModelCache(tmp_path)
    path = store.path(cache.key_of(PAYLOAD))
    for i in range(cache.MAX_QUARANTINED + 5):
        path.write_bytes(b"garbage %d" % i)
        os.utime(path, ns=(i * 10**9, i * 10**9))
        with pytest.warns(cache.CacheWarning, match="damaged"):
            assert store.load(PAYLOAD, net()) is None
    aside = list(tmp_path.glob("*.damaged-*"))
    assert len(aside) == cache.MAX_QUARANTINED
    kept = sorted(int(p.read_bytes().split()[1]) for p in aside)
    assert kept == list(range(5, cache.MAX_QUARANTINED + 5))  # the newest are kept


def test_stale_temporary_files_are_swept(tmp_path):
    key = cache.key_of(PAYLOAD)
    stale, fresh, other = tmp_path / f".{key}.abc.tmp", tmp_path / f".{key}.def.tmp", tmp_path / ".notes.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = 10**9 * 1000
    os.utime(stale, ns=(old, old))
    os.utime(other, ns=(old, old))
    assert cache.ModelCache(tmp_path).save(OTHER, net(0), [0.1])
    assert not stale.exists() and fresh.exists() and other.exists()  # only our own, only old ones


# ------------------------------------------------------------------------------ the signing key

def test_the_key_is_created_private_outside_the_cache(tmp_path, _key_outside):
    assert not _key_outside.exists()
    store = cache.ModelCache(tmp_path)
    assert store.save(PAYLOAD, net(0), [0.1])
    assert _key_outside.stat().st_mode & 0o777 == 0o600
    assert len(cache.load_secret(_key_outside)) == 32 and cache.load_secret() == cache.load_secret(_key_outside)
    assert not any("key" in p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="outside the cache folder"):
        cache.ModelCache(tmp_path, key_path=tmp_path / "sub" / "cache.key")


@pytest.mark.parametrize("problem", ["group_readable", "symlink", "garbage", "directory"])
def test_an_untrustworthy_key_turns_the_cache_off_with_a_warning(tmp_path, _key_outside, problem):
    cache.ModelCache(tmp_path / "c").save(PAYLOAD, net(0), [0.1])  # a good entry under the good key
    if problem == "group_readable":
        _key_outside.chmod(0o640)
    elif problem == "symlink":
        real = _key_outside.with_name("real.key")
        _key_outside.rename(real)
        _key_outside.symlink_to(real)
    elif problem == "garbage":
        _key_outside.write_text("not hex\n")
    else:
        _key_outside.unlink()
        _key_outside.mkdir()
    store = cache.ModelCache(tmp_path / "c")
    with pytest.warns(cache.CacheWarning, match="cannot use the model cache key"):
        assert store.load(PAYLOAD, net(3)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.save(OTHER, net(1), [0.1]) is False  # off for the run, warned once
    assert len(list((tmp_path / "c").glob("*.pt"))) == 1  # nothing moved aside or written


def test_an_entry_signed_with_another_key_is_a_miss_then_replaced(tmp_path, monkeypatch):
    cache.ModelCache(tmp_path).save(PAYLOAD, net(1), [0.9])  # written by "another user"
    monkeypatch.setenv(cache.KEY_ENV, str(tmp_path.parent / f"{tmp_path.name}-second.key"))
    store = cache.ModelCache(tmp_path)
    with pytest.warns(cache.CacheWarning, match="signed with another key"):
        assert store.load(PAYLOAD, net(3)) is None
    assert list(tmp_path.glob("*.damaged-*")) == []  # not ours to move aside
    assert store.save(PAYLOAD, net(0), [0.1])
    model = net(3)
    assert store.load(PAYLOAD, model) == [0.1] and same(model, net(0))
