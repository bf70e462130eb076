"""PyTorch's compressed products for sparse derivatives (``jac_sparsity``/``hess_sparsity``).

``torch.func.vmap`` of ``torch.func.jvp`` (forward products ``J @ S``), of the pullback of
``torch.func.vjp`` (reverse products ``J.T @ W``) and of ``jvp`` of ``torch.func.grad``
(Hessian products ``H(w · c) @ S``, forward-over-reverse); one product per seed in a loop where
an operation has no batching rule. ``fun`` sees the entries as pieces of one float64 vector,
cast to their dtypes and moved to their devices. ``jit`` is accepted and ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import as_vector
from dict_minimize.backends.torch_ad import _CPU, _WHERE, _Base, _check_vector

_FORWARD_READY: list[bool] = []


def _forward_ad_ready() -> None:
    """PyTorch loads its forward-mode decompositions at the first forward product, and (2.13)
    warns there that ``torch.jit.script``, which it uses, is deprecated: PyTorch's own notice,
    not the user's to see. Loaded once, with that warning silenced."""
    if _FORWARD_READY:
        return
    load = getattr(torch.autograd.forward_ad, "_maybe_load_decompositions", None)
    if load is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*torch\.jit\.script.*deprecated", category=DeprecationWarning
            )
            load()
    _FORWARD_READY.append(True)


class TorchSparseProducts(_Base):
    """:class:`~dict_minimize._structure.types.SparseProducts` for PyTorch: ``torch.func.vmap``
    of ``torch.func.jvp`` (forward), of ``torch.func.vjp``'s pullback (reverse) and of ``jvp``
    of ``torch.func.grad`` (Hessian products); one product per seed in a loop where an
    operation has no batching rule. ``fun`` sees the entries as pieces of one float64 vector,
    cast to their dtypes."""

    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple, *, jit: Any):
        super().__init__(layout, codec, fun, args, jit)
        devices = layout.devices
        self._device = devices[0] if all(d == devices[0] for d in devices) else _CPU

    def _f(self, z: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        pieces = [
            z[a:b].reshape(shape).to(dtype=dtype, device=device)
            for a, b, shape, dtype, device in zip(
                lay.offsets[:-1], lay.offsets[1:], lay.shapes, lay.dtypes, lay.devices, strict=True
            )
        ]
        out = _check_vector(self._call(pieces), _WHERE)
        return out.reshape(-1)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float64)).to(self._device)

    def _batched(
        self, one: Callable[[torch.Tensor], torch.Tensor], seeds: np.ndarray
    ) -> np.ndarray:
        s = self._tensor(seeds)
        try:
            out = torch.func.vmap(one, in_dims=1, out_dims=1)(s)
        except (RuntimeError, NotImplementedError):  # an operation without a batching rule
            cols = [one(s[:, k]) for k in range(s.shape[1])]
            out = torch.stack(cols, dim=1) if cols else s.new_zeros((0, 0))
        return out.detach().to(device=_CPU, dtype=torch.float64).numpy()

    def value(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self._f(self._tensor(as_vector(x, self.n, "x")))
        return out.to(device=_CPU, dtype=torch.float64).numpy()

    def jvps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        _forward_ad_ready()
        z = self._tensor(as_vector(x, self.n, "x"))

        def one(s: torch.Tensor) -> torch.Tensor:
            return torch.func.jvp(self._f, (z,), (s,))[1]

        return self._batched(one, seeds)

    def vjps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        z = self._tensor(as_vector(x, self.n, "x"))
        out, pull = torch.func.vjp(self._f, z)[:2]

        def one(w: torch.Tensor) -> torch.Tensor:
            return pull(w.to(out.dtype))[0]

        return self._batched(one, seeds)

    def hvps(self, x: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        _forward_ad_ready()
        z = self._tensor(as_vector(x, self.n, "x"))
        wt = self._tensor(w)

        def weighted(v: torch.Tensor) -> torch.Tensor:
            return (wt * self._f(v).to(torch.float64)).sum()

        grad = torch.func.grad(weighted)

        def one(s: torch.Tensor) -> torch.Tensor:
            return torch.func.jvp(grad, (z,), (s,))[1]

        return self._batched(one, seeds)


def sparse_products(
    layout: Layout, codec: Codec, fun: Callable, args: tuple, *, jit: bool | None = None
) -> TorchSparseProducts:
    """:class:`~dict_minimize._structure.types.SparseProducts` by ``torch.func`` (batched with
    ``vmap``); ``jit`` is accepted and ignored."""
    return TorchSparseProducts(layout, codec, fun, args, jit=jit)


__all__ = ["TorchSparseProducts", "sparse_products"]
