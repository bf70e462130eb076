"""Constraints by reparametrisation: the layer :func:`~dict_minimize._solvers.minimize.solve`
puts in front of a problem whose ``constraints`` hold reparametrisation types (``fixed``,
``probability``, ``increasing``/``decreasing``, ``covariance``, ``sdcorr``, ``linear``,
``positive``, ``interval``).

The problem is rewritten over the free parameters ``z`` of each selected leaf (see
:mod:`dict_minimize._problem.transforms`): ``x0 -> z0``, ``fun -> fun(T(z))`` with its gradient
chained exactly, the other constraints ``c -> c(T(z))``, the user's bounds on entries left free
carried over, callbacks and traces given ``T(z)``. The rewritten problem is solved as any other
(by the ``solve`` passed in: this stage never imports the solvers), and the result is mapped
back: ``x = T(z*)`` and ``jac`` the gradient with respect to the user's parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.optimize
from scipy.optimize import Bounds

from dict_minimize._errors import at, fmt_keys, type_name
from dict_minimize._problem import transforms as tr
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._problem.constraints import LinearConstraint, NonlinearConstraint
from dict_minimize._problem.prepare import check_common, prepare_x0
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._problem.scipy_bounds import make_scipy_bounds
from dict_minimize._problem.trace import takes_two as _takes_two
from dict_minimize._structure.layout import Layout, values_by_key
from dict_minimize._structure.tree import Path
from dict_minimize.backends.array_ops import Ops, ops_for

#: the fields each reparametrisation takes besides ``type`` and ``key``
_FIELDS: dict[str, frozenset[str]] = {
    "fixed": frozenset({"mask"}),
    "probability": frozenset({"axis"}),
    "increasing": frozenset(),
    "decreasing": frozenset(),
    "covariance": frozenset(),
    "sdcorr": frozenset(),
    "linear": frozenset({"A", "weights", "value"}),
    "positive": frozenset({"transform"}),
    "interval": frozenset({"lower", "upper"}),
}
#: methods of ``scipy.optimize.minimize`` that honour bounds (monotone steps use them there)
_BOUNDED = frozenset(
    {"nelder-mead", "powell", "l-bfgs-b", "tnc", "cobyla", "cobyqa", "slsqp", "trust-constr"}
)


def is_reparametrisation(con: Any) -> bool:
    """Whether ``con`` is a dict constraint of a reparametrisation type."""
    return isinstance(con, Mapping) and con.get("type") in _FIELDS


def has_reparametrisations(constraints: Any) -> bool:
    """Whether ``constraints`` (one or a list) holds a reparametrisation (cheap: the common
    case, none, is decided at once)."""
    if isinstance(constraints, (list, tuple)):
        return any(is_reparametrisation(c) for c in constraints)
    return is_reparametrisation(constraints)


def split_constraints(constraints: Any) -> tuple[list[tuple[str, Mapping]], Any]:
    """``(reparametrisations with where they stand, the other constraints)``; the others come
    back as they were passed when there are no reparametrisations."""
    if is_reparametrisation(constraints):
        return [("constraints", constraints)], []
    if not isinstance(constraints, (list, tuple)):
        return [], constraints
    found = [(f"constraints[{i}]", c) for i, c in enumerate(constraints) if is_reparametrisation(c)]
    if not found:
        return [], constraints
    return found, [c for c in constraints if not is_reparametrisation(c)]


def solve_reparametrised(solve: Callable[..., Any], call: dict[str, Any]) -> OptimizeResult:
    """Solve the problem of ``call`` (the keyword arguments of ``solve``) over the free
    parameters of its reparametrisations, and report the result in the user's parameters."""
    found, rest = split_constraints(call["constraints"])
    if call.get("log") is not None:
        # the log's rows are written by the inner solve, in the free parameters' layout
        raise ValueError(
            f"log= cannot be combined with the reparametrisation {found[0][0]} yet: the log "
            "would hold the free parameters, not yours. Use trace='x' (its points are in your "
            "parameters), or a callback that writes them"
        )
    fun, x0, compat = call["fun"], call["x0"], call.get("compat", False)
    args = check_common(fun, x0, call["args"], call["backend"], call["jit"], compat=compat)
    be, layout, leaves = prepare_x0(x0, call["backend"], compat)
    ops = ops_for(be.name)
    bounded = _bounded_method(call["method"])
    tfs = _transforms(found, layout, leaves, be, bounded)
    z_leaves = [
        leaf if t is None else ops.const(t.z0, leaf) for t, leaf in zip(tfs, leaves, strict=True)
    ]
    if sum(int(np.prod(np.shape(z))) for z in z_leaves) == 0:
        raise ValueError(
            "every entry of x0 is fixed by the constraints: there is nothing left to optimize"
        )
    m = _Map(tfs, layout, ops)
    mode = _mode(call["jac"])
    for name in ("hess", "hessp"):
        value = call[name]
        if callable(value) and not isinstance(value, scipy.optimize.HessianUpdateStrategy):
            raise TypeError(
                f"{name}=<callable> cannot be chained through the reparametrisations of "
                f"{found[0][0]}: pass jac='autodiff' (with {name}='autodiff' or the default), "
                "or leave it out"
            )
    inner = dict(call)
    inner.update(
        fun=m.objective(fun, mode),
        x0=layout.build(z_leaves),
        jac=m.gradient(call["jac"]) if mode == "callable" else call["jac"],
        constraints=[_constraint(c, i, m) for i, c in enumerate(_as_list(rest))],
        callback=_callback(call["callback"], m),
        lb_dict=None,
        ub_dict=None,
        scipy_bounds=_bounds(call, tfs, layout, be),
    )
    try:
        res = solve(**inner)
    except BaseException as exc:
        best = getattr(exc, "dict_minimize_result", None)
        if isinstance(best, OptimizeResult):
            _back(best, m, None, (), "value")
        raise
    return _back(res, m, fun if mode != "callable" else call["jac"], args, mode, be)


