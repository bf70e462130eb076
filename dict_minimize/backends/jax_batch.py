"""JAX's batched evaluations (``minimize_batched``): ``jax.vmap`` of one problem's
``jax.value_and_grad`` (or of ``fun`` itself with ``jac=True``), or the user's own batched
function (``vectorized=True``), compiled with ``jax.jit`` by default.

The (k, n) matrix crosses to the device in one transfer (in the leaves' precision) and is cut,
cast and reshaped inside the compiled function; the values and the joined gradients come back in
one transfer each. The rows of ``batch_args`` are gathered inside it too. The compiled
functions are cached per ``fun`` (held weakly) and signature, as :mod:`.jax_ad` caches its
own, with ``args`` split the same way (arrays and floats dynamic, other leaves static), so
repeated batched solves with one ``fun`` compile nothing again. Under ``jit`` the row
count is padded to a power of two with copies of the first active row (evaluated, then
dropped), so a batch that shrinks round by round compiles O(log B) times, not once per size.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dict_minimize._structure.layout import Layout
from dict_minimize.backends._batch import bucket, check_values, split_pair, stacked_grads
from dict_minimize.backends.jax_trace import _ArgSpec, _split_args


def _shape(g: Any) -> Any:
    return getattr(g, "shape", None)


#: compiled evaluations per ``fun`` (held weakly) and signature, as ``jax_ad`` caches its own:
#: repeated batched solves with the same ``fun`` do not trace or compile again
_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)
CACHE_PER_FUN = 8


def _transfer(layout: Layout) -> np.dtype:
    dts = layout.np_dtypes
    return np.dtype(np.float64) if any(d == np.float64 for d in dts) else np.dtype(np.float32)


def _functions(
    layout: Layout, fun: Callable, spec: _ArgSpec, mode: str, vectorized: bool
) -> tuple[Callable, Callable]:
    """``vg(X, idx, data, shared)`` and ``hvp(X, P, idx, data, shared)`` (``data``: the
    per-problem arrays, ``shared``: the dynamic leaves of ``args``), to compile."""
    spans = list(zip(layout.offsets[:-1], layout.offsets[1:], strict=True))
    build, shapes, dtypes = layout.build, layout.shapes, layout.dtypes
    tdt = _transfer(layout)

    def split(X: Any) -> tuple:
        k = X.shape[0]
        return tuple(
            X[:, a:b].reshape((k, *s)).astype(dt)
            for (a, b), s, dt in zip(spans, shapes, dtypes, strict=True)
        )

    def join(grads: Any, k: int) -> Any:
        if not grads:
            return jnp.zeros((k, 0), tdt)
        return jnp.concatenate([jnp.reshape(g, (k, -1)).astype(tdt) for g in grads], axis=1)

    def rows_of(data: tuple, idx: Any) -> tuple:
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[idx], data)

    def vg(X: Any, idx: Any, data: tuple, shared: tuple) -> Any:
        k, leaves, rows, args = X.shape[0], split(X), rows_of(data, idx), spec.rebuild(shared)

        def one(lv: tuple, *r: Any) -> Any:
            return fun(build(list(lv)), *r, *args)

        if vectorized:
            if mode == "pair":
                values, grad = split_pair(fun(build(list(leaves)), idx, *rows, *args))
                grads = stacked_grads(grad, layout, k, _shape)
            else:

                def total(lv: tuple) -> Any:
                    values = fun(build(list(lv)), idx, *rows, *args)
                    check_values(jnp.shape(values), k)
                    return jnp.sum(values), values

                (_, values), grads = jax.value_and_grad(total, has_aux=True)(leaves)
        elif mode == "pair":
            values, grad = split_pair(jax.vmap(one)(leaves, *rows))
            grads = stacked_grads(grad, layout, k, _shape)
        else:
            values, grads = jax.vmap(jax.value_and_grad(one))(leaves, *rows)
        check_values(jnp.shape(values), k)
        return jnp.asarray(values).astype(tdt), join(list(grads), k)

    def hvp(X: Any, P: Any, idx: Any, data: tuple, shared: tuple) -> Any:
        k, leaves, ps, rows = X.shape[0], split(X), split(P), rows_of(data, idx)
        args = spec.rebuild(shared)

        def one(lv: tuple, *r: Any) -> Any:
            return fun(build(list(lv)), *r, *args)

        if vectorized:

            def total(lv: tuple) -> Any:
                return jnp.sum(fun(build(list(lv)), idx, *rows, *args))

            out = jax.jvp(jax.grad(total), (leaves,), (ps,))[1]
        else:

            def hvp_one(lv: tuple, p: tuple, *r: Any) -> Any:
                return jax.jvp(lambda v: jax.grad(one)(v, *r), (lv,), (p,))[1]

            out = jax.vmap(hvp_one)(leaves, ps, *rows)
        return join(list(out), k)

    return vg, hvp


def _compiled(
    layout: Layout, fun: Callable, spec: _ArgSpec, mode: str, vectorized: bool
) -> tuple[Any, Any]:
    """The jitted pair for this signature, from the cache when ``fun`` was seen before."""
    key = (layout, spec.key(), mode, vectorized)
    try:
        per_fun = _CACHE.get(fun)
    except TypeError:  # not weakly referenceable: compiled for this call only
        per_fun = None
    if per_fun is not None and key in per_fun:
        per_fun.move_to_end(key)
        return per_fun[key]
    vg, hvp = _functions(layout, fun, spec, mode, vectorized)
    out = (jax.jit(vg), jax.jit(hvp))
    try:
        per_fun = _CACHE.setdefault(fun, OrderedDict())
    except TypeError:
        return out
    per_fun[key] = out
    while len(per_fun) > CACHE_PER_FUN:
        per_fun.popitem(last=False)
    return out


class JaxBatch:
    """:class:`~dict_minimize._structure.types.BatchEval` for JAX."""

    def __init__(
        self,
        layout: Layout,
        fun: Callable,
        args: tuple,
        batch_args: tuple,
        *,
        mode: str,
        vectorized: bool,
        jit: bool,
    ) -> None:
        self.layout, self.jit = layout, jit
        self.transfer = _transfer(layout)
        spec, dyn = _split_args(args)
        # the data moves to the device once per solve
        self.shared = tuple(jnp.asarray(v) for v in dyn)
        self.data = jax.tree_util.tree_map(jnp.asarray, batch_args)
        if jit:
            self._vg, self._hvp = _compiled(layout, fun, spec, mode, vectorized)
        else:
            self._vg, self._hvp = _functions(layout, fun, spec, mode, vectorized)

    def _pad(self, idx: np.ndarray, *mats: np.ndarray) -> tuple:
        k = len(idx)
        m = bucket(k) if self.jit else k
        if m != k:
            idx = np.concatenate([idx, np.full(m - k, idx[0])])
            mats = tuple(np.concatenate([M, np.repeat(M[:1], m - k, axis=0)]) for M in mats)
        return (idx, *(np.asarray(M, dtype=self.transfer) for M in mats))

    def value_and_grad(self, idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(idx)
        idx_p, X_p = self._pad(idx, X)
        values, G = self._vg(X_p, idx_p, self.data, self.shared)
        f = np.asarray(values, dtype=np.float64)[:k]
        return f, np.asarray(G, dtype=np.float64)[:k]

    def hvp(self, idx: np.ndarray, X: np.ndarray, P: np.ndarray) -> np.ndarray:
        k = len(idx)
        idx_p, X_p, P_p = self._pad(idx, X, P)
        return np.asarray(self._hvp(X_p, P_p, idx_p, self.data, self.shared), dtype=np.float64)[:k]

    def unstack(self, X: np.ndarray) -> list[list[Any]]:
        """Each row of ``X`` (B, n) as one problem's leaves (what its codec's ``unflatten``
        makes of it), converted for all rows at once: one transfer per key, not one per row."""
        return [list(row) for row in zip(*(list(a) for a in self.stack(X)), strict=True)]

    def stack(self, X: np.ndarray) -> list[Any]:
        lay, k = self.layout, X.shape[0]
        return [
            jax.device_put(jnp.asarray(X[:, a:b].reshape((k, *s)).astype(self.transfer), dt), dev)
            for a, b, s, dt, dev in zip(
                lay.offsets[:-1], lay.offsets[1:], lay.shapes, lay.dtypes, lay.devices, strict=True
            )
        ]


def batch(
    layout: Layout,
    fun: Callable,
    args: tuple,
    batch_args: tuple,
    *,
    mode: str,
    vectorized: bool,
    jit: bool | None = None,
) -> JaxBatch:
    """JAX's batched evaluator: compiled with ``jax.jit`` unless ``jit=False``."""
    return JaxBatch(
        layout, fun, args, batch_args, mode=mode, vectorized=vectorized, jit=jit is not False
    )
