"""PyTorch's batched evaluations (``minimize_batched``): ``torch.func.vmap`` of one problem's
objective, or the user's own batched function (``vectorized=True``).

Each call converts the (k, n) float64 matrix of the active problems into stacked tensors in one
pass (one transfer per key of the matrix's columns, on x0's device and dtypes) and the values
and gradients back into one (k,) and one (k, n) float64 array.

With ``vectorized=False``: ``jac='autodiff'`` runs ``vmap(grad_and_value(fun))``; ``jac=True``
runs ``vmap(fun)``, and where ``fun`` cannot run under ``vmap`` (it calls
``torch.autograd.grad`` or ``.backward()``, which ``vmap`` does not support) the evaluator falls
back, for good, to a loop over the rows (one call of ``fun`` per problem with leaves that
require grad, as ``minimize`` calls it: correct, with no speed-up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from dict_minimize._structure.layout import Layout
from dict_minimize.backends._batch import check_values, split_pair, stacked_grads, take_rows

_CPU = torch.device("cpu")


def _shape(t: Any) -> Any:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


class TorchBatch:
    """:class:`~dict_minimize._structure.types.BatchEval` for PyTorch."""

    def __init__(
        self,
        layout: Layout,
        fun: Callable,
        args: tuple,
        batch_args: tuple,
        *,
        mode: str,
        vectorized: bool,
    ) -> None:
        self.layout, self.fun, self.args = layout, fun, args
        # NumPy arrays and numbers among the per-problem data: tensors, so that vmap maps them
        self.batch_args = tuple(
            take_rows(a, lambda t: t if isinstance(t, torch.Tensor) else torch.as_tensor(t))
            for a in batch_args
        )
        self.mode, self.vectorized = mode, vectorized
        found: list[Any] = []

        def collect(t: Any) -> Any:
            found.append(t)
            return t

        take_rows(self.batch_args, collect)
        self._batch = int(found[0].shape[0]) if found and found[0].dim() else None
        self.looped = False  # jac=True, vectorized=False, fun not vmappable: per-row calls
        build, shared = layout.build, args

        def one(leaves: tuple, *rows: Any) -> Any:
            return fun(build(list(leaves)), *rows, *shared)

        self._one = one
        self._vg = torch.func.vmap(torch.func.grad_and_value(one))
        self._pair = torch.func.vmap(one)

        def hvp_one(leaves: tuple, p: tuple, *rows: Any) -> Any:
            # reverse over reverse: the gradient of <grad, p> (forward-mode jvp scripts a
            # decomposition with the deprecated torch.jit.script on first use)
            def dot(lv: tuple) -> Any:
                g = torch.func.grad(one)(lv, *rows)
                return sum((gi * pi).sum() for gi, pi in zip(g, p, strict=True))

            return torch.func.grad(dot)(leaves)

        self._hvp = torch.func.vmap(hvp_one)

    # -- conversions: one pass over the matrix each way --------------------------------------
    def _leaves(self, X: np.ndarray, grad: bool = False) -> list[torch.Tensor]:
        host = torch.from_numpy(np.ascontiguousarray(X))
        k = X.shape[0]
        lay = self.layout
        out = []
        for (a, b), shape, dt, dev in zip(
            zip(lay.offsets[:-1], lay.offsets[1:], strict=True),
            lay.shapes,
            lay.dtypes,
            lay.devices,
            strict=True,
        ):
            t = host[:, a:b].reshape((k, *shape)).to(device=dev, dtype=dt, copy=True)
            out.append(t.requires_grad_(True) if grad else t)
        return out

    def _host(self, values: Any, grads: Sequence[Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(values, torch.Tensor):
            values = torch.as_tensor(np.asarray(values, dtype=np.float64))
        check_values(tuple(values.shape), k)
        with torch.no_grad():
            f = values.detach().to(device=_CPU, dtype=torch.float64).numpy()
            if not grads:
                return f, np.zeros((k, 0))
            cols = [g.detach().reshape(k, -1).to(device=_CPU, dtype=torch.float64) for g in grads]
            G = torch.cat(cols, dim=1).numpy()
        return np.array(f, dtype=np.float64), G

    def _rows(self, idx: np.ndarray) -> tuple:
        if self._everyone(idx):  # every problem (the first rounds): no gather, no copy
            return self.batch_args
        index = torch.from_numpy(idx)

        def take(t: Any) -> Any:
            return t[index.to(t.device)]

        return tuple(take_rows(a, take) for a in self.batch_args)

    def _everyone(self, idx: np.ndarray) -> bool:
        B = self._batch
        return B is not None and len(idx) == B and bool((idx == np.arange(B)).all())

    def unstack(self, X: np.ndarray) -> list[list[torch.Tensor]]:
        """Each row of ``X`` (B, n) as one problem's leaves (what its codec's ``unflatten``
        makes of it), converted for all rows at once; each leaf owns its memory."""
        cols = [[t.clone() for t in leaf.unbind(0)] for leaf in self._leaves(X)]
        return [list(row) for row in zip(*cols, strict=True)]

    def stack(self, X: np.ndarray) -> list[torch.Tensor]:
        return self._leaves(X)

    # -- evaluations ---------------------------------------------------------------------------
    def value_and_grad(self, idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = X.shape[0]
        rows = self._rows(idx)
        lay = self.layout
        if self.vectorized:
            leaves = self._leaves(X, grad=True)
            out = self.fun(lay.build(leaves), idx, *rows, *self.args)
            if self.mode == "pair":
                values, grad = split_pair(out)
                grads = stacked_grads(grad, lay, k, _shape)
            else:
                values = out
                if not isinstance(values, torch.Tensor):
                    raise TypeError(
                        "with jac='autodiff' and vectorized=True fun must return a tensor of "
                        f"the {k} values computed from x; got a {type(values).__name__}"
                    )
                check_values(tuple(values.shape), k)
                found = torch.autograd.grad(values.sum(), leaves, allow_unused=True)
                grads = [
                    torch.zeros_like(t) if g is None else g
                    for t, g in zip(leaves, found, strict=False)
                ]
            return self._host(values, grads, k)
        leaves = self._leaves(X)
        if self.mode == "autodiff":
            grads_t, values = self._vg(tuple(leaves), *rows)
            return self._host(values, list(grads_t), k)
        if not self.looped:
            try:
                values, grad = split_pair(self._pair(tuple(leaves), *rows))
                return self._host(values, stacked_grads(grad, lay, k, _shape), k)
            except Exception:
                self.looped = True  # e.g. torch.autograd.grad inside fun: not under vmap
        return self._loop(rows, leaves, k)

    def _loop(self, rows: tuple, leaves: list, k: int) -> tuple[np.ndarray, np.ndarray]:
        values, grads = [], []
        lay = self.layout
        for j in range(k):
            mine = [t[j].detach().clone().requires_grad_(True) for t in leaves]

            def at_row(t: Any, j: int = j) -> Any:
                return t[j]

            row_args = tuple(take_rows(a, at_row) for a in rows)
            value, grad = split_pair(self.fun(lay.build(mine), *row_args, *self.args))
            values.append(torch.as_tensor(value).detach().reshape(()).to(torch.float64))
            grads.append(stacked_grads(grad, lay, 1, lambda g: (1, *g.shape)))
        stacked = [torch.stack([g[i] for g in grads]) for i in range(len(lay.keys))]
        return self._host(torch.stack(values), stacked, k)

    def hvp(self, idx: np.ndarray, X: np.ndarray, P: np.ndarray) -> np.ndarray:
        k = X.shape[0]
        rows = self._rows(idx)
        if self.vectorized:
            leaves = self._leaves(X, grad=True)
            ps = self._leaves(P)
            values = self.fun(self.layout.build(leaves), idx, *rows, *self.args)
            check_values(tuple(values.shape), k)
            g = torch.autograd.grad(values.sum(), leaves, create_graph=True, allow_unused=True)
            dot = sum((gi * pi).sum() for gi, pi in zip(g, ps, strict=False) if gi is not None)
            found = torch.autograd.grad(dot, leaves, allow_unused=True)  # type: ignore[arg-type]
            hv = [
                torch.zeros_like(t) if h is None else h for t, h in zip(leaves, found, strict=False)
            ]
        else:
            hv = list(self._hvp(tuple(self._leaves(X)), tuple(self._leaves(P)), *rows))
        return self._host(torch.zeros(k, dtype=torch.float64), hv, k)[1]


def batch(
    layout: Layout,
    fun: Callable,
    args: tuple,
    batch_args: tuple,
    *,
    mode: str,
    vectorized: bool,
    jit: bool | None = None,
) -> TorchBatch:
    """PyTorch's batched evaluator (``jit`` is ignored, as everywhere in PyTorch)."""
    del jit
    return TorchBatch(layout, fun, args, batch_args, mode=mode, vectorized=vectorized)