class _Map:
    """``T`` over the whole tree: the leaves' transforms (None: left as they are)."""

    def __init__(self, tfs: list[tr.Transform | None], layout: Layout, ops: Ops) -> None:
        self.tfs, self.layout, self.ops = tfs, layout, ops

    def x_leaves(self, z: Any, fresh: bool = False) -> list[Any]:
        """The user's leaves at ``z`` (a tree like z0); ``fresh``: transformed leaves as new
        leaves without history (for an objective that differentiates itself)."""
        ops = self.ops
        out = []
        for t, zi in zip(self.tfs, values_by_key(z, self.layout, what="x"), strict=True):
            if t is None:
                out.append(zi)
            elif fresh:
                out.append(ops.leaf(t.forward(ops, ops.detach(zi))))
            else:
                out.append(t.forward(ops, zi))
        return out

    def x_of(self, z: Any) -> Any:
        return self.layout.build(self.x_leaves(z))

    def z_gradient(self, z: Any, x_leaves: list[Any], grad: Any) -> Any:
        """The gradient ``grad`` (a tree like x0) chained to one like z."""
        ops = self.ops
        g_leaves = values_by_key(grad, self.layout, what="gradient")
        out = []
        z_leaves = values_by_key(z, self.layout, what="x")
        for i, (t, zi, xi, gi) in enumerate(
            zip(self.tfs, z_leaves, x_leaves, g_leaves, strict=True)
        ):
            if t is None:
                out.append(gi)
                continue
            if tuple(np.shape(gi)) != t.shape:
                raise ValueError(
                    f"the gradient for {at('x0', self.layout.keys[i])} has shape "
                    f"{tuple(np.shape(gi))}, expected {t.shape} (the shape of x0's entry)"
                )
            out.append(t.vjp(ops, ops.detach(zi), ops.detach(xi), ops.detach(gi)))
        return self.layout.build(out)

    def objective(self, fun: Callable, mode: str) -> Callable:
        if mode == "pair":

            def pair(z: Any, *args: Any) -> Any:
                xl = self.x_leaves(z, fresh=True)
                out = fun(self.layout.build(xl), *args)
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(
                        "with jac=True fun must return (value, grad_dict); got a "
                        f"{type_name(out)} (pass jac='autodiff' for a fun returning the value)"
                    )
                return out[0], self.z_gradient(z, xl, out[1])

            return pair

        def value(z: Any, *args: Any) -> Any:
            return fun(self.x_of(z), *args)

        return value

    def gradient(self, jac: Callable) -> Callable:
        def z_jac(z: Any, *args: Any) -> Any:
            xl = self.x_leaves(z, fresh=True)
            return self.z_gradient(z, xl, jac(self.layout.build(xl), *args))

        return z_jac


