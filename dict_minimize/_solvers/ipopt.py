"""``minimize(..., method="ipopt")``: the prepared flat problem handed to Ipopt through cyipopt.

:func:`dict_minimize._solvers.minimize.solve` does the shared preparation (the layout, bounds,
the objective SciPy would call, the flat constraints) and calls :func:`ipopt_solver` in place of
``scipy.optimize.minimize``. This module only translates: the flat constraints become Ipopt's
``g(x)`` with bounds ``cl <= g <= cu``, their Jacobians one sparse triplet structure (the
pattern of a sparse derivative, else the full dense block), the Hessian of the Lagrangian the
lower triangle of the union of the objective's and the constraints' patterns (values summed
through an index map computed once), or Ipopt's limited-memory approximation.

Ipopt's sign convention (the one the result's multipliers follow): at a solution
``∇f + Σ_i J_iᵀ λ_i − z_L + z_U = 0`` with ``z_L, z_U >= 0``; a constraint active at its
upper bound has ``λ >= 0``, one active at its lower bound ``λ <= 0`` (so SciPy's ``'ineq'``,
``c(x) >= 0``, has ``λ <= 0``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse

from dict_minimize._problem.objective import is_matrix_like

#: above this many variables, an exact Hessian without a sparsity pattern is not built densely:
#: Ipopt gets its limited-memory approximation instead
DENSE_HESSIAN_MAX_N = 1000
#: Ipopt's infinity (its ``nlp_lower_bound_inf``/``nlp_upper_bound_inf`` are ±1e19)
_INF = 1e20
#: what Ipopt prints by default; the package keeps quiet like SciPy's methods (print_level 0)
_QUIET = {"print_level": 0, "sb": "yes"}
#: SciPy's spelling of two options, accepted for Ipopt's
_ALIASES = {"maxiter": "max_iter"}
_STOP_MESSAGE = "`callback` raised `StopIteration`."


def import_cyipopt() -> Any:
    """cyipopt, or an ImportError that names the extra."""
    try:
        import cyipopt
    except ImportError as exc:  # pragma: no cover - the extra is installed where tests run
        raise ImportError(
            "method='ipopt' needs cyipopt (Ipopt's Python interface): "
            "pip install 'dict_minimize[ipopt]'"
        ) from exc
    return cyipopt


def wants_limited_memory(options: Mapping[str, Any] | None) -> bool:
    """Whether the user asked Ipopt for its quasi-Newton Hessian."""
    return options is not None and options.get("hessian_approximation") == "limited-memory"


def default_hess(mode: str, hess: Any, options: Any, n: int, has_ad: bool, sparse: bool) -> Any:
    """``hess`` for Ipopt: ``'autodiff'`` where autodiff gives the exact Hessian and either a
    sparse pattern exists or ``n`` is small enough for a dense one; else what the user gave."""
    if hess is not None or wants_limited_memory(options):
        return hess
    if mode == "autodiff" and has_ad and (sparse or n <= DENSE_HESSIAN_MAX_N):
        return "autodiff"
    return None


# -- the constraints as Ipopt's g(x) ------------------------------------------------------------
class _Block:
    """One constraint as a slice of Ipopt's ``g``: values, Jacobian triplets, Hessian term."""

    def __init__(self, m: int, shape: tuple, lb: Any, ub: Any) -> None:
        self.m, self.shape = m, shape
        self.cl = np.broadcast_to(np.asarray(lb, dtype=np.float64), (m,)).copy()
        self.cu = np.broadcast_to(np.asarray(ub, dtype=np.float64), (m,)).copy()
        self.value: Callable[[np.ndarray], np.ndarray] = _no_values
        self.jac_rows = self.jac_cols = np.zeros(0, dtype=np.int64)
        self.jac_values: Callable[[np.ndarray], np.ndarray] = _no_values
        # the term (rows, cols, values(x, v)) of the Lagrangian's Hessian; None: zero (linear);
        # False: not available exactly (limited-memory then)
        self.hess: Any = None


def _no_values(x: np.ndarray, *rest: Any) -> np.ndarray:
    return np.zeros(0)


