"""``scipy.optimize.least_squares`` over a dict of tensors.

``fun(x_dict, *args)`` returns the residuals: one tensor of any shape, or a dict of residual
tensors (concatenated in the dict's key order at the first call). SciPy works on the flat float64
vector, as for :func:`~dict_minimize.minimize`; the preparation is the shared one of
:mod:`dict_minimize._problem.prepare`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse
from scipy.optimize import least_squares as scipy_least_squares
from scipy.sparse.linalg import LinearOperator

from dict_minimize._errors import at, fmt_key, fmt_keys, type_name
from dict_minimize._problem.prepare import Prepared, check_common, prepare
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._problem.scipy_bounds import flat_name, least_squares_bounds
from dict_minimize._problem.sparsity import SparseDerivative, jacobian_pattern, make_products
from dict_minimize._structure.layout import Layout, keyed_like_x0, values_by_key
from dict_minimize._structure.types import Backend, Codec
from dict_minimize._threads import check_threads, solve_threads, timed_first

#: the finite-difference schemes SciPy's least_squares offers on real residuals
FD_SCHEMES = ("2-point", "3-point")
LSQ_METHODS = ("trf", "dogbox", "lm")


def _shape(t: Any) -> tuple[int, ...]:
    shape = getattr(t, "shape", None)
    if shape is None:
        return tuple(np.shape(t))
    return tuple(-1 if d is None else int(d) for d in shape)


class Residuals:
    """The structure of ``fun``'s residuals: fixed at the first call, checked at every other."""

    def __init__(self, backend: Backend, where: str = "fun") -> None:
        self.backend = backend
        self.where = where
        self.keys: list[Any] | None = None  # None: one tensor
        self.shapes: list[tuple[int, ...]] | None = None

    @property
    def sizes(self) -> list[int]:
        assert self.shapes is not None
        return [int(np.prod(s)) for s in self.shapes]

    @property
    def m(self) -> int:
        return sum(self.sizes)

    def parts(self, out: Any) -> list[Any]:
        """The residual tensors in the fixed order, checked against the first call."""
        if isinstance(out, Mapping):
            keys = list(out.keys())
            if self.shapes is None:
                if not keys:
                    raise ValueError(f"{self.where} returned an empty dict of residuals")
                self.keys = keys
                self.shapes = [_shape(out[k]) for k in keys]
                return [out[k] for k in keys]
            if self.keys is None:
                raise ValueError(
                    f"{self.where} returned a dict of residuals, but a single tensor at its "
                    "first call: it must return the same structure every time"
                )
            known = set(self.keys)
            missing = [k for k in self.keys if k not in out]
            extra = [k for k in keys if k not in known]
            if missing or extra:
                raise ValueError(
                    f"{self.where} returned residual keys that changed since its first call: "
                    f"missing {fmt_keys(missing) if missing else 'none'}, "
                    f"new {fmt_keys(extra) if extra else 'none'}"
                )
            parts = [out[k] for k in self.keys]
            for k, p, s in zip(self.keys, parts, self.shapes, strict=True):
                self._check_shape(_shape(p), s, f"residual {fmt_key(k)}")
            return parts
        if self.shapes is None:
            self.shapes = [_shape(out)]
            return [out]
        if self.keys is not None:
            raise ValueError(
                f"{self.where} returned a {type_name(out)}, but a dict of residuals (keys "
                f"{fmt_keys(self.keys)}) at its first call: it must return the same structure"
            )
        self._check_shape(_shape(out), self.shapes[0], "the residuals")
        return [out]

    def _check_shape(self, got: tuple, first: tuple, what: str) -> None:
        if -1 not in got and -1 not in first and got != first:
            raise ValueError(
                f"{self.where}: {what} changed shape from {first} at the first call to {got}"
            )

    def flat_numpy(self, out: Any) -> np.ndarray:
        """The residuals as one float64 vector (float32 NumPy residuals stay float32, as SciPy
        keeps them: its finite-difference steps follow the residuals' precision)."""
        arrs = [_to_np(self.backend, p).reshape(-1) for p in self.parts(out)]
        return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)

    def flat_complex(self, out: Any) -> np.ndarray:
        """The residuals as one vector, complex kept (SciPy's complex-step ``jac='cs'``)."""
        arrs = [np.asarray(p).reshape(-1) for p in self.parts(out)]
        return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)

    def flat_tensor(self, out: Any) -> Any:
        """The residuals as one tensor of the framework (what autodiff differentiates)."""
        parts = self.parts(out)
        if len(parts) == 1:
            return parts[0]
        name = self.backend.name
        if name == "torch":
            import torch

            return torch.cat([p.reshape(-1) for p in parts])
        if name == "jax":
            import jax.numpy as jnp

            return jnp.concatenate([jnp.reshape(p, (-1,)) for p in parts])
        if name == "tensorflow":
            import tensorflow as tf

            flat = [tf.reshape(p, [-1]) for p in parts]
            return tf.concat([tf.cast(f, flat[0].dtype) for f in flat], 0)
        return np.concatenate([np.reshape(p, -1) for p in parts])

    def shaped(self, flat: np.ndarray) -> Any:
        """A flat float64 residual vector in the user's shape (a dict when ``fun`` gives one)."""
        assert self.shapes is not None
        flat = np.asarray(flat, dtype=np.float64)
        if self.keys is None:
            return flat.reshape(self.shapes[0])
        out, start = {}, 0
        for k, s, size in zip(self.keys, self.shapes, self.sizes, strict=True):
            out[k] = flat[start : start + size].reshape(s)
            start += size
        return out


