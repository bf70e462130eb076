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

from dict_minimize._errors import at, entry, grad_shape, grad_type, not_floating, type_name
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend, Codec, EntryInfo
from dict_minimize.backends import torch_ad, torch_sparse_ad
from dict_minimize.backends._runs import shape_runs


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
        raise TypeError(f"{at('x0', key)} is a {type_name(value)}; expected a torch.Tensor")
    if not value.is_floating_point():
        raise not_floating("x0", key, value.dtype)
    if value.layout != torch.strided:
        raise TypeError(f"{at('x0', key)} is a {value.layout} tensor; expected a dense tensor")
    if value.is_meta:
        raise TypeError(
            f"{at('x0', key)} is on PyTorch's 'meta' device, which holds no data; move it to a "
            "real device (e.g. .to('cpu'))"
        )
    return EntryInfo(tuple(value.shape), value.dtype, _np_dtype(value.dtype), value.device)


def to_numpy(value: Any) -> np.ndarray:
    return value.detach().to(device="cpu", dtype=torch.float64).numpy()


def from_np(x: Any, dtype: Any) -> torch.Tensor:
    """The original package's ``from_np``: a new leaf tensor of ``dtype`` that requires grad.

    ``dtype`` is a ``torch.dtype`` or its name (``"float32"``); ``x`` an array or a scalar.

    Example:
        >>> import numpy as np, torch
        >>> from dict_minimize.torch_api import from_np, to_np
        >>> x = from_np(np.ones(2), torch.float16)
        >>> x.dtype, x.requires_grad, to_np(x)
        (torch.float16, True, array([1., 1.], dtype=float16))
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"from_np needs a floating torch dtype; got {dtype!r}")
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(f"from_np needs a floating-point array; got dtype {arr.dtype}")
    native = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return torch.as_tensor(np.array(native)).to(dtype).requires_grad_(True)


def to_np(x: Any) -> np.ndarray:
    """The original package's ``to_np``: the tensor as a NumPy array on the host, in its dtype
    (bfloat16, which NumPy lacks, as float32)."""
    t = x.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


_CPU = torch.device("cpu")
_TENSOR_TYPES = frozenset({torch.Tensor, torch.nn.Parameter})
#: dtypes whose conversion NumPy does on the CPU (bfloat16 has no NumPy dtype: torch converts)
_NP_FLOATS: dict[torch.dtype, np.dtype] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}


def _to_device(
    vec: np.ndarray, device: torch.device, dtype: torch.dtype, share: bool = False
) -> torch.Tensor:
    """The one host->device transfer of an evaluation: SciPy's float64 vector as one new tensor
    of ``dtype`` on ``device`` (a copy: the objective never aliases SciPy's ``x``; ``share``:
    float64 on the CPU shares ``vec``'s memory, for a private ``vec`` nobody writes)."""
    if device.type == "cpu" and dtype in _NP_FLOATS:
        # on the CPU NumPy converts several times faster than Tensor.to; from_numpy shares it
        return torch.from_numpy(vec.astype(_NP_FLOATS[dtype], copy=not share))
    return torch.from_numpy(vec).to(device=device, dtype=dtype, copy=True)


def _to_host(pieces: list[torch.Tensor]) -> np.ndarray:
    """The one device->host transfer of an evaluation: 1-D tensors on one device joined into a
    new float64 vector. On the CPU, NumPy joins zero-copy views of them in one pass; on another
    device they are joined there and cross in one copy."""
    if pieces[0].device.type == "cpu":
        views = [p.numpy() if p.dtype in _NP_FLOATS else p.float().numpy() for p in pieces]
        return np.concatenate(views, dtype=np.float64, casting="unsafe")
    flat = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    return flat.to(device=_CPU, dtype=torch.float64).numpy()


def _check_grads(keys: Sequence[Any], grads: Sequence[Any], shapes: Sequence[tuple]) -> None:
    """Per-key validation with messages naming the key (the slow path, for odd gradients)."""
    for key, g, shape in zip(keys, grads, shapes, strict=True):
        if not isinstance(g, torch.Tensor):
            raise grad_type(key, g, "a torch.Tensor")
        if g.shape != shape:
            raise grad_shape(key, g.shape, shape)
        if not g.is_floating_point():
            raise not_floating("gradient", key, g.dtype)
        if g.layout != torch.strided:
            raise TypeError(
                f"gradient for {entry(key)} is a {g.layout} tensor; expected a dense tensor (call "
                ".to_dense() on it)"
            )


def make_codec(layout: Layout) -> Codec:
    """One transfer each way per evaluation, and a few calls per run of equal shapes.

    With every entry on one device: ``unflatten`` moves SciPy's vector in one transfer (already
    in the entries' dtype when they share one; on the CPU NumPy does the conversion), then cuts
    it into zero-copy views, one ``unbind`` per run of equal shapes, made leaves that require
    grad; ``flatten`` checks all gradients with list-wide comparisons, stacks each run and moves
    the runs and the value in one transfer (joined by ``cat`` on an accelerator; on the CPU,
    NumPy joins zero-copy views of them into the float64 vector in one pass).
    Entries on several devices: one transfer per key each way.
    """
    keys, shapes, dtypes, devices = layout.keys, layout.shapes, layout.dtypes, layout.devices
    offsets = layout.offsets
    device = devices[0] if all(d == devices[0] for d in devices) else None
    dtype = dtypes[0] if all(d == dtypes[0] for d in dtypes) else None
    transfer = dtype if dtype is not None else torch.float64
    runs = shape_runs(layout)
    run_sizes = [r.stop - r.start for r in runs]
    t_shapes = [torch.Size(s) for s in shapes]

    def split(flat: torch.Tensor) -> list[torch.Tensor]:
        blocks = (flat,) if len(runs) == 1 else flat.split_with_sizes(run_sizes)
        out: list[torch.Tensor] = []
        for r, block in zip(runs, blocks, strict=True):
            if dtype is None:
                block = block.to(dtype=r.dtype)
            if r.length == 1:
                out.append(block.view(r.shape))
            else:
                out.extend(block.view(r.block_shape).unbind(0))
        return out

    def unflatten(
        vec: np.ndarray, *, for_objective: bool, owned: bool = False
    ) -> list[torch.Tensor]:
        if device is not None:
            # leaves that require grad cannot be written in place: an owned vec can be shared
            out = split(_to_device(vec, device, transfer, share=owned and for_objective))
        else:  # entries on several devices: one transfer per key
            host = torch.from_numpy(np.ascontiguousarray(vec, dtype=np.float64))
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
        fast = (
            {type(g) for g in grads} <= _TENSOR_TYPES
            and [g.shape for g in grads] == t_shapes
            and all(d.is_floating_point for d in {g.dtype for g in grads})
            and {g.layout for g in grads} == {torch.strided}
        )
        if not fast:
            _check_grads(keys, grads, shapes)
        if device is None:  # several devices: gather on the host
            parts = [g.detach().reshape(-1).to(device=_CPU, dtype=torch.float64) for g in grads]
            return value, torch.cat(parts).numpy()
        with_value = (
            isinstance(value, torch.Tensor)
            and value.dim() == 0
            and value.is_floating_point()
            and value.device == device
        )
        with torch.no_grad():
            pieces = [value.reshape(1)] if with_value else []
            for r in runs:
                if r.length == 1:
                    pieces.append(grads[r.first].reshape(-1))
                else:
                    try:
                        block = torch.stack(list(grads[r.first : r.first + r.length]))
                    except RuntimeError:  # gradients on several devices, or mixed dtypes
                        pieces.extend(g.reshape(-1) for g in grads[r.first : r.first + r.length])
                        continue
                    pieces.append(block.view(-1))
            found = {p.device for p in pieces}
            if found != {device}:
                raise ValueError(
                    f"gradients must be on the device of x0 ({device}); got devices "
                    f"{sorted(str(d) for d in found)}"
                )
            host = _to_host(pieces)
        if with_value:
            return float(host[0]), host[1:]
        return value, host

    return Codec(unflatten=unflatten, flatten=flatten)


def _set_threads(n: int) -> None:
    """``torch.set_num_threads(n)``, skipped when it is already ``n`` (the call is not free)."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


BACKEND = Backend(
    name="torch",
    owns=owns,
    describe=describe,
    make_codec=make_codec,
    to_numpy=to_numpy,
    scalar_ad=torch_ad.scalar_ad,
    vector_ad=torch_ad.vector_ad,
    intra_op_threads=(torch.get_num_threads, _set_threads),
    sparse_products=torch_sparse_ad.sparse_products,
)