def _mode(jac: Any) -> str:
    if jac is True:
        return "pair"
    if isinstance(jac, str) and jac == "autodiff":
        return "autodiff"
    if callable(jac):
        return "callable"
    return "value"


def _bounded_method(method: Any) -> bool:
    """Whether the method takes bounds (the default one does: bounds pick L-BFGS-B)."""
    return method is None or (isinstance(method, str) and method.lower() in _BOUNDED)


def _select(sel: Any, keys: Sequence[Hashable], where: str) -> list[int]:
    """The leaves a constraint's ``key`` names: a key of x0, a path (tuple) to a leaf or to a
    subtree (every leaf below it), or a callable ``key(path) -> bool`` of each leaf's path."""
    paths = [tuple(k) if isinstance(k, Path) else (k,) for k in keys]
    if callable(sel):
        hits = [i for i, p in enumerate(paths) if sel(p)]
    else:
        exact = [i for i, k in enumerate(keys) if not isinstance(k, Path) and _same(k, sel)]
        if exact:
            return exact
        want = sel if isinstance(sel, tuple) else (sel,)
        hits = [
            i for i, p in enumerate(paths) if len(p) >= len(want) and _same(p[: len(want)], want)
        ]
    if not hits:
        raise ValueError(
            f"{where}: key {sel!r} names no entry of x0; x0's keys are {fmt_keys(keys)}"
        )
    return hits


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # (a key whose == is not a bool)
        return False


def _transforms(
    found: list[tuple[str, Mapping]], layout: Layout, leaves: list[Any], be: Any, bounded: bool
) -> list[tr.Transform | None]:
    tfs: list[tr.Transform | None] = [None] * len(leaves)
    owner: dict[int, str] = {}
    for where, con in found:
        kind = con["type"]
        extra = set(con) - {"type", "key"} - _FIELDS[kind]
        if extra:
            raise ValueError(
                f"{where}: a {kind!r} constraint takes {sorted(_FIELDS[kind] | {'key'})}; got "
                f"unknown field(s) {sorted(map(str, extra))}"
            )
        if "key" not in con:
            raise ValueError(
                f"{where}: a {kind!r} constraint needs 'key' (the entry it applies to)"
            )
        for i in _select(con["key"], layout.keys, where):
            name = at("x0", layout.keys[i])
            if i in owner:
                raise ValueError(
                    f"{name} is reparametrised twice ({owner[i]} and {where}); an entry takes "
                    "one reparametrisation (write several as one 'linear', or fix with a mask)"
                )
            owner[i] = where
            value = np.asarray(be.to_numpy(leaves[i]), dtype=np.float64)
            label = f"{where} ({kind!r} on {name})"
            tfs[i] = _make(kind, con, label, value, layout.np_dtypes[i], bounded, be)
    return tfs


