"""On-disk cache of trained networks that never serves a model it did not write itself (chapter 9; used by
:func:`poprisk.experiments.train_models`).

An entry is one file ``<key>.pt``: a header (:data:`MAGIC`, the 8-byte id of the signing key, and an
HMAC-SHA256 tag) followed by the ``torch.save`` bytes of plain tensors and strings, read with
``weights_only=True``. The body holds

* ``format`` and ``version`` of this layout;
* ``key`` — the SHA-256 (first 24 hex digits) of ``payload``;
* ``payload`` — the canonical JSON of everything the trained weights depend on: the training settings and
  the seed, a hash of the exact training tensors, the hash of the library's source (:func:`code_fingerprint`),
  the torch version, the device type, the dtype and the number of CPU threads training ran with (these change
  the floating-point reductions, hence the weights);
* ``config`` — the full configuration of the run that wrote it (for a person reading the file);
* ``state_dict``, ``checksum`` (SHA-256 over every tensor's name, dtype, shape and bytes) and ``history``.

**Authenticity.** The tag is an HMAC-SHA256, under a per-user secret, of the header, the entry's key and the
whole body. The secret lives *outside* the cache folder (``$POPRISK_CACHE_KEY``, default
``~/.config/poprisk/cache.key``, created on first use with mode 0600; a key file that other users can read,
that another user owns or that is a symbolic link is refused, and a key path inside the cache folder is an
error). Someone who can write the cache folder but cannot read the key file therefore cannot make the cache
serve weights of their choosing: an altered entry — even one whose plain checksum was recomputed — fails the
tag, is reported and moved aside, and the network is retrained. The tag is checked before the body is parsed.
An entry signed with another key (another user's, or a key that was replaced) is never served and is
overwritten by the retrained network. What this does not protect against: someone who can read your key file
(your own account, root), and deletion of entries (that only costs a retrain).

:meth:`ModelCache.load` serves an entry only if the tag verifies, the body parses, every field is present,
``key`` equals the file name's key *and* the hash of ``payload``, ``payload`` equals the one asked for, the
checksum matches, every tensor is finite and has the name, shape and dtype of the model's own state, and the
history is a list of finite numbers. Anything else is *damaged*: it is reported with its path in a
:class:`CacheWarning`, moved aside to ``<key>.pt.damaged-<time>`` (the newest :data:`MAX_QUARANTINED` are
kept for inspection, older ones deleted; never read again) and the caller retrains.

**Writes.** The entry is serialised in memory, then written with ``os.write`` to a temporary file in the same
folder, flushed to disk and renamed over the entry (``os.replace`` is atomic), so a reader never sees a
half-written file and concurrent writers of one key leave one complete copy. Every failure of the write —
full disk, read-only folder, a file in the way, a key that cannot be created — is a :class:`CacheWarning`
(once per :class:`ModelCache`), never an exception: :meth:`ModelCache.save` returns ``False``, the temporary
file is removed, and the caller keeps its networks in memory. Finished work is never lost to the disk.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import io
import json
import math
import os
import pathlib
import re
import secrets
import stat
import tempfile
import time
import warnings

import torch

__all__ = ["CacheWarning", "ModelCache", "code_fingerprint", "default_cache_dir", "default_key_path", "key_of",
           "load_secret", "state_checksum"]

FORMAT = "poprisk-model-cache"
VERSION = 3
#: first bytes of every entry file; then the signing key's id and the HMAC tag
MAGIC = b"poprisk-cache-3\n"
_ID_BYTES, _TAG_BYTES = 8, 32
#: how many damaged entries are kept (moved aside) per folder; older ones are deleted
MAX_QUARANTINED = 8
#: a temporary file this old was left by a writer that died (a live write takes seconds): removed
STALE_TMP_SECONDS = 3600
KEY_ENV = "POPRISK_CACHE_KEY"
_FIELDS = ("format", "version", "key", "payload", "config", "state_dict", "checksum", "history")


class CacheWarning(UserWarning):
    """A cache entry was damaged (and moved aside) or the cache folder could not be written."""


class DamagedEntry(Exception):
    """Why a cache file cannot be served (internal: turned into a :class:`CacheWarning`)."""


class _ForeignEntry(Exception):
    """The entry is signed with another key: not served, not quarantined (it may be another user's)."""


def as_folder(value, name: str) -> pathlib.Path:
    """``value`` (``str`` or ``os.PathLike``, not empty) as a path with ``~`` expanded."""
    if isinstance(value, (bytes, bool)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or os.PathLike), got {value!r} "
                        f"({type(value).__name__})")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise ValueError(f"{name} must be a non-empty path without NUL characters, got {value!r}")
    return pathlib.Path(text).expanduser()


def default_cache_dir() -> pathlib.Path:
    """``$POPRISK_CACHE`` if set, else ``~/.cache/poprisk`` (``~`` expanded)."""
    raw = os.environ.get("POPRISK_CACHE")
    return as_folder(raw, "POPRISK_CACHE") if raw else pathlib.Path.home() / ".cache" / "poprisk"