def _to_np(backend: Backend, v: Any) -> np.ndarray:
    if isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float32:
        return np.asarray(v)
    if isinstance(v, (np.ndarray, np.generic, float, int, list, tuple)):
        return np.asarray(v, dtype=np.float64)
    return np.asarray(backend.to_numpy(v), dtype=np.float64)


def user_jacobian(
    jac_out: Any, res: Residuals, layout: Layout, backend: Backend, where: str = "jac"
) -> np.ndarray:
    """The ``(m, n)`` float64 Jacobian from what a user's ``jac`` returned.

    An ``(m, n)`` array, ``{x_key: block}`` (one residual tensor) or ``{res_key: {x_key:
    block}}``; a block has the shape ``residual_shape + x0[key].shape`` (as ``jax.jacrev``
    gives), and blocks are matched by key, never by position.
    """
    m, n = res.m, layout.n
    if scipy.sparse.issparse(jac_out) or isinstance(jac_out, LinearOperator):
        if jac_out.shape != (m, n):
            raise ValueError(
                f"The return value of `{where}` has wrong shape: expected {(m, n)}, actual "
                f"{jac_out.shape}. (The columns are x0's flattened entries in key order.)"
            )
        return jac_out  # SciPy's sparse and matrix-free solvers take it as it is
    if not isinstance(jac_out, Mapping):
        a = _to_np(backend, jac_out)
        if a.size != m * n or (a.ndim == 2 and a.shape != (m, n)) or a.ndim > 2:
            raise ValueError(
                f"The return value of `{where}` has wrong shape: expected {(m, n)}, actual "
                f"{a.shape}. Give the (m, n) Jacobian (columns: x0's flattened entries in key "
                "order), or a dict of blocks keyed like x0"
            )
        return a.reshape(m, n)
    if res.keys is None:
        rows = [(None, jac_out)]
    else:
        missing = [k for k in res.keys if k not in jac_out]
        if missing:
            raise ValueError(
                f"{where} returned a dict without the residual key(s) {fmt_keys(missing)}: "
                "for a dict of residuals, give {res_key: {x_key: block}}"
            )
        rows = [(k, jac_out[k]) for k in res.keys]
    assert res.shapes is not None
    out = np.empty((m, n))
    start = 0
    for (rk, blocks), rshape, rsize in zip(rows, res.shapes, res.sizes, strict=True):
        what = f"{where} blocks" + ("" if rk is None else f" of residual {fmt_key(rk)}")
        if not isinstance(blocks, Mapping):
            raise TypeError(f"the {what} must be a dict keyed like x0; got a {type_name(blocks)}")
        values = values_by_key(blocks, layout, what=what)
        for i, v in enumerate(values):
            a = _to_np(backend, v)
            if a.size != rsize * layout.sizes[i]:
                raise ValueError(
                    f"the {what}: the block for {fmt_key(layout.keys[i])} has shape {a.shape}; "
                    f"expected {tuple(rshape) + tuple(layout.shapes[i])}"
                )
            out[start : start + rsize, layout.slice_of(i)] = a.reshape(rsize, layout.sizes[i])
        start += rsize
    return out


