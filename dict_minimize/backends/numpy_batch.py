"""NumPy's batched evaluations (``minimize_batched``): the user's own batched function only
(``vectorized=True``, ``jac=True``): NumPy has no automatic vectorization or differentiation.
The (k, n) float64 matrix becomes the stacked arrays (views where the dtype is float64) and the
values and gradients are joined back into one (k,) and one (k, n) float64 array."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize._structure.layout import Layout
from dict_minimize.backends._batch import check_values, split_pair, stacked_grads, take_rows


def _shape(g: Any) -> Any:
    shape = getattr(g, "shape", None)
    if shape is None and isinstance(g, (list, float, int)):
        return np.shape(g)
    return shape


class NumpyBatch:
    """:class:`~dict_minimize._structure.types.BatchEval` for NumPy (``vectorized=True``)."""

    def __init__(self, layout: Layout, fun: Callable, args: tuple, batch_args: tuple) -> None:
        self.layout, self.fun, self.args, self.batch_args = layout, fun, args, batch_args

    def stack(self, X: np.ndarray) -> list[np.ndarray]:
        lay, k = self.layout, X.shape[0]
        out = []
        for (a, b), shape, dt in zip(
            zip(lay.offsets[:-1], lay.offsets[1:], strict=True),
            lay.shapes,
            lay.np_dtypes,
            strict=True,
        ):
            out.append(np.array(X[:, a:b].reshape((k, *shape)), dtype=dt))
        return out

    def value_and_grad(self, idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, lay = X.shape[0], self.layout
        rows = tuple(take_rows(a, lambda t: np.asarray(t)[idx]) for a in self.batch_args)
        values, grad = split_pair(self.fun(lay.build(self.stack(X)), idx, *rows, *self.args))
        f = np.asarray(values, dtype=np.float64)
        check_values(f.shape, k)
        grads = stacked_grads(grad, lay, k, _shape)
        G = np.empty((k, lay.n))
        for (a, b), g in zip(
            zip(lay.offsets[:-1], lay.offsets[1:], strict=True), grads, strict=False
        ):
            G[:, a:b] = np.reshape(np.asarray(g, dtype=np.float64), (k, b - a))
        return np.array(f), G

    def hvp(self, idx: np.ndarray, X: np.ndarray, P: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise ValueError("NumPy has no automatic differentiation: no Hessian-vector products")


def batch(
    layout: Layout,
    fun: Callable,
    args: tuple,
    batch_args: tuple,
    *,
    mode: str,
    vectorized: bool,
    jit: bool | None = None,
) -> NumpyBatch:
    """NumPy's batched evaluator (the checks in ``minimize_batched`` allow only
    ``vectorized=True`` with ``jac=True`` here)."""
    del mode, vectorized, jit
    return NumpyBatch(layout, fun, args, batch_args)