def default_key_path() -> pathlib.Path:
    """Where the secret that signs cache entries lives: ``$POPRISK_CACHE_KEY`` if set, else
    ``$XDG_CONFIG_HOME/poprisk/cache.key`` (default ``~/.config/poprisk/cache.key``)."""
    raw = os.environ.get(KEY_ENV)
    if raw:
        return as_folder(raw, KEY_ENV)
    base = os.environ.get("XDG_CONFIG_HOME") or str(pathlib.Path.home() / ".config")
    return as_folder(base, "XDG_CONFIG_HOME") / "poprisk" / "cache.key"


class InsecureKey(OSError):
    """The key file exists but cannot be trusted (readable by others, another owner, not 64 hex digits)."""


def _read_secret(path: pathlib.Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # a planted symlink fails (ELOOP)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InsecureKey(f"the cache key {path} is not a regular file")
        if os.name == "posix":
            if info.st_uid != os.geteuid():
                raise InsecureKey(f"the cache key {path} belongs to another user (uid {info.st_uid})")
            if info.st_mode & 0o077:
                raise InsecureKey(f"the cache key {path} is accessible to other users (mode "
                                  f"{stat.S_IMODE(info.st_mode):o}); run chmod 600 on it")
        raw = os.read(fd, 256).strip()
    finally:
        os.close(fd)
    if not re.fullmatch(rb"[0-9a-f]{64}", raw):
        raise InsecureKey(f"the cache key {path} does not hold 64 hexadecimal digits")
    return bytes.fromhex(raw.decode())


def load_secret(path=None) -> bytes:
    """The 32-byte secret that signs this user's cache entries, read from ``path`` (default
    :func:`default_key_path`), created there (mode 0600, from :mod:`secrets`) if it does not exist.

    Raises ``OSError`` when the file cannot be read or created, or :class:`InsecureKey` when it exists but
    others could know it. Two processes creating it at once agree: the key is written to a temporary file and
    hard-linked into place, which never overwrites an existing key.
    """
    path = default_key_path() if path is None else as_folder(path, "key_path")
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".cache.key.", dir=path.parent)  # mode 0600
    try:
        try:
            _write_all(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its key
            pass
    finally:
        os.unlink(tmp)
    return _read_secret(path)


def _key_id(secret: bytes) -> bytes:
    return hashlib.sha256(b"poprisk-cache-key-id\0" + secret).digest()[:_ID_BYTES]


def _tag(secret: bytes, key: str, body: bytes) -> bytes:
    message = MAGIC + _key_id(secret) + key.encode() + b"\0" + body
    return hmac.new(secret, message, hashlib.sha256).digest()


def sign(secret: bytes, key: str, body: bytes) -> bytes:
    """The file contents of the entry ``key`` whose ``torch.save`` bytes are ``body``."""
    return MAGIC + _key_id(secret) + _tag(secret, key, body) + body


def _open_signed(data: bytes, *, secret: bytes, key: str) -> bytes:
    """The body of a signed entry file, or :class:`DamagedEntry` / :class:`_ForeignEntry`."""
    head = len(MAGIC) + _ID_BYTES + _TAG_BYTES
    if len(data) < head or not data.startswith(MAGIC):
        raise DamagedEntry(f"not a signed poprisk cache file of version {VERSION} (no valid header)")
    key_id, tag, body = data[len(MAGIC):len(MAGIC) + _ID_BYTES], data[len(MAGIC) + _ID_BYTES:head], data[head:]
    if key_id != _key_id(secret):
        raise _ForeignEntry
    if not hmac.compare_digest(tag, _tag(secret, key, body)):
        raise DamagedEntry("its signature does not verify: the file was altered after it was written "
                           "(tampered with or corrupted)")
    return body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[n:]


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


def canonical_json(payload: dict, name: str = "payload") -> str:
    """``payload`` as sorted, compact JSON; refuses values JSON cannot represent exactly."""
    if not isinstance(payload, dict):
        raise TypeError(f"{name} must be a dict (a cache payload), got {type(payload).__name__}")
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{name} must be plain JSON (str, int, finite float, bool, None, lists, "
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
    """The trained-network cache in ``folder`` (``None``: disabled — nothing is read or written), its entries
    signed with the secret in ``key_path`` (default :func:`default_key_path`, which must lie outside
    ``folder``).

    One instance per run: it remembers whether it has already warned that the folder cannot be written.
    """

    def __init__(self, folder, *, key_path=None):
        self.folder = None if folder is None else as_folder(folder, "cache_dir")
        self.key_path = default_key_path() if key_path is None else as_folder(key_path, "key_path")
        if self.folder is not None and self.key_path.resolve().is_relative_to(self.folder.resolve()):
            raise ValueError(f"the cache key {self.key_path} must lie outside the cache folder {self.folder} "
                             f"(set {KEY_ENV} to a file elsewhere): whoever can write the cache could read it")
        self.writable = self.folder is not None
        self._secret = None
        self._warned = self._warned_read = self._warned_foreign = False

    def path(self, key: str) -> pathlib.Path:
        return self.folder / f"{key}.pt"

    def _get_secret(self):
        """The signing secret, or ``None`` (warned once; the cache is then off) when it cannot be had."""
        if self._secret is None and self.folder is not None:
            try:
                self._secret = load_secret(self.key_path)
            except OSError as exc:
                self.folder, self.writable = None, False
                warnings.warn(f"cannot use the model cache key {self.key_path}: {exc}; the model cache is "
                              "off for this run and its networks stay in memory only", CacheWarning,
                              stacklevel=4)
        return self._secret

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
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # a miss (a file in the folder's place: no entry)
            return None
        except OSError as exc:
            if not self._warned_read:
                self._warned_read = True
                warnings.warn(f"cannot read the model cache entry {path}: {exc}; retraining", CacheWarning,
                              stacklevel=3)
            return None
        secret = self._get_secret()
        if secret is None:
            return None
        reference = {k: v.detach() for k, v in model.state_dict().items()}
        try:
            body = _open_signed(data, secret=secret, key=key)
            try:
                entry = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
            except Exception as exc:  # whatever torch/pickle/zip raise on a body we signed but cannot parse
                raise DamagedEntry(f"unreadable ({type(exc).__name__}: {exc})") from exc
            state, history = _verify(entry, key=key, payload_json=payload_json, reference=reference)
        except _ForeignEntry:
            if not self._warned_foreign:
                self._warned_foreign = True
                warnings.warn(f"model cache entry {path} is signed with another key than {self.key_path}; "
                              "not served, retraining (the new network replaces it)", CacheWarning, stacklevel=3)
            return None
        except DamagedEntry as why:
            self._quarantine(path, before, str(why))
            return None
        model.load_state_dict(state)
        return history

    def _quarantine(self, path: pathlib.Path, before: os.stat_result, why: str) -> None:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-"
                                f"{secrets.token_hex(3)}")  # two in one second keep distinct names
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
        self._prune_quarantine()
        warnings.warn(f"damaged model cache entry {path}: {why}; {where}; retraining", CacheWarning,
                      stacklevel=4)

    def _prune_quarantine(self) -> None:
        """Delete all but the newest :data:`MAX_QUARANTINED` damaged entries (they would pile up forever)."""
        try:
            aside = sorted(((p.stat().st_mtime_ns, p.name, p) for p in self.folder.glob("*.pt.damaged-*")),
                           reverse=True)
            for *_, old in aside[MAX_QUARANTINED:]:
                old.unlink()
        except OSError:  # pruning is housekeeping: a folder we cannot tidy must not stop the run
            pass

    def _sweep_stale_temporaries(self) -> None:
        """Remove temporary files of writers that died (killed mid-write) more than an hour ago."""
        cutoff = time.time() - STALE_TMP_SECONDS
        try:
            for p in self.folder.glob(".*.tmp"):
                if re.fullmatch(r"\.[0-9a-f]{24}\..+\.tmp", p.name) and p.lstat().st_mtime < cutoff:
                    p.unlink()
        except OSError:
            pass

    def save(self, payload: dict, model: torch.nn.Module, history, config: dict | None = None) -> bool:
        """Write the signed entry for ``payload`` atomically; return whether it was written.

        Never raises because of the disk: a folder that cannot be written (read-only, full, a file in the
        way) or a key that cannot be had warns once per instance and turns the cache off for writing; the
        temporary file is removed and the caller keeps its network in memory. Bad arguments (not a model, a
        history that is not finite numbers, a payload or config that is not plain JSON) are errors.
        """
        _check_model(model)
        if isinstance(history, (str, bytes)) or not hasattr(history, "__iter__"):
            raise TypeError(f"history must be a list of numbers, got {type(history).__name__}")
        try:
            history = [float(v) for v in history]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"history must be a list of numbers ({exc})") from None
        if not all(math.isfinite(v) for v in history):
            raise ValueError("history must hold finite numbers")
        key = key_of(payload)
        config_json = canonical_json({} if config is None else config, "config")
        if not self.writable:
            return False
        secret = self._get_secret()
        if secret is None:
            return False
        tmp = None
        try:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            entry = {"format": FORMAT, "version": VERSION, "key": key, "payload": canonical_json(payload),
                     "config": config_json, "state_dict": state,
                     "checksum": state_checksum(state), "history": history}
            buffer = io.BytesIO()  # serialised in memory: the disk only ever sees os.write, hence OSError
            torch.save(entry, buffer)
            data = sign(secret, key, buffer.getvalue())
            self.folder.mkdir(parents=True, exist_ok=True)
            self._sweep_stale_temporaries()
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path(key))
            tmp = None
            return True
        except (OSError, RuntimeError) as exc:  # RuntimeError: torch's writer, should it ever fail
            self.writable = False
            if not self._warned:
                self._warned = True
                warnings.warn(f"cannot write the model cache in {self.folder}: {type(exc).__name__}: {exc}; "
                              "the networks of this run stay in memory only", CacheWarning, stacklevel=3)
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
