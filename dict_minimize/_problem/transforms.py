"""Reparametrisations of one leaf: the user's entry ``x`` as a function ``x = T(z)`` of free
parameters ``z`` that any optimizer can move without constraints (or with plain bounds).

Each transform is built once from the leaf's value in ``x0`` (float64 NumPy, on the host): it
checks that ``x0`` satisfies the constraint, finds ``z0`` with ``T(z0) = x0`` and keeps the
constants it needs. At every evaluation ``forward`` computes ``x`` from ``z`` and ``vjp`` chains
a gradient with respect to ``x`` to one with respect to ``z``, both per entry in x0's framework
through an :class:`~dict_minimize.backends.array_ops.Ops` namespace: no dense Jacobian of the
transformation is ever formed (the covariance and linear transforms use the leaf's own matrix
sizes). ``forward`` is written in differentiable operations, so under ``jac='autodiff'`` the
framework differentiates ``fun(T(z))`` itself; ``vjp`` is the exact analytic chain rule for
``jac=True`` and callable gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from dict_minimize.backends.array_ops import Ops

#: the constraint types that are reparametrisations (the rest go to SciPy)
TYPES = (
    "fixed",
    "probability",
    "increasing",
    "decreasing",
    "covariance",
    "sdcorr",
    "linear",
    "positive",
    "interval",
)


class Transform:
    """One leaf's reparametrisation. Subclasses set ``z0`` (float64) and implement
    ``forward``/``vjp``; ``lb``/``ub`` (float64 like ``z0``, or None) bound ``z``."""

    kind = ""
    #: where the leaf sits and which constraint it comes from, for messages
    where = ""
    shape: tuple[int, ...] = ()
    z0: np.ndarray
    lb: np.ndarray | None = None
    ub: np.ndarray | None = None
    #: whether the user's bounds on the leaf's entries carry over to z (``fixed`` only)
    takes_bounds = False

    def __init__(self) -> None:
        self._consts: dict[Any, dict[str, Any]] = {}

    def const(self, ops: Ops, like: Any, name: str, value: np.ndarray) -> Any:
        """``value`` as a tensor like ``like``, made once per dtype and device."""
        per = self._consts.setdefault(ops.key_of(like), {})
        t = per.get(name)
        if t is None:
            t = per[name] = ops.const(value, like)
        return t

    def forward(self, ops: Ops, z: Any) -> Any:  # pragma: no cover (abstract)
        raise NotImplementedError

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:  # pragma: no cover (abstract)
        raise NotImplementedError

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.where}: {what}")


def _tol(dtype: np.dtype | None) -> float:
    """How far x0 may miss an equality (sum, symmetry, linear) at its own precision."""
    try:
        eps = float(np.finfo(dtype).eps) if dtype is not None else 2.0**-52
    except (TypeError, ValueError):  # (bfloat16, whose finfo NumPy does not know)
        eps = 2.0**-7
    return max(float(np.sqrt(eps)), 1e-8)


class Fixed(Transform):
    """Entries held at x0's values; ``z`` is the other entries, in the leaf's (C) order."""

    kind = "fixed"
    takes_bounds = True

    def __init__(self, where: str, x0: np.ndarray, mask: np.ndarray | None) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        flat = x0.reshape(-1)
        fixed = np.ones(flat.size, dtype=bool) if mask is None else mask.reshape(-1)
        self.free = np.flatnonzero(~fixed)
        held = np.flatnonzero(fixed)
        index = np.empty(flat.size, dtype=np.int64)
        index[self.free] = np.arange(self.free.size)
        index[held] = self.free.size + np.arange(held.size)
        self.index, self.values = index, flat[held]
        self.z0 = flat[self.free]

    def forward(self, ops: Ops, z: Any) -> Any:
        both = ops.concat([z, self.const(ops, z, "values", self.values)], 0)
        return ops.reshape(ops.take(both, self.index), self.shape)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        return ops.take(ops.reshape(g, (-1,)), self.free)


class Probability(Transform):
    """Entries >= 0 summing to 1 (over the leaf, or along ``axis``): a softmax of ``z`` with
    the last entry (along the axis) as the reference, ``z = log(x) - log(x_last)``. Exact
    zeros are reached only in the limit (``z -> -inf``)."""

    kind = "probability"

    def __init__(self, where: str, x0: np.ndarray, axis: int | None, dtype: Any) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        if axis is None:
            self.perm: tuple[int, ...] | None = None
            moved = x0.reshape(-1)
        else:
            if not -x0.ndim <= axis < x0.ndim:
                raise self.fail(f"axis {axis} is out of range for an entry of shape {x0.shape}")
            axis %= x0.ndim
            self.perm = (*(i for i in range(x0.ndim) if i != axis), axis)
            moved = np.transpose(x0, self.perm)
        self.back = None if self.perm is None else tuple(np.argsort(self.perm))
        self.moved_shape = moved.shape
        if moved.shape[-1] < 1:
            raise self.fail("a probability vector needs at least one entry")
        if not np.all(moved > 0):
            raise self.fail(
                "a probability entry of x0 is not > 0: start from strictly positive "
                "probabilities (zeros are reached only in the limit of this parametrisation)"
            )
        total = moved.sum(axis=-1)
        worst = float(np.max(np.abs(total - 1)))
        if worst > _tol(dtype):
            raise self.fail(
                f"x0's probabilities must sum to 1 (off by up to {worst:.3g}); they are not "
                "projected: divide x0 by its sum first"
            )
        self.z0 = (np.log(moved[..., :-1]) - np.log(moved[..., -1:])).reshape(-1)
        self.z_shape = (*moved.shape[:-1], moved.shape[-1] - 1)

    def _moved(self, ops: Ops, t: Any) -> Any:
        if self.perm is None:
            return ops.reshape(t, (-1,))
        return ops.permute(t, self.perm)

    def _unmoved(self, ops: Ops, t: Any) -> Any:
        if self.back is None:
            return ops.reshape(t, self.shape)
        return ops.permute(t, self.back)

    def forward(self, ops: Ops, z: Any) -> Any:
        zm = ops.reshape(z, self.z_shape)
        zero = self.const(ops, z, "zero", np.zeros((*self.moved_shape[:-1], 1)))
        return self._unmoved(ops, ops.softmax(ops.concat([zm, zero], -1)))

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        xm, gm = self._moved(ops, x), self._moved(ops, g)
        v = xm * (gm - ops.sum(gm * xm, -1, True))
        return ops.reshape(v[..., :-1], (-1,))


class Monotone(Transform):
    """Weakly increasing (or decreasing) entries, in the leaf's (C) order: the first entry and
    the steps. ``bounded``: the steps are ``z[1:] >= 0`` (bounds for the method); otherwise
    their squares ``z[1:]**2`` (any method; a tie is reached at ``z = 0``)."""

    def __init__(self, where: str, x0: np.ndarray, kind: str, bounded: bool) -> None:
        super().__init__()
        self.kind, self.where, self.shape = kind, where, x0.shape
        self.sign = 1.0 if kind == "increasing" else -1.0
        self.bounded = bounded
        flat = x0.reshape(-1)
        steps = self.sign * np.diff(flat)
        if np.any(steps < 0):
            i = int(np.flatnonzero(steps < 0)[0])
            raise self.fail(
                f"x0 is not {kind} (flat entries {i} and {i + 1}: {flat[i]!r}, {flat[i + 1]!r}); "
                "it is not projected: sort it first"
            )
        self.n = flat.size
        if bounded:
            self.z0 = np.concatenate([flat[:1], steps])
            self.lb = np.concatenate([[-np.inf], np.zeros(steps.size)])[: flat.size]
            self.ub = np.full(flat.size, np.inf)
        else:
            self.z0 = np.concatenate([flat[:1], np.sqrt(steps)])
        self.ties = int(np.sum(steps == 0))

    def forward(self, ops: Ops, z: Any) -> Any:
        if self.n < 2:
            return ops.reshape(z, self.shape)
        first, rest = z[:1], z[1:]
        steps = rest if self.bounded else rest * rest
        if self.sign < 0:
            steps = -steps
        return ops.reshape(ops.concat([first, first + ops.cumsum(steps)], 0), self.shape)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        gf = ops.reshape(g, (-1,))
        if self.n < 2:
            return gf
        total = ops.sum(gf, None, False)
        # d x_i / d step_j = sign for i > j: the sum of g after position j
        g_steps = (total - ops.cumsum(gf)[:-1]) * self.sign
        if not self.bounded:
            g_steps = g_steps * (z[1:] * 2)
        return ops.concat([ops.reshape(total, (1,)), g_steps], 0)


def _tril_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the flat n x n matrix) of the lower triangle, row by row, and the index
    that builds the matrix from ``concat([lower_triangle, [0]])``."""
    rows, cols = np.tril_indices(n)
    pos = rows * n + cols
    index = np.full(n * n, pos.size, dtype=np.int64)
    index[pos] = np.arange(pos.size)
    return pos, index