def _array(value: Any, be: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        return np.asarray(be.to_numpy(value))


def _make(
    kind: str, con: Mapping, where: str, x0: np.ndarray, dtype: Any, bounded: bool, be: Any
) -> tr.Transform:
    if kind == "fixed":
        mask = con.get("mask")
        if mask is not None:
            arr = _array(mask, be)
            if arr.dtype != bool:
                raise TypeError(
                    f"{where}: mask must be boolean (True: held); got dtype {arr.dtype}"
                )
            try:
                mask = np.broadcast_to(arr, x0.shape)
            except ValueError:
                raise ValueError(
                    f"{where}: mask has shape {arr.shape}; expected {x0.shape} (the entry's)"
                ) from None
        return tr.Fixed(where, x0, mask)
    if kind == "probability":
        axis = con.get("axis")
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{where}: axis must be an int or None; got a {type_name(axis)}")
        return tr.Probability(where, x0, None if axis is None else int(axis), dtype)
    if kind in ("increasing", "decreasing"):
        t = tr.Monotone(where, x0, kind, bounded)
        if t.ties and not bounded:
            raise ValueError(
                f"{where}: x0 has {t.ties} tie(s); with a method that takes no bounds the steps "
                "are squared, and a tie at the start cannot open (its gradient is 0): use a "
                "method that takes bounds (L-BFGS-B, SLSQP, trust-constr, Nelder-Mead...) or "
                "start strictly monotone"
            )
        return t
    if kind == "covariance":
        return tr.Covariance(where, x0, dtype)
    if kind == "sdcorr":
        return tr.SdCorr(where, x0)
    if kind == "linear":
        if ("A" in con) == ("weights" in con) or "value" not in con:
            raise ValueError(
                f"{where}: a 'linear' constraint needs 'value' and one of 'A', 'weights'"
            )
        a = np.asarray(_array(con["A"] if "A" in con else con["weights"], be), dtype=np.float64)
        return tr.Linear(where, x0, a, _array(con["value"], be), dtype)
    if kind == "positive":
        return tr.Positive(where, x0, con.get("transform", "softplus"))
    if "lower" not in con or "upper" not in con:
        raise ValueError(f"{where}: an 'interval' constraint needs 'lower' and 'upper'")
    return tr.Interval(where, x0, _array(con["lower"], be), _array(con["upper"], be))


def _bounds(
    call: Mapping[str, Any], tfs: list[tr.Transform | None], layout: Layout, be: Any
) -> Bounds | None:
    """The bounds of ``z``: the user's on entries left free, the transforms' own."""
    scipy_bounds, lb_dict, ub_dict = call["scipy_bounds"], call["lb_dict"], call["ub_dict"]
    user: Any
    if scipy_bounds is not None:
        if lb_dict is not None or ub_dict is not None:
            raise TypeError(
                "pass bounds=... or lb_dict/ub_dict, not both (bounds takes SciPy's forms: a "
                "Bounds, (lb, ub) pairs, or a dict of (lb, ub) pairs per key)"
            )
        user = make_scipy_bounds(scipy_bounds, layout, be)
        if not isinstance(user, Bounds):  # SciPy's sequence of (lb, ub) pairs
            pairs = [(-np.inf if a is None else a, np.inf if b is None else b) for a, b in user]
            user = Bounds(*np.asarray(pairs, dtype=np.float64).reshape(-1, 2).T)
    else:
        user = make_bounds(lb_dict, ub_dict, layout, be)
    if user is None and not any(t is not None and t.lb is not None for t in tfs):
        return None
    n = layout.n
    lb = np.full(n, -np.inf) if user is None else np.broadcast_to(np.asarray(user.lb, float), n)
    ub = np.full(n, np.inf) if user is None else np.broadcast_to(np.asarray(user.ub, float), n)
    z_lb, z_ub = [], []
    for i, t in enumerate(tfs):
        lo, hi = lb[layout.slice_of(i)], ub[layout.slice_of(i)]
        if t is None:
            z_lb.append(lo)
            z_ub.append(hi)
        elif isinstance(t, tr.Fixed):
            z_lb.append(lo[t.free])
            z_ub.append(hi[t.free])
        else:
            if np.any(np.isfinite(lo)) or np.any(np.isfinite(hi)):
                raise ValueError(
                    f"bounds on {at('x0', layout.keys[i])} cannot carry over to the free "
                    f"parameters of {t.where}: drop them (for bounds by a transform use "
                    "{'type': 'interval'} or {'type': 'positive'})"
                )
            size = t.z0.size
            z_lb.append(np.full(size, -np.inf) if t.lb is None else t.lb)
            z_ub.append(np.full(size, np.inf) if t.ub is None else t.ub)
    return Bounds(np.concatenate(z_lb), np.concatenate(z_ub))


def _as_list(constraints: Any) -> list[Any]:
    if constraints is None:
        return []
    if isinstance(constraints, (list, tuple)):
        return list(constraints)
    return [constraints]


def _constraint(con: Any, i: int, m: _Map) -> Any:
    """A constraint of ``x`` as one of ``z`` (``c -> c(T(z))``); its derivatives then come
    from autodiff (or SciPy's finite differences) over ``z``."""
    where = f"constraint {i} (beside the reparametrisations)"

    def composed(c: Callable) -> Callable:
        def on_z(z: Any, *args: Any) -> Any:
            return c(m.x_of(z), *args)

        return on_z

    def check(jac: Any, hess: Any = None) -> None:
        for name, value in (("jac", jac), ("hess", hess)):
            if callable(value) and not isinstance(value, scipy.optimize.HessianUpdateStrategy):
                raise TypeError(
                    f"{where}: a callable {name!r} cannot be chained through the "
                    "reparametrisations; leave it out (autodiff or finite differences over the "
                    "free parameters)"
                )

    if isinstance(con, Mapping):
        check(con.get("jac"))
        out = dict(con)
        if callable(con.get("fun")):
            out["fun"] = composed(con["fun"])
        return out
    if isinstance(con, NonlinearConstraint):
        check(con.jac, con.hess)
        return NonlinearConstraint(
            composed(con.fun),
            con.lb,
            con.ub,
            jac=con.jac,
            hess=con.hess,
            keep_feasible=con.keep_feasible,
            args=con.args,
        )
    if isinstance(con, scipy.optimize.NonlinearConstraint):
        check(con.jac, con.hess)
        return scipy.optimize.NonlinearConstraint(
            composed(con.fun), con.lb, con.ub, jac=con.jac, hess=con.hess
        )
    kind = (
        "LinearConstraint"
        if isinstance(con, (LinearConstraint, scipy.optimize.LinearConstraint))
        else type_name(con)
    )
    raise TypeError(
        f"{where} is a {kind}, which cannot stand beside reparametrisations (its matrix is over "
        "x, not the free parameters): write it as {'type': 'eq'|'ineq', 'fun': ...} or a "
        "NonlinearConstraint"
    )


def _callback(callback: Any, m: _Map) -> Any:
    """The user's callback, given the user's parameters."""
    if not callable(callback):
        return callback  # (None, or what the solver rejects in its words)
    try:
        names = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        names = set()
    if names == {"intermediate_result"}:

        def result_form(intermediate_result: Any) -> Any:
            fields = OptimizeResult(intermediate_result)
            fields["x"] = m.x_of(fields["x"])
            return callback(intermediate_result=fields)

        return result_form
    if _takes_two(callback):

        def state_form(xk: Any, state: Any = None) -> Any:
            if state is None:
                return callback(m.x_of(xk))
            state = OptimizeResult(state)
            state["x"] = m.x_of(state["x"])
            return callback(m.x_of(xk), state)

        return state_form

    def plain(xk: Any) -> Any:
        return callback(m.x_of(xk))

    return plain


def _back(
    res: OptimizeResult, m: _Map, grad_fun: Any, args: tuple, mode: str, be: Any = None
) -> OptimizeResult:
    """The result in the user's parameters: ``x = T(z*)``, the trace's points likewise, and
    ``jac`` the gradient with respect to ``x`` (one more evaluation at ``x``, not counted in
    ``nfev``; None where no gradient is available: finite differences, gradient-free)."""
    z = res["x"]
    res["x"] = m.x_of(z)
    trace = res.get("trace")
    if trace is not None and getattr(trace, "_x", None) is not None:
        trace._x = [m.x_of(zr) for zr in trace._x]  # (the rows were kept as z)
    if res.get("jac") is None or be is None:
        return res
    if mode == "value":
        res["jac"] = None
        return res
    layout = m.layout
    xl = m.x_leaves(z)
    codec = be.make_codec(layout)
    if mode == "autodiff":
        ad = be.scalar_ad(layout, codec, grad_fun, args, jit=False, second_order=False)
        _, flat = ad.value_and_grad(codec.flatten(None, xl)[1])
    else:
        fresh = [m.ops.leaf(v) for v in xl]
        out = grad_fun(layout.build(fresh), *args)
        grad = out[1] if mode == "pair" else out
        _, flat = codec.flatten(None, values_by_key(grad, layout, what="gradient"))
    res["jac"] = layout.build(
        codec.unflatten(np.asarray(flat, dtype=np.float64), for_objective=False)
    )
    return res


__all__ = [
    "has_reparametrisations",
    "is_reparametrisation",
    "solve_reparametrised",
    "split_constraints",
]
