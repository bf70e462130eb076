"""PyTorch backend: tensors of any floating dtype, on any device.

Hot path when all entries share a device: one float64 -> device (and dtype) transfer of the whole
vector, zero-copy views per key made leaves that require grad; on the way back one concatenation
of the gradients (and the value) on the device, one cast to float64 and one transfer to the host.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from dict_minimize._errors import grad_shape, grad_type, not_floating, type_name
from dict_minimize._layout import Layout
from dict_minimize._types import Backend, Codec, EntryInfo


def _np_dtype(dtype: torch.dtype) -> np.dtype | None:
    if dtype == torch.bfloat16:
        try:
            import ml_dtypes
        except ImportError:
            return None
        return np.dtype(ml_dtypes.bfloat16)
    try:
        return np.dtype(torch.empty((), dtype=dtype).numpy().dtype)
    except (TypeError, RuntimeError):
        return None


def owns(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


def describe(key: Hashable, value: Any) -> EntryInfo:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"x0[{key!r}] is a {type_name(value)}; expected a torch.Tensor")
    if not value.is_floating_point():
        raise not_floating("x0", key, value.dtype)
    if value.layout != torch.strided:
        raise TypeError(f"x0[{key!r}] is a {value.layout} tensor; expected a dense tensor")
    return EntryInfo(tuple(value.shape), value.dtype, _np_dtype(value.dtype), value.device)


def to_numpy(value: Any) -> np.ndarray:
    return value.detach().to(device="cpu", dtype=torch.float64).numpy()


def make_codec(layout: Layout) -> Codec:
    keys, shapes, dtypes, devices = layout.keys, layout.shapes, layout.dtypes, layout.devices
    sizes = list(layout.sizes)
    offsets = layout.offsets
    device = devices[0] if all(d == devices[0] for d in devices) else None
    dtype = dtypes[0] if all(d == dtypes[0] for d in dtypes) else None
    cpu = torch.device("cpu")

    def unflatten(vec: np.ndarray, *, for_objective: bool) -> list[torch.Tensor]:
        host = torch.from_numpy(np.ascontiguousarray(vec, dtype=np.float64))
        if device is not None and dtype is not None:
            # one transfer and conversion of the whole vector (a copy: never alias SciPy's x)
            flat = host.to(device=device, dtype=dtype, copy=True)
            out = [p.view(s) for p, s in zip(torch.split(flat, sizes), shapes, strict=True)]
        elif device is not None:
            flat = host.to(device=device)  # one transfer; the per-key casts below copy
            out = [
                p.view(s).to(dtype=dt, copy=True)
                for p, s, dt in zip(torch.split(flat, sizes), shapes, dtypes, strict=True)
            ]
        else:  # entries on several devices: one transfer per key
            out = [
                host[a:b].view(s).to(device=dev, dtype=dt, copy=True)
                for a, b, s, dt, dev in zip(
                    offsets[:-1], offsets[1:], shapes, dtypes, devices, strict=True
                )
            ]
        if for_objective:
            for t in out:
                t.requires_grad_(True)
        return out

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        flats = []
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            if not isinstance(g, torch.Tensor):
                raise grad_type(key, g, "a torch.Tensor")
            if g.shape != shape:
                raise grad_shape(key, g.shape, shape)
            if not g.is_floating_point():
                raise not_floating("gradient", key, g.dtype)
            flats.append(g.detach().reshape(-1))
        if device is None:  # several devices: gather on the host
            parts = [f.to(device=cpu, dtype=torch.float64) for f in flats]
            return value, torch.cat(parts).numpy()
        with_value = (
            isinstance(value, torch.Tensor)
            and value.dim() == 0
            and value.is_floating_point()
            and value.device == device
        )
        if with_value:  # the value rides along in the same transfer
            flats.insert(0, value.detach().reshape(1))
        try:
            flat = torch.cat(flats)
        except RuntimeError as exc:
            found = sorted({str(f.device) for f in flats})
            raise ValueError(
                f"gradients must be on the device of x0 ({device}); got devices {found}"
            ) from exc
        host = flat.to(device=cpu, dtype=torch.float64).numpy()
        if with_value:
            return float(host[0]), host[1:]
        return value, host

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="torch", owns=owns, describe=describe, make_codec=make_codec, to_numpy=to_numpy
)