class Covariance(Transform):
    """A symmetric positive semi-definite matrix ``S = L @ L.T``, ``z`` the lower triangle of
    ``L`` (row by row; ``z0`` from the Cholesky factor of ``x0``, which must be positive
    definite). Singular matrices (a zero row of ``L``) are reached too."""

    kind = "covariance"

    def __init__(self, where: str, x0: np.ndarray, dtype: Any) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        if x0.ndim != 2 or x0.shape[0] != x0.shape[1]:
            raise self.fail(f"a covariance entry must be a square matrix; got shape {x0.shape}")
        self.n = x0.shape[0]
        self.pos, self.index = _tril_index(self.n)
        scale = max(float(np.max(np.abs(x0), initial=0.0)), 1.0)
        if float(np.max(np.abs(x0 - x0.T), initial=0.0)) > _tol(dtype) * scale:
            raise self.fail("x0 is not symmetric (it is not projected: pass (S + S.T) / 2)")
        self.z0 = _cholesky(self, x0)[np.tril_indices(self.n)]

    def factor(self, ops: Ops, z: Any) -> Any:
        zero = self.const(ops, z, "zero", np.zeros(1))
        return ops.reshape(ops.take(ops.concat([z, zero], 0), self.index), (self.n, self.n))

    def forward(self, ops: Ops, z: Any) -> Any:
        lower = self.factor(ops, z)
        return ops.matmul(lower, ops.permute(lower, (1, 0)))

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        gl = ops.matmul(g + ops.permute(g, (1, 0)), self.factor(ops, z))
        return ops.take(ops.reshape(gl, (-1,)), self.pos)


