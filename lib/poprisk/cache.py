"""On-disk cache of trained networks that never serves a wrong model (chapter 9; used by
:func:`poprisk.experiments.train_models`).

An entry is one file ``<key>.pt`` (``torch.save`` of plain tensors and strings, read with
``weights_only=True``) holding

* ``format`` and ``version`` of this layout;
* ``key`` — the SHA-256 (first 24 hex digits) of ``payload``;
* ``payload`` — the canonical JSON of everything the trained weights depend on: the training settings and
  the seed, a hash of the exact training tensors, the hash of the library's source (:func:`code_fingerprint`),
  the torch version, the device type, the dtype and the number of CPU threads training ran with (these change
  the floating-point reductions, hence the weights);
* ``config`` — the full configuration of the run that wrote it (for a person reading the file; not verified);
* ``state_dict``, ``checksum`` (SHA-256 over every tensor's name, dtype, shape and bytes) and ``history``.

:meth:`ModelCache.load` serves an entry only if the file parses, every field is present, ``key`` equals the
file name's key *and* the hash of ``payload``, ``payload`` equals the one asked for, the checksum matches,
every tensor is finite and has the name, shape and dtype of the model's own state, and the history is a list
of finite numbers. Anything else — truncated, empty or garbage files, a checkpoint copied over another key,
NaN weights, wrong shapes, missing fields — is *damaged*: it is reported with its path in a
:class:`CacheWarning`, moved aside to ``<key>.pt.damaged-<time>`` (kept for inspection, never read again) and
the caller retrains. Writes go to a temporary file in the same folder, are flushed to disk and renamed over
the entry (``os.replace`` is atomic), so a reader never sees a half-written file and concurrent writers of one
key simply leave one complete copy. A folder that cannot be written warns once and the run continues with the
networks in memory: finished work is never lost to a full disk or a read-only folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import pathlib
import tempfile
import time
import warnings

import torch

__all__ = ["CacheWarning", "ModelCache", "code_fingerprint", "default_cache_dir", "key_of", "state_checksum"]

FORMAT = "poprisk-model-cache"
VERSION = 2
_FIELDS = ("format", "version", "key", "payload", "config", "state_dict", "checksum", "history")


class CacheWarning(UserWarning):
    """A cache entry was damaged (and moved aside) or the cache folder could not be written."""


class DamagedEntry(Exception):
    """Why a cache file cannot be served (internal: turned into a :class:`CacheWarning`)."""


def default_cache_dir() -> pathlib.Path:
    """``$POPRISK_CACHE`` if set, else ``~/.cache/poprisk``."""
    return pathlib.Path(os.environ.get("POPRISK_CACHE") or pathlib.Path.home() / ".cache" / "poprisk")


def code_fingerprint(package_dir: str | None = None) -> str:
    """SHA-256 (first 16 hex digits) of every ``*.py`` file of the poprisk package (names and bytes, sorted).

    The whole package, not a hand-kept list of the modules that training uses: a list goes stale the day the
    seeding or the model builder moves to another module, and a stale list serves networks trained by old
    code. The cost is that any library edit retrains, which on the book's networks takes seconds.
    """
    if package_dir is None:
        return _loaded_code_fingerprint()
    digest = hashlib.sha256()
    folder = pathlib.Path(package_dir)
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _loaded_code_fingerprint() -> str:
    # once per process: the code that trains is the code that was imported, whatever is edited later
    return code_fingerprint(str(pathlib.Path(__file__).parent))


def canonical_json(payload: dict) -> str:
    """``payload`` as sorted, compact JSON; refuses values JSON cannot represent exactly."""
    if not isinstance(payload, dict):
        raise TypeError(f"a cache payload must be a dict, got {type(payload).__name__}")
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cache payload must be plain JSON (str, int, finite float, bool, None, lists, "
                         f"dicts): {exc}") from exc


def key_of(payload: dict) -> str:
    """The cache key of ``payload``: SHA-256 of its canonical JSON, first 24 hex digits."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:24]


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def state_checksum(state_dict: dict) -> str:
    """SHA-256 over the name, dtype, shape and bytes of every tensor of ``state_dict`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(t, torch.Tensor):
            raise DamagedEntry(f"state_dict[{name!r}] is a {type(t).__name__}, not a tensor")
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(_tensor_bytes(t))
    return digest.hexdigest()


def _verify(entry, *, key: str, payload_json: str, reference: dict) -> tuple[dict, list[float]]:
    """The state dict and history of a parsed entry, or :class:`DamagedEntry` saying what is wrong."""
    if not isinstance(entry, dict):
        raise DamagedEntry(f"the file holds a {type(entry).__name__}, not a cache entry")
    missing = [f for f in _FIELDS if f not in entry]
    if missing:
        raise DamagedEntry(f"missing field(s) {missing}")
    if entry["format"] != FORMAT or entry["version"] != VERSION:
        raise DamagedEntry(f"format {entry['format']!r} version {entry['version']!r}, expected {FORMAT!r} "
                           f"version {VERSION}")
    if entry["key"] != key:
        raise DamagedEntry(f"it is the entry of key {entry['key']!r}, not of {key!r} (a copied or swapped file)")
    try:
        stored = json.loads(entry["payload"]) if isinstance(entry["payload"], str) else None
    except ValueError:
        stored = None
    if not isinstance(stored, dict) or key_of(stored) != key:
        raise DamagedEntry("its payload does not hash to its key")
    if entry["payload"] != payload_json:
        raise DamagedEntry("its payload (training settings, data, code, environment) differs from this run's")
    state = entry["state_dict"]
    if not isinstance(state, dict):
        raise DamagedEntry("state_dict is not a dict")
    if state_checksum(state) != entry["checksum"]:
        raise DamagedEntry("the weights do not match their checksum")
    if set(state) != set(reference):
        raise DamagedEntry(f"its tensors {sorted(set(state) ^ set(reference))} do not match the model's")
    for name, ref in reference.items():
        t = state[name]
        if tuple(t.shape) != tuple(ref.shape) or t.dtype != ref.dtype:
            raise DamagedEntry(f"{name} has shape {tuple(t.shape)} / {t.dtype}, the model needs "
                               f"{tuple(ref.shape)} / {ref.dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise DamagedEntry(f"{name} has non-finite values")
    history = entry["history"]
    if not isinstance(history, list) or not all(isinstance(v, float) and math.isfinite(v) for v in history):
        raise DamagedEntry("history is not a list of finite floats")
    return state, history


def _check_model(model) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


class ModelCache:
    """The trained-network cache in ``folder`` (``None``: disabled — nothing is read or written).

    One instance per run: it remembers whether it has already warned that the folder cannot be written.
    """

    def __init__(self, folder):
        self.folder = None if folder is None else pathlib.Path(folder)
        self.writable = self.folder is not None
        self._warned = self._warned_read = False

    def path(self, key: str) -> pathlib.Path:
        return self.folder / f"{key}.pt"

    def load(self, payload: dict, model: torch.nn.Module):
        """Load the entry for ``payload`` into ``model`` and return its history, or ``None`` on a miss.

        A damaged entry warns (naming its path and the reason), is moved aside, and counts as a miss.
        """
        _check_model(model)
        payload_json = canonical_json(payload)
        if self.folder is None:
            return None
        key = key_of(payload)
        path = self.path(key)
        try:
            before = path.stat()
        except (FileNotFoundError, NotADirectoryError):  # a miss (a file in the folder's place: no entry)
            return None
        except OSError as exc:
            if not self._warned_read:
                self._warned_read = True
                warnings.warn(f"cannot read the model cache entry {path}: {exc}; retraining", CacheWarning,
                              stacklevel=3)
            return None
        reference = {k: v.detach() for k, v in model.state_dict().items()}
        try:
            try:
                entry = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # truncated, empty, garbage: whatever torch/pickle/zip raise
                raise DamagedEntry(f"unreadable ({type(exc).__name__}: {exc})") from exc
            state, history = _verify(entry, key=key, payload_json=payload_json, reference=reference)
        except DamagedEntry as why:
            self._quarantine(path, before, str(why))
            return None
        model.load_state_dict(state)
        return history

    def _quarantine(self, path: pathlib.Path, before: os.stat_result, why: str) -> None:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            now = path.stat()
            # another process may already have replaced the damaged file by a good one: leave that one alone
            if (now.st_ino, now.st_size, now.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns):
                os.replace(path, aside)
                where = f"moved to {aside.name}"
            else:
                where = "already replaced by another process"
        except FileNotFoundError:
            where = "already moved by another process"
        except OSError as exc:
            where = f"could not be moved aside ({exc})"
        warnings.warn(f"damaged model cache entry {path}: {why}; {where}; retraining", CacheWarning,
                      stacklevel=4)

    def save(self, payload: dict, model: torch.nn.Module, history, config: dict | None = None) -> bool:
        """Write the entry for ``payload`` atomically; return whether it was written.

        A folder that cannot be written (read-only, full, a file in the way) warns once per instance and
        turns the cache off for writing; the caller keeps its network in memory.
        """
        _check_model(model)
        if isinstance(history, (str, bytes)) or not hasattr(history, "__iter__"):
            raise TypeError(f"history must be a list of numbers, got {type(history).__name__}")
        history = [float(v) for v in history]
        if not all(math.isfinite(v) for v in history):
            raise ValueError("history must hold finite numbers")
        key = key_of(payload)
        config_json = canonical_json(config or {})
        if not self.writable:
            return False
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        entry = {"format": FORMAT, "version": VERSION, "key": key, "payload": canonical_json(payload),
                 "config": config_json, "state_dict": state,
                 "checksum": state_checksum(state), "history": history}
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                torch.save(entry, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
            return True
        except OSError as exc:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            self.writable = False
            if not self._warned:
                self._warned = True
                warnings.warn(f"cannot write the model cache in {self.folder}: {exc}; the networks of this "
                              "run stay in memory only", CacheWarning, stacklevel=3)
            return False
