"""Constraints over a dict: SciPy's forms with functions of ``x_dict``, turned into flat ones.

Accepted forms (several at once, in a list):

- SciPy's dict form ``{"type": "eq" | "ineq", "fun": c, "jac": ..., "args": (...)}``;
- :class:`NonlinearConstraint` (ours: autodiff derivatives by default) or SciPy's own
  ``scipy.optimize.NonlinearConstraint`` whose ``fun`` takes the dict;
- :class:`LinearConstraint` with coefficients given per key (ours), or SciPy's own
  ``scipy.optimize.LinearConstraint`` with an ``(m, n)`` matrix in the layout's order.

``c(x_dict, *args)`` may return a tensor of any shape: it is flattened to ``m`` values, and its
Jacobian is an ``(m, n)`` float64 matrix whose columns follow the layout's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.optimize
from scipy.sparse.linalg import LinearOperator

from dict_minimize._errors import at, fmt_key, fmt_shape, type_name
from dict_minimize._problem.methods import REGISTRY
from dict_minimize._problem.objective import dense_hessian, float64_array, is_matrix_like
from dict_minimize._problem.sparsity import (
    SparseDerivative,
    jacobian_pattern,
    lagrangian_pattern,
    make_products,
)
from dict_minimize._structure.layout import Layout, keyed_like_x0
from dict_minimize._structure.tree import partial_leaves
from dict_minimize._structure.types import Backend, Codec, SparseProducts, VectorAD
from dict_minimize.backends._common import scalar_to_float

#: methods that take constraints (read from the registry of methods)
CONSTRAINED = frozenset(m.name for m in REGISTRY if m.constraints)
#: methods that only ever evaluate a constraint's value
_VALUE_ONLY = frozenset(m.name for m in REGISTRY if m.constraints and not m.gradient)
_FD = ("2-point", "3-point")


class NonlinearConstraint:
    """``lb <= fun(x_dict, *args) <= ub``, with exact derivatives by autodiff by default.

    ``fun`` returns a tensor of any shape (flattened to ``m`` values); ``lb`` and ``ub`` are
    scalars (broadcast) or arrays of ``m`` values (or of the output's shape); use ``-np.inf`` /
    ``np.inf`` for one-sided constraints and ``lb == ub`` for equalities.

    Args:
        fun: ``fun(x_dict, *args) -> tensor``.
        lb: lower bound(s).
        ub: upper bound(s).
        jac: ``None`` (autodiff where the framework has it, else SciPy's ``'2-point'``),
            ``'autodiff'``, a callable ``jac(x_dict, *args)`` returning an ``(m, n)`` array (or
            SciPy sparse matrix, passed to SciPy as it is) in the layout's order or a dict
            ``key -> array of shape (*out_shape, *x0[key].shape)``,
            or ``'2-point'`` / ``'3-point'``.
        hess: ``None`` (the exact Hessian term of the Lagrangian by autodiff where the framework
            has it and ``jac`` is autodiff; else SciPy's BFGS update), ``'autodiff'``, a
            callable ``hess(x_dict, v)`` (``v``: the ``m`` multipliers) returning the flat
            ``(n, n)`` matrix of ``sum(v[i] * hessian of fun[i])`` — a dense array, a SciPy
            sparse matrix or a ``LinearOperator``, passed to SciPy as it is — or a dict of
            dicts of per-key blocks, or any of SciPy's ``hess`` values for
            ``NonlinearConstraint`` (a ``HessianUpdateStrategy``, ``'2-point'``...). Only
            trust-constr uses it.
        keep_feasible: as in SciPy.
        args: extra positional arguments for ``fun`` and ``jac``.
        jac_sparsity: the Jacobian's sparsity pattern, for sparse derivatives by autodiff
            (``jac`` None or ``'autodiff'``): an ``(m, n)`` bool array or SciPy sparse matrix
            over the flat vector, or a dict per key of x0 of bool arrays of shape
            ``(*out_shape, *x0[key].shape)`` (or SciPy sparse ``(m, x0[key].size)``); keys left
            out do not enter the constraint. The Jacobian then reaches SciPy as a
            ``scipy.sparse.csr_array`` computed with one product per colour of the pattern, and
            the Hessian term (trust-constr) as a sparse matrix over the pattern the Jacobian's
            rows imply. See [Sparse derivatives](guide/sparse.md).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import NonlinearConstraint, minimize
        >>> circle = NonlinearConstraint(lambda d: (d["p"] ** 2).sum(), 0.0, 1.0)
        >>> res = minimize(lambda d: (-d["p"].sum(), {"p": -np.ones(2)}),
        ...                {"p": np.zeros(2)}, method="SLSQP", constraints=circle)
        >>> np.round(res.x["p"], 4)
        array([0.7071, 0.7071])
    """

    def __init__(
        self,
        fun: Callable,
        lb: Any,
        ub: Any,
        *,
        jac: Any = None,
        hess: Any = None,
        keep_feasible: Any = False,
        args: Any = (),
        jac_sparsity: Any = None,
    ) -> None:
        self.fun, self.lb, self.ub = fun, lb, ub
        self.jac, self.hess, self.keep_feasible = jac, hess, keep_feasible
        self.args = args if isinstance(args, tuple) else (args,)
        self.jac_sparsity = jac_sparsity

    def __repr__(self) -> str:
        return f"NonlinearConstraint(fun={self.fun!r}, lb={self.lb!r}, ub={self.ub!r})"


class LinearConstraint:
    """``lb <= sum over keys of A[key] · x[key] <= ub``, with coefficients given per key.

    Args:
        A: a dict mapping (some of) the keys of ``x0`` to coefficient arrays of shape
            ``(m, *x0[key].shape)`` — or ``x0[key].shape`` for a single constraint — in any
            framework or NumPy; keys left out have zero coefficients. A 2-D ``(m, n)`` array in
            the layout's order is accepted too.
        lb: lower bound(s): a scalar or ``m`` values (default ``-inf``).
        ub: upper bound(s): a scalar or ``m`` values (default ``+inf``).
        keep_feasible: as in SciPy.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import LinearConstraint, minimize
        >>> budget = LinearConstraint({"a": np.ones(2), "b": 1.0}, ub=1.0)  # a0 + a1 + b <= 1
        >>> def fun(d):
        ...     return -(d["a"].sum() + 2 * d["b"]), {"a": -np.ones(2), "b": np.array(-2.0)}
        >>> res = minimize(fun, {"a": np.zeros(2), "b": np.array(0.0)}, method="SLSQP",
        ...                constraints=budget, lb_dict={"a": 0.0, "b": 0.0})
        >>> round(float(res.x["b"]), 6)
        1.0
    """

    def __init__(
        self, A: Any, lb: Any = -np.inf, ub: Any = np.inf, *, keep_feasible: Any = False
    ) -> None:
        self.A, self.lb, self.ub, self.keep_feasible = A, lb, ub, keep_feasible

    def __repr__(self) -> str:
        return f"LinearConstraint(A={self.A!r}, lb={self.lb!r}, ub={self.ub!r})"


def _as_list(constraints: Any) -> list:
    if constraints is None:
        return []
    if isinstance(
        constraints,
        (
            Mapping,
            NonlinearConstraint,
            LinearConstraint,
            scipy.optimize.NonlinearConstraint,
            scipy.optimize.LinearConstraint,
        ),
    ):
        return [constraints]
    if isinstance(constraints, Sequence) and not isinstance(constraints, (str, bytes)):
        return list(constraints)
    raise TypeError(
        f"constraints must be a constraint or a list of them; got a {type_name(constraints)}"
    )


class _Builder:
    """Builds flat constraints for one layout; shared state for all constraints of a call."""

    def __init__(
        self,
        layout: Layout,
        codec: Codec,
        backend: Backend,
        meth: str,
        jit: bool | None,
        check_at: np.ndarray | None = None,
    ) -> None:
        self.layout, self.codec, self.backend, self.meth, self.jit = (
            layout,
            codec,
            backend,
            meth,
            jit,
        )
        self.counters: list[_Counter] = []
        self.check_at = check_at  # check_sparsity: the point (x0) where patterns are checked

    # -- values -------------------------------------------------------------------------------
    def _value_fn(self, cfun: Callable, args: tuple, where: str) -> Callable[[np.ndarray], Any]:
        counter = _Counter()
        self.counters.append(counter)
        layout, codec = self.layout, self.codec

        def value(x: np.ndarray) -> np.ndarray:
            out = cfun(layout.build(codec.unflatten(x, for_objective=False)), *args)
            counter.n += 1
            return _flat_values(out, where)

        return value

    def _ad(self, cfun: Callable, args: tuple, where: str) -> VectorAD:
        if self.backend.vector_ad is None:
            raise ValueError(
                f"{where}: 'autodiff' needs a framework with automatic differentiation, and "
                f"x0 holds {self.backend.name} arrays; give the constraint's Jacobian as a "
                "callable, or use '2-point' (finite differences)"
            )
        ad = self.backend.vector_ad(self.layout, self.codec, cfun, args, jit=self.jit)
        self.counters.append(_Counter(ad))
        return ad

    def _user_jac(self, jac: Callable, args: tuple, where: str) -> Callable[[np.ndarray], Any]:
        layout, codec = self.layout, self.codec

        def jacobian(x: np.ndarray) -> np.ndarray:
            out = jac(layout.build(codec.unflatten(x, for_objective=False)), *args)
            return _flat_jacobian(out, layout, where)

        return jacobian

    def _user_hess(self, hess: Callable) -> Callable[[np.ndarray, np.ndarray], Any]:
        layout, codec = self.layout, self.codec

        def hess_term(x: np.ndarray, v: np.ndarray) -> Any:
            out = hess(layout.build(codec.unflatten(x, for_objective=False)), v)
            return dense_hessian(out, layout)

        return hess_term

    def _derivatives(
        self, cfun: Callable, jac: Any, args: tuple, where: str
    ) -> tuple[Callable, Any, VectorAD | None]:
        """(value function, flat jac or FD string or None, the autodiff object if any)."""
        if self.meth in _VALUE_ONLY:
            return self._value_fn(cfun, args, where), None, None
        if jac is None and self.backend.vector_ad is None:
            jac = "2-point"
        if jac is None or (isinstance(jac, str) and jac == "autodiff"):
            ad = self._ad(cfun, args, where)
            counter = self.counters[-1]

            def value(x: np.ndarray) -> np.ndarray:
                counter.n += 1
                return ad.value(x)

            return value, ad.jacobian, ad
        if isinstance(jac, str) and jac in _FD:
            return self._value_fn(cfun, args, where), jac, None
        if callable(jac):
            return self._value_fn(cfun, args, where), self._user_jac(jac, args, where), None
        raise ValueError(
            f"{where}: jac must be None, 'autodiff', a callable or one of {_FD}; got {jac!r}"
        )

    def _sparse(
        self, cfun: Callable, jac: Any, args: tuple, spec: Any, where: str
    ) -> tuple[Callable, SparseDerivative, SparseDerivative | None]:
        """(value function, sparse Jacobian, sparse Hessian of v·c or None) from a pattern."""
        if not (jac is None or (isinstance(jac, str) and jac == "autodiff")):
            raise ValueError(
                f"{where}: jac_sparsity computes the Jacobian by autodiff, so jac must be None "
                f"or 'autodiff'; got {jac!r} (SciPy's finite differences take a pattern as "
                "scipy.optimize.NonlinearConstraint(finite_diff_jac_sparsity=...))"
            )
        pattern, out_shape = jacobian_pattern(spec, self.layout, f"{where}.jac_sparsity")
        prods = make_products(
            self.backend, self.layout, self.codec, cfun, args, self.jit, where, "jac_sparsity"
        )
        counter = _Counter(prods)
        self.counters.append(counter)
        sjac = SparseDerivative(
            "jac", pattern, prods, where, layout=self.layout, out_shape=out_shape
        )
        hpat = lagrangian_pattern(pattern)
        shess = (
            None
            if hpat is None
            else SparseDerivative(
                "vhess", hpat, prods, where, layout=self.layout, name="Hessian pattern"
            )
        )
        if self.check_at is not None:
            sjac.check(self.check_at)

        def value(x: np.ndarray) -> np.ndarray:
            counter.n += 1
            return prods.value(x)

        return value, sjac, shess

    def _sparse_hess(
        self, sjac: SparseDerivative, shess: SparseDerivative | None
    ) -> Callable[[np.ndarray, np.ndarray], Any]:
        if shess is not None:
            return shess.matrix
        n, prods = self.layout.n, sjac.products

        def hess_term(x: np.ndarray, v: np.ndarray) -> LinearOperator:
            x = np.array(x, dtype=np.float64)
            v = np.array(v, dtype=np.float64)
            return LinearOperator(
                (n, n),
                matvec=lambda p: prods.hvps(x, v, np.reshape(p, (n, 1)))[:, 0],
                dtype=np.float64,
            )

        return hess_term

    def _sparse_constraint(
        self,
        value: Callable,
        lb: Any,
        ub: Any,
        sjac: SparseDerivative,
        shess: SparseDerivative | None,
        hess: Any,
        keep_feasible: Any,
        where: str,
    ) -> Any:
        """A SciPy NonlinearConstraint with the sparse derivatives (``_dm_jac``/``_dm_hess``)."""
        if isinstance(hess, str) and hess == "autodiff":
            hess = None
        if hess is None:
            hess = self._sparse_hess(sjac, shess)
        elif callable(hess) and not isinstance(hess, scipy.optimize.HessianUpdateStrategy):
            hess = self._user_hess(hess)
        if self.meth == "slsqp":  # dense: SLSQP works on dense matrices only
            jac: Callable = lambda x: sjac.matrix(x).toarray()  # noqa: E731
            kwargs: dict[str, Any] = {"jac": jac}
        else:
            kwargs = {"jac": sjac.matrix, "hess": hess}
        if keep_feasible is not False:
            kwargs["keep_feasible"] = keep_feasible
        con = scipy.optimize.NonlinearConstraint(value, lb, ub, **kwargs)
        con._dm_jac = sjac
        con._dm_hess = shess
        return con

    # -- the forms ----------------------------------------------------------------------------
    def from_dict(self, con: Mapping, where: str) -> Any:
        unknown = set(con) - {"type", "fun", "jac", "args", "jac_sparsity"}
        if unknown:
            raise ValueError(
                f"{where} has unknown field(s) {sorted(map(str, unknown))}; expected 'type', "
                "'fun', and optionally 'jac', 'args' and 'jac_sparsity'"
            )
        kind = con.get("type")
        if kind not in ("eq", "ineq"):
            raise ValueError(f"{where}['type'] must be 'eq' or 'ineq'; got {kind!r}")
        cfun = con.get("fun")
        if not callable(cfun):
            raise TypeError(f"{where}['fun'] must be callable; got a {type_name(cfun)}")
        args = con.get("args", ())
        args = args if isinstance(args, tuple) else (args,)
        spec = con.get("jac_sparsity")
        if spec is not None and self.meth not in _VALUE_ONLY:
            value, sjac, shess = self._sparse(cfun, con.get("jac"), args, spec, where)
            ub = 0.0 if kind == "eq" else np.inf
            return self._sparse_constraint(value, 0.0, ub, sjac, shess, None, False, where)
        if self.meth == "ipopt":  # Ipopt takes the constraint's Hessian term too
            upper = 0.0 if kind == "eq" else np.inf
            nonlinear = NonlinearConstraint(cfun, 0.0, upper, jac=con.get("jac"), args=args)
            return self.from_nonlinear(nonlinear, where)
        value, jac, _ = self._derivatives(cfun, con.get("jac"), args, where)
        if isinstance(jac, str) and jac != "2-point":
            # SciPy's dict form only knows 2-point differences: say the same thing its way
            return scipy.optimize.NonlinearConstraint(
                value, 0.0, 0.0 if kind == "eq" else np.inf, jac=jac
            )
        flat: dict[str, Any] = {"type": kind, "fun": value}
        if callable(jac):
            flat["jac"] = jac
        return flat  # '2-point': SciPy's own default for this form

    def from_nonlinear(self, con: Any, where: str) -> scipy.optimize.NonlinearConstraint:
        cfun = con.fun
        if not callable(cfun):
            raise TypeError(f"{where}.fun must be callable; got a {type_name(cfun)}")
        ours = isinstance(con, NonlinearConstraint)
        args = con.args if ours else ()
        spec = con.jac_sparsity if ours else None
        if spec is not None and self.meth not in _VALUE_ONLY:
            value, sjac, shess = self._sparse(cfun, con.jac, args, spec, where)
            return self._sparse_constraint(
                value,
                _bound_values(con.lb, where, "lb"),
                _bound_values(con.ub, where, "ub"),
                sjac,
                shess,
                con.hess,
                con.keep_feasible,
                where,
            )
        value, jac, ad = self._derivatives(cfun, con.jac, args, where)
        hess: Any = con.hess
        if isinstance(hess, str) and hess == "autodiff" and ad is None:
            raise ValueError(
                f"{where}: hess='autodiff' needs jac='autodiff' (or jac=None) and a framework "
                "with automatic differentiation"
            )
        if (hess is None or (isinstance(hess, str) and hess == "autodiff")) and ad is not None:
            n = self.layout.n
            vad = ad

            def hess_term(x: np.ndarray, v: np.ndarray) -> LinearOperator:
                x = np.array(x, dtype=np.float64)
                v = np.array(v, dtype=np.float64)
                return LinearOperator(
                    (n, n), matvec=lambda p: vad.vhp(x, v, np.ravel(p)), dtype=np.float64
                )

            hess = hess_term
        elif hess is None:
            hess = scipy.optimize.BFGS()
        elif callable(hess) and not isinstance(hess, scipy.optimize.HessianUpdateStrategy):
            hess = self._user_hess(hess)
        kwargs: dict[str, Any] = {"jac": jac if jac is not None else "2-point"}
        if self.meth not in ("slsqp", "cobyla", "cobyqa"):
            kwargs["hess"] = hess  # SLSQP/COBYLA/COBYQA warn about a hess they cannot use
        if self.meth in _VALUE_ONLY:
            kwargs = {}
        if con.keep_feasible is not False:
            kwargs["keep_feasible"] = con.keep_feasible
        return scipy.optimize.NonlinearConstraint(
            value,
            _bound_values(con.lb, where, "lb"),
            _bound_values(con.ub, where, "ub"),
            **kwargs,
        )

    def from_linear(self, con: LinearConstraint, where: str) -> scipy.optimize.LinearConstraint:
        A = _flat_jacobian(con.A, self.layout, f"{where}.A")
        return scipy.optimize.LinearConstraint(
            A,
            _bound_values(con.lb, where, "lb"),
            _bound_values(con.ub, where, "ub"),
            keep_feasible=con.keep_feasible,
        )


class _Counter:
    """Evaluation count of one constraint: our own count, or the autodiff object's."""

    def __init__(self, ad: VectorAD | SparseProducts | None = None) -> None:
        self.ad = ad
        self.n = 0

    @property
    def calls(self) -> int:
        """Eagerly, the Python calls of the constraint function (its Jacobian reuses the tape
        or linearisation of its value at the same point); compiled (jit), where ``fun_calls``
        counts traces, the evaluations of its value."""
        if self.ad is None or getattr(self.ad, "jit", False) or hasattr(self.ad, "jvps"):
            return self.n
        return self.ad.fun_calls


def _flat_values(out: Any, where: str) -> np.ndarray:
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return np.array([scalar_to_float(out, where)])
    if out is None or isinstance(out, (str, bytes, bool, Mapping)):
        raise TypeError(f"{where} returned a {type_name(out)}; expected a tensor or array")
    return float64_array(out, f"the result of {where}").reshape(-1)


def _bound_values(bound: Any, where: str, name: str) -> Any:
    if bound is None:
        return -np.inf if name == "lb" else np.inf
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        return float(bound)
    arr = float64_array(bound, f"{where}.{name}")
    if np.isnan(arr).any():
        raise ValueError(f"{where}.{name} contains NaN; use -inf/inf for no bound")
    return arr.reshape(-1) if arr.ndim else float(arr)


def _flat_jacobian(out: Any, layout: Layout, where: str) -> np.ndarray:
    """A dict of per-key blocks, or an (m, n) array, as an (m, n) float64 matrix."""
    n = layout.n
    if is_matrix_like(out):  # sparse or LinearOperator: to SciPy as it is, as SciPy takes it
        if len(out.shape) != 2 or out.shape[1] != n:
            raise ValueError(
                f"{where} has shape {fmt_shape(out.shape)}; expected (m, {n}): one column per "
                "element of x0, in x0's key order"
            )
        return out
    if not keyed_like_x0(out, layout):
        arr = float64_array(out, where)
        if arr.ndim == 1 and arr.shape[0] == n:
            arr = arr.reshape(1, n)
        if arr.ndim != 2 or arr.shape[1] != n:
            raise ValueError(
                f"{where} has shape {fmt_shape(arr.shape)}; expected (m, {n}): one column per "
                "element of x0, in x0's key order (or give a dict of per-key blocks)"
            )
        return arr
    if layout.tree is not None:  # nested x0: blocks by path, partial
        out = partial_leaves(out, layout.tree, where, broadcast=False)
    pos = {k: i for i, k in enumerate(layout.keys)}
    unknown = [k for k in out if k not in pos]
    if unknown:
        raise ValueError(
            f"{where} has key(s) {', '.join(fmt_key(k) for k in unknown)} that are not in x0"
        )
    blocks: dict[Any, np.ndarray] = {}
    m: int | None = None
    for key, block in out.items():
        shape = layout.shapes[pos[key]]
        arr = float64_array(block, at(where, key))
        lead = arr.shape[: arr.ndim - len(shape)]
        if arr.ndim < len(shape) or arr.shape[arr.ndim - len(shape) :] != shape:
            raise ValueError(
                f"{at(where, key)} has shape {fmt_shape(arr.shape)}; expected the shape "
                f"of {at('x0', key)}, {fmt_shape(shape)}, after the constraint's own axes"
            )
        rows = int(np.prod(lead)) if lead else 1
        if m is not None and rows != m:
            raise ValueError(
                f"{at(where, key)} covers {rows} constraint(s), but other keys cover {m}"
            )
        m = rows
        blocks[key] = arr.reshape(rows, -1)
    if m is None:
        raise ValueError(f"{where} is empty: give coefficients for at least one key")
    flat = np.zeros((m, n))
    for key, block in blocks.items():
        flat[:, layout.slice_of(pos[key])] = block
    return flat


def make_constraints(
    constraints: Any,
    layout: Layout,
    codec: Codec,
    backend: Backend,
    meth: str,
    jit: Any,
    *,
    check_at: np.ndarray | None = None,
) -> tuple[list, Callable[[], int]]:
    """SciPy constraints on the flat vector, and a function giving the evaluation count.

    A constraint with ``jac_sparsity`` becomes a ``scipy.optimize.NonlinearConstraint`` that
    carries ``_dm_jac`` and ``_dm_hess`` (see :mod:`dict_minimize._problem.sparsity`);
    ``check_at``: compare each pattern with the dense Jacobian at this point (``x0``).
    """
    items = _as_list(constraints)
    if not items:
        return [], lambda: 0
    builder = _Builder(layout, codec, backend, meth, jit, check_at)
    flat: list = []
    for i, con in enumerate(items):
        where = (
            f"constraints[{i}]"
            if len(items) > 1 or isinstance(constraints, list)
            else ("constraints")
        )
        if isinstance(con, Mapping):
            flat.append(builder.from_dict(con, where))
        elif isinstance(con, (NonlinearConstraint, scipy.optimize.NonlinearConstraint)):
            flat.append(builder.from_nonlinear(con, where))
        elif isinstance(con, LinearConstraint):
            flat.append(builder.from_linear(con, where))
        elif isinstance(con, scipy.optimize.LinearConstraint):
            A = np.asarray(con.A.toarray() if hasattr(con.A, "toarray") else con.A)
            if A.ndim != 2 or A.shape[1] != layout.n:
                raise ValueError(
                    f"{where}: scipy.optimize.LinearConstraint.A has shape "
                    f"{fmt_shape(A.shape)}; expected (m, {layout.n}) in x0's key order — or "
                    "use dict_minimize.LinearConstraint with coefficients per key"
                )
            flat.append(con)
        else:
            raise TypeError(
                f"{where} is a {type_name(con)}; expected a dict {{'type', 'fun', ...}}, a "
                "NonlinearConstraint or a LinearConstraint"
            )
    return flat, lambda: sum(c.calls for c in builder.counters)


__all__ = ["CONSTRAINED", "LinearConstraint", "NonlinearConstraint", "make_constraints"]
