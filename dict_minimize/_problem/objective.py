"""The flat functions SciPy calls, built from the user's dict functions.

One :class:`Objective` per ``minimize`` call holds the counters, the non-finite policy, the best
finite point seen (so nothing is lost when a run ends badly) and the last point (so callbacks get
the value without re-evaluating). Every derivative source — ``fun`` returning ``(value, grad)``,
a ``jac`` callable, or the backend's autodiff — ends in the same checks.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from dict_minimize._errors import at, fmt_keys, fmt_shape, pair_error, type_name
from dict_minimize._structure.layout import Layout, keyed_like_x0, values_by_key
from dict_minimize._structure.types import Codec, CompiledPair, ScalarAD
from dict_minimize.backends._common import scalar_to_float

#: how derivatives of the objective are obtained
Mode = Literal["pair", "callable", "autodiff", "value"]


class NonFiniteError(ValueError):
    """The objective or its gradient is not finite where the run cannot go on.

    Raised at ``x0`` always, and later in the run with ``nonfinite='raise'``. The best finite
    point seen so far is attached as ``exc.dict_minimize_result`` (an ``OptimizeResult``).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import NonFiniteError, minimize
        >>> def fun(d):
        ...     return float("nan"), {"x": d["x"]}
        >>> try:
        ...     minimize(fun, {"x": np.array([1.0])})
        ... except NonFiniteError as exc:
        ...     print(str(exc).split(".")[0])
        the objective is not finite at x0: the value is nan
    """


class Aborted(Exception):
    """Raised through SciPy to end a run that cannot go on; the driver returns the best point."""


def _pair(out: Any) -> bool:
    return isinstance(out, (tuple, list)) and len(out) == 2


#: up to this many entries, a Python sum of ``tolist()`` is the cheapest finiteness check (4x
#: faster than NumPy's reduction at 3 entries; linear in Python objects beyond)
_SMALL = 32


def _all_finite(g: np.ndarray) -> bool:
    # the sum is finite for almost every finite vector: one cheap pass, then the exact check
    total = sum(g.tolist()) if g.size <= _SMALL and g.ndim == 1 else g.sum()
    return math.isfinite(total) or bool(np.isfinite(g).all())


_LARGEST = float(np.finfo(np.float64).max)
#: how many of the last evaluated points ``track_last`` keeps (a line search's accepted point is
#: usually the last one evaluated; a few more cover methods that probe after accepting)
_RECENT = 4


class Objective:
    """The user's objective as flat float64 functions, with counters and the best point."""

    __slots__ = (
        "_best_buffer",
        "_checked_x0",
        "_fast",
        "_last",
        "_memo",
        "_small",
        "_steady",
        "ad",
        "args",
        "bad_evaluations",
        "bad_keys",
        "best_f",
        "best_x",
        "codec",
        "finite_substitute",
        "fun",
        "layout",
        "mode",
        "nfev",
        "nhev",
        "nit",
        "njev",
        "nonfinite",
        "on_first",
        "on_first_grad",
        "pair",
        "private_x",
        "recent",
        "second_order",
        "sparse_hess",
        "stopped",
        "substitutes",
        "track_last",
        "user_hess",
        "user_hessp",
        "user_jac",
        "worst_f",
        "x0_nonfinite",
    )

    def __init__(
        self,
        fun: Callable,
        args: tuple,
        layout: Layout,
        codec: Codec,
        *,
        mode: Mode,
        jac: Callable | None = None,
        hess: Callable | None = None,
        hessp: Callable | None = None,
        ad: ScalarAD | None = None,
        pair: CompiledPair | None = None,
        nonfinite: str = "inf",
        track_last: bool = False,
        second_order: bool = False,
        private_x: bool = False,
        x0_nonfinite: str = "raise",
        finite_substitute: bool = False,
    ) -> None:
        self.fun, self.args, self.layout, self.codec = fun, args, layout, codec
        self.mode, self.user_jac, self.user_hess, self.user_hessp = mode, jac, hess, hessp
        self.ad, self.nonfinite, self.track_last = ad, nonfinite, track_last
        self.pair = pair  # jac=True, compiled by the backend (the user's fun is traceable)
        self.nfev = self.njev = self.nhev = 0
        self.nit = 0
        self.best_f = math.inf
        self.worst_f = -math.inf
        self.best_x: np.ndarray | None = None
        self._best_buffer = False  # best_x is our own buffer (reused by copies)
        self.private_x = private_x
        # 'raise': a non-finite x0 is an error; 'warn': the drop-in API's contract (the original
        # package handed such a point to SciPy), a warning and the 'inf' policy from there on
        self.x0_nonfinite = x0_nonfinite
        # how a non-finite point reaches SciPy under nonfinite='inf': +inf, or (gradient
        # methods) a finite value above every finite value seen. +inf turns the cubic and
        # quadratic interpolation of L-BFGS-B's and TNC's line searches into NaN steps: they
        # then stop at a non-stationary point ("success" for L-BFGS-B); a finite value makes
        # them back off as from any bad step (benchmarks/nonfinite.py measures it)
        self.finite_substitute = finite_substitute
        self.substitutes: set[float] = set()
        # the last few points evaluated, [x, value, gradient norm or NaN], newest last: what
        # callbacks and traces read instead of evaluating again (``track_last``)
        self.recent: deque[list] = deque(maxlen=_RECENT)
        #: called once with (x, value, gradient or None) at the first finite evaluation (x0)
        self.on_first: Callable[[np.ndarray, float, np.ndarray | None], None] | None = None
        #: called with the gradient's norm when a ``jac`` callable first runs at the start point
        self.on_first_grad: Callable[[float], None] | None = None
        self.stopped: tuple[np.ndarray, float | None] | None = None
        self.bad_evaluations = 0
        self.bad_keys: dict[Any, None] = {}  # keys with non-finite gradient entries, in order
        self._checked_x0 = False
        # autodiff Hessians: (x, value, gradient) of the last evaluation, so that SciPy asking
        # for the Hessian at a new x first and for the value there next evaluates fun once
        self.second_order = second_order and ad is not None
        self._memo: tuple[np.ndarray, float, np.ndarray] | None = None
        # jac=True on a flat NumPy dict: the split and the key match as code generated for the
        # layout (backends/_numpy_pair.py), falling back to the checking path for odd outputs
        self._fast: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None
        if mode == "pair" and ad is None and pair is None and codec.bind_pair is not None:
            self._fast = codec.bind_pair(fun, args, self._from_output)
        # from the first finite evaluation on, while every evaluation is finite and nothing
        # tracks the last points: value_and_grad's short path (the same checks, inlined)
        self._steady = False
        self._small = layout.n <= _SMALL
        self._last: tuple[Any, float, np.ndarray] | None = None  # (x or x.tolist(), f, g)
        #: hess_sparsity: the sparse Hessian by compressed autodiff products
        #: (a dict_minimize._problem.sparsity.SparseDerivative), else None
        self.sparse_hess: Any = None

    # -- pickling (SciPy's options={"workers": pool.map} sends fun to other processes) --------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self.__slots__ if hasattr(self, k)}
        # the codec and the generated code are closures: rebuilt from the layout on arrival;
        # the hooks feed this process's monitor
        state.update(codec=None, _fast=None, on_first=None, on_first_grad=None, _steady=False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from dict_minimize.backends import get_backend

        for k, v in state.items():
            setattr(self, k, v)
        self.codec = get_backend(self.layout.backend_name).make_codec(self.layout)
        if self.mode == "pair" and self.ad is None and self.pair is None:
            bind = self.codec.bind_pair
            self._fast = None if bind is None else bind(self.fun, self.args, self._from_output)

    # -- helpers ------------------------------------------------------------------------------
    def x_dict(self, x: np.ndarray, for_objective: bool, owned: bool = False) -> Mapping:
        if self.bad_evaluations:
            self._refuse_nonfinite(x)
        return self.layout.build(self.codec.unflatten(x, for_objective=for_objective, owned=owned))

    @staticmethod
    def _refuse_nonfinite(x: np.ndarray) -> None:
        if not _all_finite(x):
            # a method that does not back off (a custom one, given +inf) stepped to NaN: stop,
            # keep the best
            raise Aborted(
                "the method stepped to a non-finite x after non-finite evaluations (it did not "
                "back off; try BFGS or SLSQP, bounds that keep x where fun is defined, or "
                "nonfinite='raise'); x is the best finite point seen"
            )

    def _from_output(self, out: Any) -> tuple[float, np.ndarray]:
        """``fun``'s ``(value, grad_dict)`` as (float, float64 vector), every check made."""
        if not _pair(out):
            raise pair_error(out)
        value, grad = out
        value, g = self.codec.flatten(value, values_by_key(grad, self.layout))
        return (value if type(value) is float else scalar_to_float(value)), g

    def _bad_keys(self, g: np.ndarray) -> list:
        return [
            k
            for i, k in enumerate(self.layout.keys)
            if not np.isfinite(g[self.layout.slice_of(i)]).all()
        ]

    def _checked(self, x: np.ndarray, f: float, g: np.ndarray | None, own: bool = False) -> Any:
        """Apply the non-finite policy; track the best and the last point.

        ``own``: ``x`` is a fresh copy that nobody else holds or writes (SciPy's wrapper copies
        x for every evaluation), so the best point can be a reference to it instead of a copy.
        """
        first = not self._checked_x0
        self._checked_x0 = True
        if math.isfinite(f) and (g is None or _all_finite(g)):
            if f < self.best_f:
                self._improve(x, f, own)
            if f > self.worst_f:
                self.worst_f = f
            if self.track_last:
                norm = math.nan if g is None else float(np.linalg.norm(g))
                self.recent.append([np.array(x, dtype=np.float64), f, norm])
            if first:
                self._steady = self._fast is not None and not self.track_last
                if self.on_first is not None:
                    self.on_first(x, f, g)
            return f if g is None else (f, g)
        self._steady = False
        if self.nonfinite == "pass":  # SciPy's own behaviour: the values go to it unchanged
            return f if g is None else (f, g)
        keys = [] if g is None else self._bad_keys(g)
        what = []
        if not math.isfinite(f):
            what.append(f"the value is {f}")
        if keys:
            what.append(f"the gradient has non-finite entries for key(s) {fmt_keys(keys)}")
        detail = " and ".join(what) if what else "the gradient is not finite"
        if first and self.x0_nonfinite == "warn":
            warnings.warn(
                f"the objective is not finite at x0: {detail}. The drop-in minimize goes on, as "
                "the original dict_minimize did, counting such points as worse than every finite "
                "point; the result is "
                "likely x0 unchanged. Start from a point where the objective and its gradient "
                "are finite (dict_minimize.minimize raises NonFiniteError here)",
                RuntimeWarning,
                stacklevel=5,
            )
        elif first:
            raise NonFiniteError(
                f"the objective is not finite at x0: {detail}. Start from a point where the "
                "objective and its gradient are finite."
            )
        elif self.nonfinite == "raise":
            raise NonFiniteError(
                f"the objective is not finite at evaluation {self.nfev}: {detail} "
                "(nonfinite='raise'; with nonfinite='inf' such points count as worse than every "
                "finite point and the run goes on)"
            )
        self.bad_evaluations += 1
        self.bad_keys.update(dict.fromkeys(keys))
        value = self._substitute()
        if g is None:
            return value
        return value, np.where(np.isfinite(g), g, 0.0)

    def _improve(self, x: np.ndarray, f: float, own: bool) -> None:
        """``x`` is the best point so far (see :meth:`_checked` for ``own``)."""
        if own and x.dtype == np.float64 and x.ndim == 1:
            self.best_x, self._best_buffer = x, False
        elif self.best_x is None or not self._best_buffer:
            self.best_x, self._best_buffer = np.array(x, dtype=np.float64), True
        else:
            np.copyto(self.best_x, x)
        self.best_f = f

    def _substitute(self) -> float:
        """What SciPy sees at a non-finite point (see ``finite_substitute``)."""
        if not (self.finite_substitute and math.isfinite(self.best_f)):
            return math.inf
        best, worst = self.best_f, self.worst_f
        value = max(best + 1e3 * (1.0 + abs(best)), worst + (1.0 + abs(worst)))
        value = min(value, _LARGEST)
        self.substitutes.add(value)
        return value

    def is_substitute(self, f: float) -> bool:
        """True when ``f`` is a value that stood in for a non-finite evaluation."""
        return not math.isfinite(f) or f in self.substitutes

    def _checked_grad(self, g: np.ndarray) -> np.ndarray:
        """A gradient computed apart from its value (a ``jac`` callable)."""
        if _all_finite(g) or self.nonfinite == "pass":
            return g
        keys = self._bad_keys(g)
        detail = f"the gradient has non-finite entries for key(s) {fmt_keys(keys)}"
        if (self.njev <= 1 and self.x0_nonfinite == "raise") or self.nonfinite == "raise":
            where = "at x0" if self.njev <= 1 else f"at gradient evaluation {self.njev}"
            raise NonFiniteError(f"jac is not finite {where}: {detail}")
        self.bad_evaluations += 1
        self.bad_keys.update(dict.fromkeys(keys))
        return np.where(np.isfinite(g), g, 0.0)

    # -- what SciPy calls ---------------------------------------------------------------------
    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(value, gradient) of the objective at the flat ``x``."""
        if self._steady:  # the generated path, after a finite x0 and only finite points since
            f, g = self._fast(x)  # type: ignore[misc]
            self.nfev += 1
            self.njev += 1
            if math.isfinite(f) and _all_finite(g):
                if f < self.best_f:
                    self._improve(x, f, self.private_x)
                elif f > self.worst_f:
                    self.worst_f = f
                return f, g
            return self._checked(x, f, g, own=self.private_x)  # the exact check, the policy
        memo = self._memo
        if memo is not None and np.array_equal(memo[0], x):
            return memo[1], memo[2]
        if self.ad is not None:
            f, g = self.ad.value_and_grad(x, owned=self.private_x)
        elif self.pair is not None:
            f, g = self.pair.value_and_grad(x)
        elif self._fast is not None:
            if self.bad_evaluations:
                self._refuse_nonfinite(x)
            f, g = self._fast(x)
        else:
            f, g = self._from_output(
                self.fun(self.x_dict(x, True, owned=self.private_x), *self.args)
            )
        self.nfev += 1
        self.njev += 1
        f, g = self._checked(x, f, g, own=self.private_x)
        if self.second_order:
            self._memo = (np.array(x, dtype=np.float64), f, g)
        return f, g

    # SciPy turns jac=True into a value function and a gradient function over a memo of the
    # last point (MemoizeJac, comparing with np.all(x == last) and copying x at each call);
    # these two are that protocol with a cheaper memo: a list compare for small x
    def value_of_pair(self, x: np.ndarray) -> float:
        """The value of :meth:`value_and_grad` at ``x``, evaluated unless ``x`` was the last."""
        last = self._last
        if last is not None and (
            last[0] == x.tolist() if self._small else np.array_equal(last[0], x)
        ):
            return last[1]
        return self._evaluate(x)[0]

    def grad_of_pair(self, x: np.ndarray) -> np.ndarray:
        """The gradient of :meth:`value_and_grad` at ``x``, evaluated unless ``x`` was the last."""
        last = self._last
        if last is not None and (
            last[0] == x.tolist() if self._small else np.array_equal(last[0], x)
        ):
            return last[2]
        return self._evaluate(x)[1]

    def _evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.value_and_grad(x)
        key = x.tolist() if self._small else (x if self.private_x else np.array(x))
        self._last = (key, f, g)
        return f, g

    def _at(self, x: np.ndarray) -> None:
        """Evaluate at ``x`` before a Hessian there, so the backend reuses that evaluation."""
        memo = self._memo
        if self.second_order and (memo is None or not np.array_equal(memo[0], x)):
            self.value_and_grad(x)

    def value(self, x: np.ndarray) -> float:
        """The objective's value alone (a ``(value, grad)`` pair is accepted when jac=True)."""
        # a (value, grad) objective differentiates its inputs, so they must require grad
        out = self.fun(self.x_dict(x, self.mode == "pair"), *self.args)
        if self.mode == "pair" and _pair(out):
            out = out[0]
        f = scalar_to_float(out)
        self.nfev += 1
        return self._checked(x, f, None)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``jac(x_dict, *args)`` as a float64 vector."""
        if self.user_jac is None:
            raise RuntimeError("no jac callable")  # pragma: no cover - driver invariant
        out = self.user_jac(self.x_dict(x, True), *self.args)
        _, g = self.codec.flatten(None, values_by_key(out, self.layout, what="result of jac"))
        self.njev += 1
        g = self._checked_grad(g)
        if self.track_last:
            entry = self._recent_at(x)
            if entry is not None:
                entry[2] = float(np.linalg.norm(g))
                if self.njev == 1 and self.on_first_grad is not None:
                    self.on_first_grad(entry[2])
        return g

    def hessp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The Hessian of the objective at ``x`` times ``p``, as a float64 vector."""
        if self.ad is not None and self.user_hessp is None:
            self._at(x)
            out = self.ad.hvp(x, p)
        else:
            if self.user_hessp is None:
                raise RuntimeError("no hessp callable")  # pragma: no cover - driver invariant
            res = self.user_hessp(self.x_dict(x, True), self.x_dict(p, False), *self.args)
            _, out = self.codec.flatten(
                None, values_by_key(res, self.layout, what="result of hessp")
            )
        self.nhev += 1
        if not _all_finite(out) and self.nonfinite != "pass":
            raise NonFiniteError(
                "the Hessian-vector product is not finite for key(s) "
                f"{fmt_keys(self._bad_keys(out))}"
            )
        return out

    def hess(self, x: np.ndarray) -> np.ndarray:
        """The dense (n, n) float64 Hessian of the objective at ``x`` (a ``csr_array`` with
        ``hess_sparsity``)."""
        if self.sparse_hess is not None:
            h = self.sparse_hess.matrix(x)
        elif self.ad is not None and self.user_hess is None:
            self._at(x)
            h = self.ad.hess(x)
        else:
            if self.user_hess is None:
                raise RuntimeError("no hess callable")  # pragma: no cover - driver invariant
            h = dense_hessian(self.user_hess(self.x_dict(x, True), *self.args), self.layout)
        self.nhev += 1
        if self.nonfinite == "pass":
            return h
        if type(h) is not np.ndarray:  # a sparse matrix or a LinearOperator, as SciPy takes
            if not np.isfinite(getattr(h, "data", 0.0)).all():
                raise NonFiniteError("the Hessian is not finite")
            return h
        if not np.isfinite(h).all():
            raise NonFiniteError("the Hessian is not finite")
        return h

    def _recent_at(self, x: np.ndarray) -> list | None:
        for entry in reversed(self.recent):
            if np.array_equal(entry[0], x):
                return entry
        return None

    def f_at(self, x: np.ndarray) -> float | None:
        """The value at ``x`` if it is among the last points evaluated (no re-evaluation)."""
        entry = self._recent_at(x)
        return None if entry is None else entry[1]

    def grad_norm_at(self, x: np.ndarray) -> float:
        """The norm of the gradient computed at ``x`` among the last points, else NaN."""
        entry = self._recent_at(x)
        return math.nan if entry is None else entry[2]


def dense_hessian(out: Any, layout: Layout) -> np.ndarray:
    """A user Hessian — an (n, n) array/tensor, or a dict of dicts of blocks — as (n, n) float64.

    Blocks follow ``jax.hessian``'s convention: ``out[ki][kj]`` has shape
    ``x0[ki].shape + x0[kj].shape``.
    """
    n = layout.n
    if is_matrix_like(out):  # sparse or LinearOperator: to SciPy as it is, as SciPy takes it
        if tuple(out.shape) != (n, n):
            raise ValueError(
                f"the result of hess has shape {fmt_shape(out.shape)}; expected ({n}, {n}) (the "
                "number of scalars in x0)"
            )
        return out
    if not keyed_like_x0(out, layout):
        arr = float64_array(out, "the result of hess")
        if arr.ndim < 2 and arr.size == n * n:  # SciPy's np.atleast_2d (one variable)
            arr = arr.reshape(n, n)
        if arr.shape != (n, n):
            raise ValueError(
                f"the result of hess has shape {fmt_shape(arr.shape)}; expected ({n}, {n}) (the "
                "number of scalars in x0), or a dict of dicts of per-key blocks"
            )
        return arr
    rows = values_by_key(out, layout, what="result of hess")
    h = np.empty((n, n))
    for i, (ki, row) in enumerate(zip(layout.keys, rows, strict=True)):
        blocks = values_by_key(row, layout, what=at("result of hess", ki))
        for j, (kj, block) in enumerate(zip(layout.keys, blocks, strict=True)):
            arr = float64_array(block, at(at("hess", ki), kj))
            want = layout.shapes[i] + layout.shapes[j]
            if arr.shape != want:
                raise ValueError(
                    f"{at(at('hess', ki), kj)} has shape {fmt_shape(arr.shape)}; "
                    f"expected {fmt_shape(want)} ({at('x0', ki)}.shape + "
                    f"{at('x0', kj)}.shape)"
                )
            sizes = layout.sizes
            h[layout.slice_of(i), layout.slice_of(j)] = arr.reshape(sizes[i], sizes[j])
    return h


def is_matrix_like(value: Any) -> bool:
    """A SciPy sparse matrix or array, or a ``LinearOperator`` (checked without importing)."""
    if not any(c.__module__.startswith("scipy.sparse") for c in type(value).__mro__):
        return False
    import scipy.sparse
    from scipy.sparse.linalg import LinearOperator

    return scipy.sparse.issparse(value) or isinstance(value, LinearOperator)


def float64_array(value: Any, where: str) -> np.ndarray:
    """A NumPy array, or a tensor of any framework, as a float64 array (duck-typed: no imports).

    Example:
        >>> float64_array([1, 2], "A")
        array([1., 2.])
    """
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tensorflow
        value = value.numpy()
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{where} is a {type_name(value)}; expected an array or tensor")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{where} is a {type_name(value)}; expected an array or tensor of real numbers"
        ) from exc


__all__ = [
    "Aborted",
    "Mode",
    "NonFiniteError",
    "Objective",
    "dense_hessian",
    "float64_array",
    "is_matrix_like",
]
