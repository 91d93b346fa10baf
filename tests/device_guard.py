"""A pretend accelerator on the CPU: catches device-path bugs (``.numpy()`` on a GPU tensor, CPU/GPU mixing)
without a GPU.

``POPRISK_DEVICE=cpu:0`` makes :func:`poprisk.config.device` return ``torch.device("cpu", 0)`` — a device that
computes on the CPU but is *not* the plain ``cpu`` that ``.cpu()`` and ``.to("cpu")`` name. A
``TorchFunctionMode`` then tracks which tensors live "on the device":

* a tensor is on the device when it was created or moved with ``device=cpu:0`` (``.to``, factories,
  ``Module.to``), or computed from a tensor on the device (any torch op, attribute reads such as ``.grad``);
* ``t.device`` of such a tensor reads ``cpu:0``, so ``torch.zeros(..., device=t.device)`` follows it;
* ``.cpu()`` / ``.to("cpu")`` give a host tensor;
* ``.numpy()`` or ``numpy.asarray`` (``__array__``) of a device tensor raises :class:`DeviceLeak`, as CUDA does
  (``TypeError: can't convert cuda:0 device type tensor to numpy``); an op that mixes a device tensor with a
  host tensor of more than one element raises :class:`DeviceMix` (CUDA: "Expected all tensors to be on the
  same device"). ``.item()``/``.tolist()``/``float()`` stay allowed: they work on CUDA.

Used by ``tests/test_device_path.py`` (library) and ``make device-path`` (every notebook in FAST mode, with
:func:`install` run in a first cell).
"""

from __future__ import annotations

import os
import sys

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

ACCEL = torch.device("cpu", 0)
HOST = torch.device("cpu")
_TAG = "_poprisk_on_device"
# Ops that accept a host tensor beside a device tensor on CUDA too: indexing with host indices, copies.
_MIX_OK = {torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.copy_, torch.Tensor.to,
           torch.Tensor.set_}


class DeviceLeak(TypeError):
    """``.numpy()`` of a tensor that would live on the GPU."""


class DeviceMix(RuntimeError):
    """An op mixing a tensor on the GPU with a (non-scalar) tensor on the host."""


def on_device(t) -> bool:
    return isinstance(t, torch.Tensor) and getattr(t, _TAG, False)


def _mark(t, value: bool):
    if isinstance(t, torch.Tensor):
        try:
            setattr(t, _TAG, value)
        except (AttributeError, RuntimeError):  # e.g. some C-level tensor wrappers
            pass
    return t


def _device_arg(func, args, kwargs):
    """The device an op targets, if it names one (``.to(dev)``, ``device=`` of a factory)."""
    dev = kwargs.get("device")
    if dev is None and func in (torch.Tensor.to,) and len(args) > 1:
        for a in args[1:]:
            if isinstance(a, (str, torch.device)):
                dev = a
                break
    if dev is None:
        return None
    try:
        return torch.device(dev)
    except (RuntimeError, TypeError):
        return None


class DeviceGuard(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and on_device(args[0]):
            raise DeviceLeak("can't convert a tensor on the device (POPRISK_DEVICE=cpu:0, standing in for "
                             "cuda) to numpy: call .cpu() first")
        if func == torch.Tensor.device.__get__ and on_device(args[0]):
            return ACCEL
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        tagged = any(on_device(t) for t in inputs)
        name = getattr(func, "__name__", "")
        if func == torch.Tensor.data.__set__:  # param.data = t: the parameter now lives where t lives
            result = func(*args, **kwargs)
            _mark(args[0], on_device(args[1]))
            return result
        if tagged and func not in _MIX_OK and not name.startswith("_"):
            host = [t for t in inputs if not on_device(t) and t.numel() > 1]
            if host:
                raise DeviceMix(f"{getattr(func, '__name__', func)} mixes tensors on the device with host "
                                f"tensors of shapes {[tuple(t.shape) for t in host]}")
        result = func(*args, **kwargs)
        target = _device_arg(func, args, kwargs)
        if func is torch.Tensor.cpu or (target is not None and target == HOST):
            if any(r is a for r in tree_flatten(result)[0] for a in inputs):
                result = tree_map(lambda r: r.view_as(r) if isinstance(r, torch.Tensor) else r, result)
            return tree_map(lambda r: _mark(r, False), result)
        if target == ACCEL or (tagged and target is None):
            tree_map(lambda r: _mark(r, True), result)
        return result


_ACTIVE: list[DeviceGuard] = []


def install() -> DeviceGuard:
    """Turn the guard on for the rest of the process (a notebook's first cell)."""
    os.environ["POPRISK_DEVICE"] = "cpu:0"
    guard = DeviceGuard()
    guard.__enter__()
    _ACTIVE.append(guard)
    return guard


def requested_device() -> str:
    """``POPRISK_TEST_DEVICE``: ``cpu`` (default: the device-path tests run on the pretend accelerator) or
    ``cuda`` (tools/gpu_check.sh: they run on the real GPU)."""
    name = os.environ.get("POPRISK_TEST_DEVICE", "cpu").strip().lower()
    if name not in ("cpu", "cuda"):
        raise ValueError(f"POPRISK_TEST_DEVICE must be 'cpu' or 'cuda', got {name!r}")
    return name


def uninstall() -> None:
    while _ACTIVE:
        _ACTIVE.pop().__exit__(None, None, None)


def run_notebooks(paths, timeout: int | None = None) -> dict[str, str]:
    """Execute each notebook (FAST mode) with the guard installed by an injected first cell; return
    ``{notebook: error}`` for those that failed (``make device-path``)."""
    import pathlib
    import re

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    here = pathlib.Path(__file__).resolve().parent
    if timeout is None:  # tools/timeouts.py names every timeout
        sys.path.insert(0, str(here.parent))
        from tools import timeouts
        timeout = timeouts.notebook_cell()
    os.environ.update(POPRISK_FAST="1", POPRISK_PROGRESS="0", POPRISK_DEVICE="cpu:0")
    failures = {}
    for path in map(pathlib.Path, paths):
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(here)!r}); import device_guard; device_guard.install()"))
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except CellExecutionError as exc:
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
            where = [ln.strip() for ln in lines if ln.lstrip().startswith(("--->", "Cell In[", "File "))]
            failures[path.name] = " | ".join([*where[-4:], lines[-1]])
        print(f"{path.name}: {failures.get(path.name, 'ok')}", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(1 if run_notebooks(sys.argv[1:]) else 0)
