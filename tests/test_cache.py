"""Tests of poprisk.cache: an entry is served only when it is the right, intact, finite model; a damaged entry
is reported by path, moved aside and counts as a miss; an unwritable folder warns once; concurrent writers
leave one complete entry; editing the library changes the key (issue 14, classes 1 and 2)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from poprisk import cache

PAYLOAD = {"settings": {"epochs": 1}, "seed": 0, "data": "abc", "code": "x", "device": "cpu"}
OTHER = {**PAYLOAD, "seed": 1}


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
    entry = torch.load(store.path(cache.key_of(PAYLOAD)), weights_only=True)
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
    torch.save(entry, path)


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
        entry = torch.load(path, weights_only=True)
        del entry["checksum"]
        torch.save(entry, path)
    elif kind == "wrong_shapes":
        _write_entry(path, state_dict=net(0, width=5).state_dict())
    elif kind == "not_a_dict":
        torch.save([1, 2, 3], path)
    elif kind == "bad_history":
        _write_entry(path, history=[float("inf")])
    elif kind == "payload":  # right key, payload of another run
        _write_entry(path, payload=cache.canonical_json(OTHER))
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["swapped", "nan", "tampered", "truncated", "empty", "garbage",
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
        out, err = p.communicate(timeout=120)
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