class ResidualProblem:
    """``fun`` (and its Jacobian) on SciPy's flat float64 vector; shared with :func:`root`."""

    def __init__(
        self, fun: Callable, args: tuple, prep: Prepared, jac: Any, jit: bool | None, where: str
    ) -> None:
        self.fun, self.args = fun, args
        self.backend: Backend = prep.backend
        self.layout: Layout = prep.layout
        self.codec: Codec = prep.codec
        self.res = Residuals(self.backend, where)
        self.ad: Any = None
        if isinstance(jac, str) and jac == "autodiff":
            if self.backend.vector_ad is None:
                raise ValueError(
                    f"jac='autodiff' needs a framework with automatic differentiation, and x0 "
                    f"holds {self.backend.name} arrays; give jac as a callable, or use "
                    "finite differences ('2-point')"
                )
            res = self.res

            def cfun(x_dict: Any, *a: Any) -> Any:
                return res.flat_tensor(fun(x_dict, *a))

            self.ad = self.backend.vector_ad(self.layout, self.codec, cfun, args, jit=jit)
            self.cfun = cfun
        self.user_jac = jac if callable(jac) else None
        #: jac_sparsity with jac='autodiff': the sparse Jacobian by compressed products
        self.sparse: SparseDerivative | None = None

    def use_pattern(self, pattern: Any, out_shape: Any, jit: bool | None) -> None:
        """Compute the Jacobian as a sparse matrix over ``pattern`` (jac='autodiff')."""
        prods = make_products(
            self.backend,
            self.layout,
            self.codec,
            self.cfun,
            self.args,
            jit,
            "fun",
            "jac_sparsity",
        )
        self.sparse = SparseDerivative(
            "jac", pattern, prods, "fun", layout=self.layout, out_shape=out_shape
        )

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for SciPy's ``workers=`` pools (the codec is rebuilt on the other side)."""
        state = self.__dict__.copy()
        state["codec"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.codec = self.backend.make_codec(self.layout)

    def as_dict(self, x: np.ndarray) -> Any:
        """A flat float64 vector over x as a dict like ``x0`` (plain tensors)."""
        return self.layout.build(
            self.codec.unflatten(np.asarray(x, dtype=np.float64), for_objective=False)
        )

    def value(self, x: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(x):  # SciPy's complex step (NumPy x0 only; checked up front)
            parts = self.layout.build(self.layout.split_numpy(x))
            return self.res.flat_complex(self.fun(parts, *self.args))
        if self.ad is not None:
            return np.asarray(self.ad.value(x), dtype=np.float64).reshape(-1)
        return self.res.flat_numpy(self.fun(self.as_dict(x), *self.args))

    def jacobian(self, x: np.ndarray) -> Any:
        if self.sparse is not None:
            return self.sparse.matrix(x)
        if self.ad is not None:
            return np.asarray(self.ad.jacobian(x), dtype=np.float64)
        assert self.user_jac is not None
        if self.res.shapes is None:  # jac before any fun call: learn the residuals' structure
            self.value(x)
        out = self.user_jac(self.as_dict(x), *self.args)
        return user_jacobian(out, self.res, self.layout, self.backend)


def _check_jac(jac: Any, backend: Backend) -> None:
    if isinstance(jac, str) and jac == "cs" and backend.name != "numpy":
        raise ValueError(
            f"jac='cs' (complex step) needs NumPy arrays in x0, and x0 holds {backend.name} "
            "tensors (fun is called with real tensors of x0's dtypes); use 'autodiff', "
            "'2-point' or '3-point'"
        )
    if not (callable(jac) or (isinstance(jac, str) and jac in ("autodiff", *FD_SCHEMES, "cs"))):
        raise ValueError(
            f"jac must be 'autodiff', a callable, '2-point', '3-point' or 'cs'; got {jac!r}"
        )


class _WithKwargs:
    """``f(x, *args)`` calling ``f(x, *args, **kwargs)`` (SciPy's ``kwargs=``); picklable."""

    def __init__(self, f: Callable, kwargs: Mapping[str, Any]) -> None:
        self.f, self.kwargs = f, dict(kwargs)

    def __call__(self, x: Any, *args: Any) -> Any:
        return self.f(x, *args, **self.kwargs)


def _with_kwargs(f: Any, kwargs: Mapping[str, Any] | None) -> Any:
    if not kwargs or not callable(f):
        return f
    return _WithKwargs(f, kwargs)


def _wants_result(callback: Callable) -> bool:
    """SciPy's rule: a callback whose only parameter is ``intermediate_result`` gets the result."""
    try:
        return set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        return False


def _lsq_callback(callback: Callable | None, prob: ResidualProblem) -> Callable | None:
    """The user's callback on SciPy's flat state: ``x`` (and the result's ``x``) as a dict."""
    if callback is None:
        return None
    if _wants_result(callback):

        def with_result(intermediate_result: Any) -> Any:
            fields = dict(intermediate_result)
            fields["x"] = prob.as_dict(np.asarray(intermediate_result.x))
            return callback(intermediate_result=OptimizeResult(fields))

        return with_result

    def with_x(intermediate_result: Any) -> Any:
        return callback(prob.as_dict(np.asarray(intermediate_result.x)))

    return with_x


def _check_bounds(bounds: Any, x0: np.ndarray, layout: Layout) -> None:
    """SciPy's checks of least_squares' bounds, naming the entry."""
    bad = np.flatnonzero(bounds.lb >= bounds.ub)
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            "Each lower bound must be strictly less than each upper bound: "
            f"{flat_name(layout, j)} has lb={bounds.lb[j]} >= ub={bounds.ub[j]}"
        )
    out = np.flatnonzero((x0 < bounds.lb) | (x0 > bounds.ub))
    if out.size:
        j = int(out[0])
        raise ValueError(
            f"Initial guess is outside of provided bounds: {flat_name(layout, j)} is {x0[j]}, "
            f"not in [{bounds.lb[j]}, {bounds.ub[j]}]"
        )


def _check_real(x0: Any) -> None:
    """SciPy's ``ValueError("`x0` must be real.")`` for a complex NumPy entry, naming it."""
    if not isinstance(x0, Mapping):
        return
    for k, v in x0.items():
        if isinstance(v, complex) or (
            isinstance(v, (np.ndarray, np.generic)) and np.iscomplexobj(v)
        ):
            raise ValueError(f"`x0` must be real: {at('x0', k)} is complex")


def least_squares(
    fun: Callable,
    x0: Mapping[Any, Any],
    jac: Any = "autodiff",
    bounds: Any = None,
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: str | Callable = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: Mapping[str, Any] | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: tuple = (),
    kwargs: Mapping[str, Any] | None = None,
    callback: Callable | None = None,
    workers: Any = None,
    *,
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    backend: str | None = None,
    jit: bool | None = None,
    threads: int | str | None = "auto",
    check_sparsity: bool = False,
) -> OptimizeResult:
    """``scipy.optimize.least_squares`` with ``x0`` (and the result) a dict of tensors.

    Minimizes ``0.5 * sum(loss(r_i(x) ** 2))`` over the residuals ``r = fun(x_dict, *args)``:
    one tensor of any shape, or a dict of residual tensors, concatenated in the dict's key order
    at the first call (later calls must return the same keys and shapes).

    With ``jac='autodiff'`` the Jacobian comes from the framework (PyTorch, JAX, TensorFlow):
    JAX uses reverse mode when there are fewer residuals than parameters and forward mode
    otherwise; PyTorch uses reverse mode, every row in one batched backward pass (``vmap`` of
    vector-Jacobian products; a loop where an operation has no batching rule); TensorFlow
    uses ``GradientTape.jacobian`` (reverse mode, vectorized).

    Args:
        fun: ``fun(x_dict, *args)`` returns the residuals (a tensor or a dict of tensors).
        x0: the start, a dict (or nested dict) of tensors; only read.
        jac: ``'autodiff'``; a callable ``jac(x_dict, *args)`` returning the ``(m, n)`` Jacobian
            (a NumPy array, a SciPy sparse array or a ``LinearOperator``, passed to SciPy as
            they are) or blocks ``{x_key: array of shape residual_shape + x0[key].shape}``
            (for a dict of residuals ``{res_key: {x_key: block}}``); or ``'2-point'`` /
            ``'3-point'`` (SciPy's finite differences), or ``'cs'`` (complex step, NumPy
            ``x0`` only: ``fun`` then also gets complex arrays).
        bounds: SciPy's keyword: ``(lb, ub)``, a ``scipy.optimize.Bounds``, or a dict of
            ``(lb, ub)`` pairs per key; each side a dict keyed like ``x0``, a scalar, or an
            array over the flat vector (``x0``'s entries flattened in key order). Not with
            ``lb_dict`` / ``ub_dict``; not with ``method='lm'``.
        method: ``'trf'``, ``'dogbox'`` or ``'lm'``.
        ftol: as for SciPy.
        xtol: as for SciPy.
        gtol: as for SciPy.
        x_scale: as for SciPy: None (SciPy's default), a float, an array over the flat vector,
            or ``'jac'``.
        loss: as for SciPy (``'linear'``, ``'soft_l1'``, ``'huber'``, ``'cauchy'``,
            ``'arctan'`` or a callable).
        f_scale: as for SciPy.
        diff_step: as for SciPy (finite differences only).
        tr_solver: as for SciPy.
        tr_options: as for SciPy.
        jac_sparsity: the Jacobian's sparsity pattern: an ``(m, n)`` bool array or SciPy sparse
            matrix over the flat vector, or a dict per key of x0 of bool arrays of shape
            ``(*residual_shape, *x0[key].shape)`` (or SciPy sparse ``(m, x0[key].size)``).
            With ``jac='autodiff'`` the Jacobian is computed by autodiff with one product per
            colour of the pattern and reaches SciPy as a ``scipy.sparse.csr_array`` (SciPy then
            picks ``tr_solver='lsmr'``); ``res.sparsity`` reports the colours. With
            finite differences SciPy uses it as its own ``jac_sparsity``. See
            [Sparse derivatives](guide/sparse.md).
        max_nfev: as for SciPy.
        verbose: as for SciPy.
        args: extra positional arguments for ``fun`` and ``jac``.
        kwargs: extra keyword arguments for ``fun`` and ``jac``, as for SciPy.
        callback: as for SciPy: ``callback(intermediate_result)`` (an ``OptimizeResult`` whose
            ``x`` is a dict like ``x0``) or ``callback(x_dict)``; return True or raise
            ``StopIteration`` to stop. ``'lm'`` does not call it (SciPy warns).
        workers: as for SciPy (a map-like callable for the finite-difference evaluations).
        lb_dict: lower bounds keyed like ``x0`` (scalars or arrays); not with ``method='lm'``.
        ub_dict: upper bounds keyed like ``x0``.
        backend: force a backend by name; by default the one of ``x0``'s tensors.
        jit: compile the autodiff residuals (JAX, TensorFlow); None for the backend's default.
        threads: threads during the solve, as in :func:`~dict_minimize.minimize`; with
            ``"auto"`` a slow first evaluation lifts SciPy's cap too (its LAPACK work on the
            Jacobian grows with the residuals).
        check_sparsity: with ``jac_sparsity`` and ``jac='autodiff'``, compare the pattern with
            one dense Jacobian at ``x0`` first; a nonzero it misses is a ValueError naming the
            key and the entry.

    Returns:
        OptimizeResult: SciPy's fields, with ``x`` and ``grad`` (``J^T r``, the gradient of the
        cost) as dicts like ``x0``, ``active_mask`` as a dict of int arrays shaped like ``x0``'s
        entries, ``fun`` the residuals at ``x`` as float64 NumPy arrays in the user's shape (a
        dict when ``fun`` returns one), and ``jac`` the ``(m, n)`` float64 Jacobian array as
        SciPy gives it (columns in ``x0``'s flattened key order), plus ``cost``, ``optimality``,
        ``status``, ``message``, ``success``, ``nfev`` and ``njev``; with ``jac_sparsity`` and
        ``jac='autodiff'``, ``sparsity`` (the colours, mode, stored entries and shape).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import least_squares
        >>> t = np.linspace(0, 1, 20)
        >>> y = 2.0 * np.exp(-1.5 * t)
        >>> res = least_squares(lambda d: d["a"] * np.exp(-d["k"] * t) - y,
        ...                     {"a": np.array(1.0), "k": np.array(1.0)}, jac="2-point")
        >>> round(float(res.x["a"]), 6), round(float(res.x["k"]), 6)
        (2.0, 1.5)
    """
    args = check_common(fun, x0, args, backend, jit)
    threads = check_threads(threads)
    if method not in LSQ_METHODS:
        raise ValueError(f"`method` must be 'trf', 'dogbox' or 'lm'; got {method!r}")
    if bounds is not None and (lb_dict is not None or ub_dict is not None):
        raise TypeError("give the bounds either as bounds= or as lb_dict/ub_dict, not both")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    _check_real(x0)
    prep = prepare(x0, backend, lb_dict, ub_dict)
    _check_jac(jac, prep.backend)
    flat_bounds = prep.bounds
    if bounds is not None:
        flat_bounds = least_squares_bounds(bounds, prep.layout, prep.backend)
    if flat_bounds is not None:
        if method == "lm":
            raise ValueError(
                "Method 'lm' doesn't support bounds: use method='trf' or 'dogbox' with bounds"
            )
        _check_bounds(flat_bounds, prep.x0_flat, prep.layout)
    fun = _with_kwargs(fun, kwargs)
    jac = _with_kwargs(jac, kwargs)
    prob = ResidualProblem(fun, args, prep, jac, jit, "fun")
    extra: dict[str, Any] = {}
    if tr_solver is not None:
        extra["tr_solver"] = tr_solver
    if tr_options is not None:
        extra["tr_options"] = dict(tr_options)
    if jac_sparsity is not None:
        if isinstance(jac, str) and jac == "autodiff":
            pattern, out_shape = jacobian_pattern(jac_sparsity, prep.layout, "jac_sparsity")
            prob.use_pattern(pattern, out_shape, jit)
            if check_sparsity:
                assert prob.sparse is not None
                prob.sparse.check(prep.x0_flat)
        elif keyed_like_x0(jac_sparsity, prep.layout):  # per key: SciPy's flat pattern
            extra["jac_sparsity"] = jacobian_pattern(jac_sparsity, prep.layout, "jac_sparsity")[0]
        else:  # SciPy's own, unchanged (finite differences; a callable jac ignores it)
            extra["jac_sparsity"] = jac_sparsity
    if workers is not None:
        extra["workers"] = workers
    if callback is not None:
        extra["callback"] = _lsq_callback(callback, prob)
    if x_scale is not None:  # None: SciPy's own default (1.0 before SciPy 1.16, which refuses None)
        extra["x_scale"] = x_scale
    fd = isinstance(jac, str) and jac in (*FD_SCHEMES, "cs")
    caps = solve_threads(threads, prep.layout.n, prep.backend, lift_scipy=True)
    # a map over processes pickles the function: no timing wrapper there
    value = prob.value if workers is not None else timed_first(prob.value, caps)
    with caps:
        raw = scipy_least_squares(
            value,
            prep.x0_flat,
            jac=jac if fd else prob.jacobian,
            bounds=flat_bounds if flat_bounds is not None else (-np.inf, np.inf),
            method=method,
            ftol=ftol,
            xtol=xtol,
            gtol=gtol,
            loss=loss,
            f_scale=f_scale,
            diff_step=diff_step,
            max_nfev=max_nfev,
            verbose=verbose,
            **extra,
        )
    layout = prep.layout
    out = OptimizeResult(raw)
    out["x"] = prob.as_dict(raw.x)
    out["grad"] = prob.as_dict(np.asarray(raw.grad, dtype=np.float64))
    out["fun"] = prob.res.shaped(raw.fun)
    jac_out = raw.jac
    if not (scipy.sparse.issparse(jac_out) or isinstance(jac_out, LinearOperator)):
        jac_out = np.asarray(jac_out, dtype=np.float64)
    out["jac"] = jac_out
    mask = layout.split_numpy(np.asarray(raw.active_mask).astype(int))
    out["active_mask"] = layout.build(mask)
    out["cost"] = float(raw.cost)
    out["optimality"] = float(raw.optimality)
    out["status"] = int(raw.status)
    out["success"] = bool(raw.success)
    out["message"] = str(raw.message)
    out["nfev"] = int(raw.nfev)
    out["njev"] = None if raw.njev is None else int(raw.njev)  # SciPy's None: no Jacobian calls
    if prob.sparse is not None:
        out["sparsity"] = {"jac": prob.sparse.info()}
    return out


__all__ = ["least_squares"]