def _full(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.divmod(np.arange(m * n, dtype=np.int64), n)
    return rows, cols


def _output_shape(orig: Any, x_dict: Any) -> tuple:
    """The shape of a constraint function's output at ``x0`` (for the multipliers)."""
    if isinstance(orig, Mapping):
        fun, args = orig["fun"], orig.get("args", ())
    else:
        fun, args = orig.fun, getattr(orig, "args", ())
    args = args if isinstance(args, tuple) else (args,)
    out = fun(x_dict, *args)
    return tuple(int(d) for d in getattr(out, "shape", ()))


def _forward_differences(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """The (m, n) Jacobian (or gradient for a scalar f) by forward differences (SciPy's
    ``'2-point'`` step)."""
    f0 = np.atleast_1d(np.asarray(f(x), dtype=np.float64))
    h = math.sqrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
    out = np.empty((f0.size, x.size))
    for j in range(x.size):
        xj = x.copy()
        xj[j] += h[j]
        out[:, j] = (np.atleast_1d(np.asarray(f(xj), dtype=np.float64)) - f0) / h[j]
    return out


def _dense_jac(jac: Any, value: Callable) -> Callable[[np.ndarray], np.ndarray]:
    def values(x: np.ndarray) -> np.ndarray:
        out = _forward_differences(value, x) if isinstance(jac, str) else jac(x)
        if is_matrix_like(out):
            out = out.toarray() if hasattr(out, "toarray") else out @ np.eye(out.shape[1])
        return np.asarray(out, dtype=np.float64).reshape(-1)

    return values


def _dense_hess_term(hess: Callable, n: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def values(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = hess(x, v)
        if is_matrix_like(out):
            out = out.toarray() if hasattr(out, "toarray") else out @ np.eye(n)
        return np.asarray(out, dtype=np.float64).reshape(-1)

    return values


def _linear(A: Any, data: np.ndarray) -> tuple[Callable, Callable]:
    """A linear constraint's values and its (constant) Jacobian values."""

    def value(x: np.ndarray) -> np.ndarray:
        return np.asarray(A @ x, dtype=np.float64).reshape(-1)

    def jac_values(x: np.ndarray) -> np.ndarray:
        return data

    return value, jac_values


def _block(orig: Any, flat: Any, x0_dict: Any, n: int, dense_hess: bool) -> _Block:
    """One flat constraint (as :func:`make_constraints` built it) as a block of ``g``."""
    if isinstance(flat, scipy.optimize.LinearConstraint):
        A = flat.A
        A = scipy.sparse.coo_array(A) if scipy.sparse.issparse(A) else np.atleast_2d(A)
        m = A.shape[0]
        blk = _Block(m, (m,), flat.lb, flat.ub)
        if scipy.sparse.issparse(A):
            csr = scipy.sparse.csr_array(A)
            csr.sum_duplicates()
            coo = csr.tocoo()
            rows, cols, data = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
        else:
            rows, cols = _full(m, n)
            data = np.asarray(A, dtype=np.float64).reshape(-1)
        blk.jac_rows, blk.jac_cols = rows, cols
        blk.value, blk.jac_values = _linear(A, data)
        return blk
    sparse_jac = getattr(flat, "_dm_jac", None)
    if sparse_jac is not None:  # (no evaluation: a flat pattern gives flat multipliers)
        known = sparse_jac.out_shape
        shape = tuple(known) if known is not None else (int(sparse_jac.shape[0]),)
    else:
        shape = _output_shape(orig, x0_dict)
    m = int(np.prod(shape)) if shape else 1
    if isinstance(flat, Mapping):  # SciPy's dict form (a NumPy constraint without autodiff)
        eq = flat["type"] == "eq"
        blk = _Block(m, shape, 0.0, 0.0 if eq else np.inf)
        value, jac, hess = flat["fun"], flat.get("jac", "2-point"), False
    else:
        blk = _Block(m, shape, flat.lb, flat.ub)
        value, jac, hess = flat.fun, flat.jac, flat.hess
    blk.value = lambda x: np.asarray(value(x), dtype=np.float64).reshape(-1)
    if sparse_jac is not None:
        blk.jac_rows = np.asarray(sparse_jac.rows, dtype=np.int64)
        blk.jac_cols = np.asarray(sparse_jac.cols, dtype=np.int64)
        blk.jac_values = sparse_jac.values
    else:
        blk.jac_rows, blk.jac_cols = _full(m, n)
        blk.jac_values = _dense_jac(jac, blk.value)
    sparse_hess = getattr(flat, "_dm_hess", None)
    if sparse_hess is not None:
        blk.hess = (
            np.asarray(sparse_hess.rows, dtype=np.int64),
            np.asarray(sparse_hess.cols, dtype=np.int64),
            sparse_hess.values,
        )
    elif callable(hess) and not isinstance(hess, scipy.optimize.HessianUpdateStrategy):
        blk.hess = (*_full(n, n), _dense_hess_term(hess, n)) if dense_hess else False
    else:
        blk.hess = False
    return blk


# -- the Hessian of the Lagrangian: one lower-triangular structure, an index map per term -------
class _Lagrangian:
    """The lower triangle of ``σ ∇²f + Σ_i ∇²(λ_i · c_i)``: the union of the terms' patterns,
    each term's values added through an index map computed once."""

    def __init__(self, n: int, terms: list[tuple[np.ndarray, np.ndarray, Callable]]) -> None:
        keys, self.maps = [], []
        for rows, cols, _ in terms:
            keep = rows >= cols
            keys.append(rows[keep] * n + cols[keep])
            self.maps.append(keep)
        union = np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
        self.rows, self.cols = np.divmod(union, n)
        self.index = [np.searchsorted(union, k) for k in keys]
        self.terms = [t[2] for t in terms]
        self.nnz = union.size

    def values(self, parts: list[np.ndarray | None]) -> np.ndarray:
        idx = np.concatenate([i for i, p in zip(self.index, parts, strict=True) if p is not None])
        w = np.concatenate([p[k] for k, p in zip(self.maps, parts, strict=True) if p is not None])
        return np.bincount(idx, weights=w, minlength=self.nnz)


# -- the solve -----------------------------------------------------------------------------------
def _flat_bounds(bounds: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:
        return np.full(n, -_INF), np.full(n, _INF)
    if isinstance(bounds, scipy.optimize.Bounds):
        lb, ub = bounds.lb, bounds.ub
    else:  # SciPy's sequence of (lb, ub) pairs
        pairs = list(bounds)
        lb = [-np.inf if lo is None else lo for lo, _ in pairs]
        ub = [np.inf if hi is None else hi for _, hi in pairs]
    lo = np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,))
    hi = np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,))
    return np.clip(lo, -_INF, _INF), np.clip(hi, -_INF, _INF)


@contextlib.contextmanager
def _captured_stdout() -> Any:
    """What C code prints to file descriptor 1 while the block runs (Ipopt's option errors)."""
    out = SimpleNamespace(text="")
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield out
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode(errors="replace")


def _add_options(problem: Any, options: Mapping[str, Any] | None, tol: Any) -> None:
    opts: dict[str, Any] = dict(_QUIET)
    if tol is not None:
        opts["tol"] = float(tol)
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"options keys must be Ipopt option names (str); got {key!r}")
        if key == "disp":
            opts["print_level"] = 5 if value else 0
            continue
        opts[_ALIASES.get(key, key)] = value
    for key, value in opts.items():
        if isinstance(value, (bool, np.bool_)):
            value = "yes" if value else "no"
        elif isinstance(value, (np.integer, np.floating)):
            value = value.item()
        try:
            with _captured_stdout() as said:
                problem.add_option(key, value)
        except TypeError:
            told = " ".join(said.text.split())
            raise ValueError(
                f"options[{key!r}] = {value!r}: Ipopt rejected it"
                + (f" ({told})" if told else "")
                + ". See https://coin-or.github.io/Ipopt/OPTIONS.html for Ipopt's options and "
                "their types"
            ) from None