def _cholesky(t: Transform, s: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        raise t.fail(
            "x0's covariance matrix is not positive definite (the start must be: add a small "
            "multiple of the identity)"
        ) from None


class SdCorr(Transform):
    """A vector of ``n`` standard deviations then the ``n(n-1)/2`` correlations of the lower
    triangle (row by row) of a valid (positive semi-definite) correlation structure: computed
    from a covariance ``L @ L.T`` as in :class:`Covariance`."""

    kind = "sdcorr"

    def __init__(self, where: str, x0: np.ndarray) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        size = x0.size
        n = round((np.sqrt(8 * size + 1) - 1) / 2)
        if x0.ndim != 1 or n * (n + 1) // 2 != size:
            raise self.fail(
                "an sdcorr entry is a vector of n standard deviations and n(n-1)/2 "
                f"correlations; got shape {x0.shape}"
            )
        self.n = n
        self.pos, self.index = _tril_index(n)
        rows, cols = np.tril_indices(n, -1)
        self.rows, self.cols = rows, cols
        self.diag = np.arange(n) * (n + 1)
        self.strict = rows * n + cols
        sd, corr = x0[:n], x0[n:]
        if np.any(sd <= 0):
            raise self.fail("x0's standard deviations must be > 0")
        c = np.eye(n)
        c[rows, cols] = c[cols, rows] = corr
        self.z0 = _cholesky(self, c * np.outer(sd, sd))[np.tril_indices(n)]
        # (the matrix of g_corr * corr: strict lower triangle from concat([values, [0]]))
        self.strict_index = np.full(n * n, rows.size, dtype=np.int64)
        self.strict_index[self.strict] = np.arange(rows.size)
        # G_S from concat([g_corr / (sd_i sd_j), g_sd / (2 sd), [0]])
        self.grad_index = np.full(n * n, rows.size + n, dtype=np.int64)
        self.grad_index[self.strict] = np.arange(rows.size)
        self.grad_index[self.diag] = rows.size + np.arange(n)

    def _parts(self, ops: Ops, z: Any) -> tuple[Any, Any, Any, Any]:
        zero = self.const(ops, z, "zero", np.zeros(1))
        lower = ops.reshape(ops.take(ops.concat([z, zero], 0), self.index), (self.n, self.n))
        s = ops.reshape(ops.matmul(lower, ops.permute(lower, (1, 0))), (-1,))
        sd = ops.sqrt(ops.take(s, self.diag))
        corr = ops.take(s, self.strict) / (ops.take(sd, self.rows) * ops.take(sd, self.cols))
        return lower, sd, corr, zero

    def forward(self, ops: Ops, z: Any) -> Any:
        _, sd, corr, _ = self._parts(ops, z)
        return ops.concat([sd, corr], 0)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        n = self.n
        lower, sd, corr, zero = self._parts(ops, z)
        g_sd, g_corr = g[:n], g[n:]
        m = ops.reshape(ops.take(ops.concat([g_corr * corr, zero], 0), self.strict_index), (n, n))
        g_sd = g_sd - (ops.sum(m, 1, False) + ops.sum(m, 0, False)) / sd
        g_s_strict = g_corr / (ops.take(sd, self.rows) * ops.take(sd, self.cols))
        g_s = ops.take(ops.concat([g_s_strict, g_sd / (sd * 2), zero], 0), self.grad_index)
        g_s = ops.reshape(g_s, (n, n))
        gl = ops.matmul(g_s + ops.permute(g_s, (1, 0)), lower)
        return ops.take(ops.reshape(gl, (-1,)), self.pos)


class Linear(Transform):
    """Linear equalities ``A @ x.ravel() = value``: ``x = x0 + N @ z`` with ``N`` an orthonormal
    basis of the null space of ``A`` (``z0 = 0``; x0 must satisfy the equalities)."""

    kind = "linear"

    def __init__(self, where: str, x0: np.ndarray, a: np.ndarray, value: Any, dtype: Any) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        size = x0.size
        if a.shape == x0.shape and a.ndim != 2:
            a = a.reshape(1, size)  # weights of the entry's shape: one equality
        elif a.ndim == 1 and a.size == size:
            a = a.reshape(1, size)
        elif a.shape[1:] == x0.shape and a.ndim == x0.ndim + 1:
            a = a.reshape(a.shape[0], size)
        if a.ndim != 2 or a.shape[1] != size:
            raise self.fail(
                f"the weights must have shape (m, {size}), (m,) + {x0.shape} or the entry's "
                f"shape; got {a.shape}"
            )
        b = np.broadcast_to(np.asarray(value, dtype=np.float64), (a.shape[0],))
        miss = float(np.max(np.abs(a @ x0.reshape(-1) - b), initial=0.0))
        scale = 1.0 + float(np.max(np.abs(b), initial=0.0))
        if not np.all(np.isfinite(a)) or miss > _tol(dtype) * scale:
            raise self.fail(
                f"x0 does not satisfy the linear equalities (off by {miss:.3g}); it is not "
                "projected: start from a point that satisfies them"
            )
        self.basis = scipy.linalg.null_space(a)  # (size, k), orthonormal columns
        self.start = x0.reshape(-1)
        self.z0 = np.zeros(self.basis.shape[1])

    def forward(self, ops: Ops, z: Any) -> Any:
        basis = self.const(ops, z, "basis", self.basis)
        start = self.const(ops, z, "start", self.start)
        moved = ops.reshape(ops.matmul(basis, ops.reshape(z, (-1, 1))), (-1,))
        return ops.reshape(start + moved, self.shape)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        basis = self.const(ops, z, "basis", self.basis)
        return ops.reshape(ops.matmul(ops.reshape(g, (1, -1)), basis), (-1,))


class Positive(Transform):
    """Entries > 0 without bounds: ``x = softplus(z)`` or ``x = exp(z)``."""

    kind = "positive"

    def __init__(self, where: str, x0: np.ndarray, transform: str) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        if transform not in ("softplus", "exp"):
            raise self.fail(f"transform must be 'softplus' or 'exp'; got {transform!r}")
        self.transform = transform
        if not np.all(x0 > 0):
            raise self.fail("x0 must be > 0 for a positive entry")
        flat = x0.reshape(-1)
        # softplus^-1(x) = log(expm1(x)) = x + log(-expm1(-x)), stable for large x
        self.z0 = np.log(flat) if transform == "exp" else flat + np.log(-np.expm1(-flat))

    def forward(self, ops: Ops, z: Any) -> Any:
        f = ops.exp if self.transform == "exp" else ops.softplus
        return ops.reshape(f(z), self.shape)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        gf = ops.reshape(g, (-1,))
        d = ops.exp(z) if self.transform == "exp" else ops.sigmoid(z)
        return gf * d


class Interval(Transform):
    """Entries in ``(lower, upper)`` without bounds: ``x = lower + (upper - lower) *
    sigmoid(z)`` (the ends are reached only in the limit)."""

    kind = "interval"

    def __init__(self, where: str, x0: np.ndarray, lower: Any, upper: Any) -> None:
        super().__init__()
        self.where, self.shape = where, x0.shape
        try:
            lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), x0.shape).reshape(-1)
            hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), x0.shape).reshape(-1)
        except (TypeError, ValueError):
            raise self.fail(
                f"lower and upper must be numbers or arrays broadcastable to {x0.shape}"
            ) from None
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise self.fail("lower and upper must be finite with lower < upper")
        flat = x0.reshape(-1)
        if not np.all((flat > lo) & (flat < hi)):
            raise self.fail("x0 must lie strictly inside (lower, upper)")
        self.lo, self.width = lo, hi - lo
        u = (flat - lo) / self.width
        self.z0 = np.log(u) - np.log1p(-u)

    def forward(self, ops: Ops, z: Any) -> Any:
        lo, width = self.const(ops, z, "lo", self.lo), self.const(ops, z, "width", self.width)
        return ops.reshape(lo + width * ops.sigmoid(z), self.shape)

    def vjp(self, ops: Ops, z: Any, x: Any, g: Any) -> Any:
        width = self.const(ops, z, "width", self.width)
        s = ops.sigmoid(z)
        return ops.reshape(g, (-1,)) * width * s * (1 - s)