class _Watch:
    """Per-iteration state: the iteration count and the best feasible iterate (for Ctrl-C)."""

    def __init__(self, feas_tol: float, m: int) -> None:
        self.nit, self.feas_tol, self.m = 0, feas_tol, m
        self.best_x: np.ndarray | None = None
        self.best_f = math.inf
        self.stopped = False
        self.interrupted: KeyboardInterrupt | None = None


def ipopt_solver(
    *,
    run: Any,
    originals: Sequence[Any],
    flat_constraints: Sequence[Any],
    bounds: Any,
    hess_flat: Any,
    fun_flat: Callable,
    jac_flat: Any,
    scipy_callback: Callable | None,
    options: Mapping[str, Any] | None,
    tol: Any,
) -> Callable[[Callable, np.ndarray], Any]:
    """``solver(fun_flat, x0_flat, **scipy_kwargs) -> OptimizeResult`` running Ipopt on the
    prepared problem, called by the driver where it would call ``scipy.optimize.minimize``
    (SciPy's keywords are ignored: this solver was given what it needs)."""
    cyipopt = import_cyipopt()
    layout = run.layout
    n = layout.n

    def solver(_fun: Callable, x0_flat: np.ndarray, **_scipy_kwargs: Any) -> Any:
        x0_dict = run.x_dict(x0_flat, False)
        exact = not wants_limited_memory(options)
        dense_hess = n <= DENSE_HESSIAN_MAX_N
        blocks = [
            _block(o, f, x0_dict, n, dense_hess and exact)
            for o, f in zip(originals, flat_constraints, strict=True)
        ]
        sparse_obj = getattr(run, "sparse_hess", None)
        obj_term: Any = None
        if sparse_obj is not None and exact:
            obj_term = (
                np.asarray(sparse_obj.rows, dtype=np.int64),
                np.asarray(sparse_obj.cols, dtype=np.int64),
                lambda x, sd=sparse_obj: sd.values(x),
            )
        elif callable(hess_flat) and exact:
            obj_term = (*_full(n, n), lambda x: np.asarray(hess_flat(x)).reshape(-1))
        exact = exact and obj_term is not None and all(b.hess is not False for b in blocks)
        return _run(
            cyipopt, run, blocks, obj_term if exact else None, exact, bounds, fun_flat,
            jac_flat, scipy_callback, options, tol, x0_flat,
        )  # fmt: skip

    return solver


def _run(
    cyipopt: Any,
    run: Any,
    blocks: list[_Block],
    obj_term: Any,
    exact: bool,
    bounds: Any,
    fun_flat: Callable,
    jac_flat: Any,
    scipy_callback: Callable | None,
    options: Mapping[str, Any] | None,
    tol: Any,
    x0_flat: np.ndarray,
) -> Any:
    n = run.layout.n
    m = sum(b.m for b in blocks)
    offsets = np.cumsum([0] + [b.m for b in blocks])
    jac_rows = np.concatenate(
        [b.jac_rows + off for b, off in zip(blocks, offsets, strict=False)]
        or [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    jac_cols = np.concatenate([b.jac_cols for b in blocks] or [np.zeros(0, dtype=np.int64)])
    grad = jac_flat if callable(jac_flat) else (lambda x: _forward_differences(fun_flat, x)[0])

    nlp = SimpleNamespace()
    nlp.objective = lambda x: float(fun_flat(x))
    nlp.gradient = grad
    nlp.constraints = lambda x: (
        np.concatenate([b.value(x) for b in blocks]) if blocks else np.zeros(0)
    )
    nlp.jacobianstructure = lambda: (jac_rows, jac_cols)
    nlp.jacobian = lambda x: (
        np.concatenate([b.jac_values(x) for b in blocks]) if blocks else np.zeros(0)
    )
    if exact:
        terms = [obj_term] + [b.hess for b in blocks if b.hess is not None]
        lag = _Lagrangian(n, terms)
        with_hess = [b for b in blocks if b.hess is not None]
        slices = [slice(offsets[i], offsets[i + 1]) for i, b in enumerate(blocks) if b.hess]

        def hessian(x: np.ndarray, lagrange: np.ndarray, obj_factor: float) -> np.ndarray:
            parts = [obj_factor * obj_term[2](x) if obj_factor != 0.0 else None]
            for b, s in zip(with_hess, slices, strict=True):
                v = lagrange[s]
                parts.append(b.hess[2](x, v) if np.any(v) else None)
            if all(p is None for p in parts):
                return np.zeros(lag.nnz)
            return lag.values(parts)

        nlp.hessianstructure = lambda: (lag.rows, lag.cols)
        nlp.hessian = hessian

    opts = dict(options or {})
    feas_tol = float(opts.get("constr_viol_tol", 1e-4))
    watch = _Watch(feas_tol, m)
    problem_box: list[Any] = []

    def intermediate(alg_mod: int, iter_count: int, obj_value: float, inf_pr: float,
                     inf_du: float, mu: float, d_norm: float, regularization_size: float,
                     alpha_du: float, alpha_pr: float, ls_trials: int) -> bool:  # fmt: skip
        watch.nit = iter_count
        if iter_count == 0 and scipy_callback is None and m == 0:
            return True
        x = np.array(problem_box[0].get_current_iterate(scaled=False)["x"], dtype=np.float64)
        if (m == 0 or inf_pr <= watch.feas_tol) and obj_value < watch.best_f:
            watch.best_x, watch.best_f = x, float(obj_value)
        if iter_count == 0 or scipy_callback is None:
            return True
        fields = {
            "x": x, "fun": float(obj_value), "nit": iter_count, "inf_pr": float(inf_pr),
            "inf_du": float(inf_du), "mu": float(mu), "d_norm": float(d_norm),
            "alpha_pr": float(alpha_pr), "alpha_du": float(alpha_du),
        }  # fmt: skip
        run.nit = iter_count - 1  # (the callback counts this iteration)
        try:
            scipy_callback(scipy.optimize.OptimizeResult(fields))
        except StopIteration:
            watch.stopped = True
            return False
        except KeyboardInterrupt as exc:  # stop Ipopt now (cyipopt would finish the iteration)
            watch.interrupted = exc
            return False
        except Exception as exc:
            if type(exc).__name__ == "_Halt":  # the driver's stop for methods like this one
                watch.stopped = True
                return False
            raise
        return True

    nlp.intermediate = intermediate
    lb, ub = _flat_bounds(bounds, n)
    cl = np.concatenate([b.cl for b in blocks]) if blocks else np.zeros(0)
    cu = np.concatenate([b.cu for b in blocks]) if blocks else np.zeros(0)
    problem = cyipopt.Problem(
        n=n,
        m=m,
        problem_obj=nlp,
        lb=lb,
        ub=ub,
        cl=np.clip(cl, -_INF, _INF),
        cu=np.clip(cu, -_INF, _INF),
    )
    problem_box.append(problem)
    _add_options(problem, options, tol)
    if not exact:
        problem.add_option("hessian_approximation", "limited-memory")
    try:
        x, info = problem.solve(np.array(x0_flat, dtype=np.float64))
        if watch.interrupted is not None:
            raise watch.interrupted
    except KeyboardInterrupt:
        if watch.best_x is not None:  # the best feasible iterate is what the result keeps
            run.best_x, run.best_f = watch.best_x, watch.best_f
            run._best_buffer = True
        raise
    return _raw_result(run, blocks, offsets, watch, x, info, jac_flat)


def _raw_result(
    run: Any,
    blocks: list[_Block],
    offsets: np.ndarray,
    watch: _Watch,
    x: np.ndarray,
    info: Mapping[str, Any],
    jac_flat: Any,
) -> Any:
    status = int(info["status"])
    message = info["status_msg"]
    message = message.decode() if isinstance(message, bytes) else str(message)
    mult = np.asarray(info["mult_g"], dtype=np.float64)
    multipliers = [mult[offsets[i] : offsets[i + 1]].reshape(b.shape) for i, b in enumerate(blocks)]
    res = scipy.optimize.OptimizeResult(
        x=np.array(x, dtype=np.float64),
        fun=float(info["obj_val"]),
        jac=None,
        success=status in (0, 1),  # Solve_Succeeded, Solved_To_Acceptable_Level
        status=status,
        message=message,
        nit=watch.nit,
        ipopt_status=status,
        multipliers=multipliers,
        constr_values=[
            np.asarray(info["g"])[offsets[i] : offsets[i + 1]].reshape(b.shape)
            for i, b in enumerate(blocks)
        ],
        z_L=np.asarray(info["mult_x_L"], dtype=np.float64),
        z_U=np.asarray(info["mult_x_U"], dtype=np.float64),
    )
    if watch.stopped:
        res["success"], res["status"], res["message"] = False, 99, _STOP_MESSAGE
    if callable(jac_flat) and math.isfinite(res.fun):
        res["jac"] = np.asarray(jac_flat(res.x), dtype=np.float64)
    return res


def finish_ipopt(out: Any, run: Any) -> Any:
    """The Ipopt-specific fields of the user's result: bound multipliers as dicts like x0."""
    for side in ("z_L", "z_U"):
        z = out.get(side)
        if isinstance(z, np.ndarray) and z.shape == (run.layout.n,):
            out[side] = run.x_dict(z, False)
    return out


def check_ipopt_args(hessp: Any) -> None:
    """What Ipopt cannot use: SciPy's warning for it, as for SciPy's methods."""
    if hessp is not None:
        import warnings

        warnings.warn(
            "Method ipopt does not use Hessian-vector product information (hessp).",
            RuntimeWarning,
            stacklevel=4,
        )


__all__ = [
    "DENSE_HESSIAN_MAX_N",
    "check_ipopt_args",
    "default_hess",
    "finish_ipopt",
    "import_cyipopt",
    "ipopt_solver",
]
