"""Constraints by reparametrisation: each problem solved with plain (or gradient-free) methods
over the free parameters, checked against the same problem solved by SciPy's SLSQP with the
constraints written out explicitly on the flat vector."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from dict_minimize import NonlinearConstraint, minimize
from dict_minimize._problem import transforms as tr
from dict_minimize.backends.array_ops import ops_for
from tests.conftest import Framework, flat_objective

# the problem: keys p (probability), t (increasing), w (fixed where MASK), S (covariance),
# v (linear: sum 3), u (untouched, bounded); the targets put the optimum on the boundaries:
# ties in t, a singular S, u and w's free entry at their bounds
KEYS = ("p", "t", "w", "S", "v", "u")
SHAPES = {"p": (3,), "t": (4,), "w": (3,), "S": (2, 2), "v": (3,), "u": (2,)}
TARGET = {
    "p": np.array([0.6, 0.5, -0.05]),
    "t": np.array([1.0, 3.0, 2.0, 4.0]),
    "w": np.array([5.0, 5.0, 5.0]),
    "S": np.array([[1.0, 2.0], [2.0, 1.0]]),
    "v": np.array([2.0, 0.0, 0.5]),
    "u": np.array([2.0, -1.0]),
}
MASK = np.array([True, False, True])
X0 = {
    "p": np.array([0.2, 0.3, 0.5]),
    "t": np.array([0.0, 0.5, 1.0, 1.5]),
    "w": np.array([1.0, 0.0, -1.0]),
    "S": np.eye(2),
    "v": np.array([1.0, 1.0, 1.0]),
    "u": np.array([0.0, 0.0]),
}
CONSTRAINTS = [
    {"type": "probability", "key": "p"},
    {"type": "increasing", "key": "t"},
    {"type": "fixed", "key": "w", "mask": MASK},
    {"type": "covariance", "key": "S"},
    {"type": "linear", "key": "v", "weights": np.ones(3), "value": 3.0},
]
LB = {"w": np.array([-np.inf, -np.inf, -np.inf]), "u": np.array([0.0, -np.inf])}
UB = {"w": np.array([np.inf, 2.0, np.inf]), "u": np.array([1.0, np.inf])}
SIZES = [int(np.prod(SHAPES[k])) for k in KEYS]
OFFSETS = np.concatenate([[0], np.cumsum(SIZES)])


def _flat(d: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(d[k], dtype=np.float64).ravel() for k in KEYS])


def _split(x: np.ndarray) -> dict[str, np.ndarray]:
    return {
        k: x[a:b].reshape(SHAPES[k])
        for k, a, b in zip(KEYS, OFFSETS[:-1], OFFSETS[1:], strict=True)
    }


T_FLAT = _flat(TARGET)
WEIGHT = np.linspace(1.0, 2.0, T_FLAT.size)


def flat_fun(x: np.ndarray) -> tuple[float, np.ndarray]:
    """A weighted distance to the target, with a coupling term between p and t."""
    d = _split(x)
    r = x - T_FLAT
    c = float(d["p"] @ d["t"][:3])
    grad = 2 * WEIGHT * r
    g = _split(grad)
    g["p"] += 0.2 * c * d["t"][:3]
    g["t"][:3] += 0.2 * c * d["p"]
    return float(WEIGHT @ r**2) + 0.1 * c**2, _flat(g)


def slsqp_reference() -> scipy.optimize.OptimizeResult:
    """The same problem by SLSQP on the flat vector, every constraint written out."""
    sl = {k: slice(a, b) for k, a, b in zip(KEYS, OFFSETS[:-1], OFFSETS[1:], strict=True)}
    lb, ub = np.full(T_FLAT.size, -np.inf), np.full(T_FLAT.size, np.inf)
    lb[sl["p"]] = 0.0
    for k in ("w", "u"):
        lb[sl[k]], ub[sl[k]] = LB[k], UB[k]
    w_held = np.flatnonzero(MASK) + OFFSETS[KEYS.index("w")]
    lb[w_held] = ub[w_held] = X0["w"][MASK]
    x0 = _flat(X0)

    def s_of(x: np.ndarray) -> np.ndarray:
        return x[sl["S"]].reshape(2, 2)

    cons = [
        {"type": "eq", "fun": lambda x: x[sl["p"]].sum() - 1},
        {"type": "ineq", "fun": lambda x: np.diff(x[sl["t"]])},
        {"type": "eq", "fun": lambda x: x[sl["v"]].sum() - 3},
        {"type": "eq", "fun": lambda x: s_of(x)[0, 1] - s_of(x)[1, 0]},
        {"type": "ineq", "fun": lambda x: np.array([s_of(x)[0, 0], s_of(x)[1, 1]])},
        {"type": "ineq", "fun": lambda x: np.linalg.det(s_of(x))},
    ]
    res = scipy.optimize.minimize(
        flat_fun,
        x0,
        jac=True,
        method="SLSQP",
        bounds=scipy.optimize.Bounds(lb, ub),
        constraints=cons,
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert res.success
    return res


REF = slsqp_reference()


def _check(res: Any, fw: Framework | None = None, atol: float = 2e-3) -> None:
    to_np = (lambda t: np.asarray(t, dtype=np.float64)) if fw is None else fw.to_numpy
    x = {k: to_np(res.x[k]) for k in KEYS}
    got = _flat(x)
    np.testing.assert_allclose(got, REF.x, atol=atol)
    assert res.fun == pytest.approx(REF.fun, rel=1e-4, abs=1e-5)
    # the constraints hold exactly (to rounding), not only near the reference
    assert x["p"].sum() == pytest.approx(1.0, abs=1e-12) and np.all(x["p"] >= 0)
    assert np.all(np.diff(x["t"]) >= 0)
    np.testing.assert_array_equal(x["w"][MASK], X0["w"][MASK])
    assert np.linalg.eigvalsh(x["S"]).min() >= -1e-12
    np.testing.assert_array_equal(x["S"], x["S"].T)
    assert x["v"].sum() == pytest.approx(3.0, abs=1e-12)
    assert np.all(x["u"] >= LB["u"]) and np.all(x["u"] <= UB["u"])
    assert x["w"][1] <= UB["w"][1]


def test_reference_has_ties_and_a_singular_matrix() -> None:
    x = _split(REF.x)
    assert np.sum(np.isclose(np.diff(x["t"]), 0, atol=1e-6)) >= 1
    assert abs(np.linalg.det(x["S"])) < 1e-6
    assert x["w"][1] == pytest.approx(2.0) and x["u"][0] == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["L-BFGS-B", "SLSQP", "trust-constr"])
def test_matches_slsqp_numpy(method: str) -> None:
    x0 = copy.deepcopy(X0)
    res = minimize(
        flat_objective_np,
        X0,
        method=method,
        constraints=CONSTRAINTS,
        lb_dict=LB,
        ub_dict=UB,
        options={"maxiter": 3000} if method == "trust-constr" else None,
    )
    _check(res, atol=2e-3 if method != "trust-constr" else 5e-3)
    for k in KEYS:  # x0 is only read
        np.testing.assert_array_equal(X0[k], x0[k])


def flat_objective_np(d: dict[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
    value, grad = flat_fun(_flat(d))
    return value, _split(grad)


def test_matches_slsqp_in_every_framework(fw: Framework) -> None:
    x0 = {k: fw.tensor(v) for k, v in X0.items()}
    res = minimize(
        flat_objective(fw, flat_fun, list(KEYS)),
        x0,
        method="L-BFGS-B",
        constraints=CONSTRAINTS,
        lb_dict=LB,
        ub_dict=UB,
    )
    _check(res, fw)
    assert all(fw.type_check(res.x[k]) and fw.type_check(res.jac[k]) for k in KEYS)
    # jac is the gradient in the user's parameters, at res.x (fixed entries included)
    want = flat_fun(_flat({k: fw.to_numpy(res.x[k]) for k in KEYS}))[1]
    np.testing.assert_allclose(_flat({k: fw.to_numpy(res.jac[k]) for k in KEYS}), want)


def _fw_objective(fw: Framework) -> Any:
    """flat_fun's value written in the framework's own operations, for jac='autodiff'."""
    ops = ops_for(fw.name)

    def fun(d: dict[str, Any]) -> Any:
        total = 0.0
        for k, a, b in zip(KEYS, OFFSETS[:-1], OFFSETS[1:], strict=True):
            like = d[k]
            r = ops.reshape(like, (-1,)) - ops.const(T_FLAT[a:b], like)
            total = total + ops.sum(ops.const(WEIGHT[a:b], like) * r * r, None, False)
        c = ops.sum(d["p"] * d["t"][:3], None, False)
        return total + 0.1 * c * c

    return fun


def test_autodiff_composes_the_transform(fw: Framework) -> None:
    """jac='autodiff' differentiates fun(T(z)); NumPy, without autodiff: finite differences
    over z, and then no jac in the user's parameters."""
    x0 = {k: fw.tensor(v) for k, v in X0.items()}
    if fw.name == "numpy":
        res = minimize(
            lambda d: flat_fun(_flat(d))[0],
            x0,
            jac="2-point",
            method="L-BFGS-B",
            constraints=CONSTRAINTS,
            lb_dict=LB,
            ub_dict=UB,
        )
        _check(res, fw, atol=5e-3)
        assert res.jac is None
        return
    res = minimize(
        _fw_objective(fw),
        x0,
        jac="autodiff",
        method="L-BFGS-B",
        constraints=CONSTRAINTS,
        lb_dict=LB,
        ub_dict=UB,
    )
    _check(res, fw)
    want = flat_fun(_flat({k: fw.to_numpy(res.x[k]) for k in KEYS}))[1]
    np.testing.assert_allclose(_flat({k: fw.to_numpy(res.jac[k]) for k in KEYS}), want)


def test_bfgs_without_bounds() -> None:
    """A method without bounds: monotone steps are squared; ties are still reached."""
    x0 = dict(X0)
    cons = [c for c in CONSTRAINTS if c["type"] != "fixed"]
    cons.append({"type": "fixed", "key": "w"})
    cons.append({"type": "fixed", "key": "u"})
    res = minimize(flat_objective_np, x0, method="BFGS", constraints=cons)
    assert res.success
    ref = minimize(
        flat_objective_np,
        x0,
        method="L-BFGS-B",
        constraints=cons,
        options={"ftol": 1e-14, "gtol": 1e-10},
    )
    np.testing.assert_allclose(_flat(res.x), _flat(ref.x), atol=2e-3)
    t = res.x["t"]
    assert np.all(np.diff(t) >= 0) and np.sum(np.diff(t) < 1e-3) >= 1  # a tie, reached


def test_gradient_free_matches_slsqp() -> None:
    """Nelder-Mead and COBYQA on a small problem: probability, decreasing, fixed, interval."""
    target = {"p": np.array([0.7, 0.4, -0.1]), "t": np.array([1.0, 2.0, 0.0]), "r": np.array(0.3)}

    def f(d: dict[str, Any]) -> float:
        return float(sum(((d[k] - target[k]) ** 2).sum() for k in target))

    x0 = {"p": np.full(3, 1 / 3), "t": np.array([2.0, 1.0, 0.0]), "r": np.array(0.5)}
    cons = [
        {"type": "probability", "key": "p"},
        {"type": "decreasing", "key": "t"},
        {"type": "fixed", "key": "t", "mask": np.array([False, False, True])},
    ]
    with pytest.raises(ValueError, match="reparametrised twice"):
        minimize(f, x0, jac=None, method="Nelder-Mead", constraints=cons)
    cons = [
        {"type": "probability", "key": "p"},
        {"type": "decreasing", "key": "t"},
        {"type": "interval", "key": "r", "lower": 0.0, "upper": 1.0},
    ]
    ref = scipy.optimize.minimize(
        lambda x: f({"p": x[:3], "t": x[3:6], "r": x[6]}),
        np.concatenate([x0["p"], x0["t"], [0.5]]),
        method="SLSQP",
        bounds=[(0, None)] * 3 + [(None, None)] * 3 + [(0, 1)],
        constraints=[
            {"type": "eq", "fun": lambda x: x[:3].sum() - 1},
            {"type": "ineq", "fun": lambda x: -np.diff(x[3:6])},
        ],
        options={"ftol": 1e-12},
    )
    for method, options in (
        ("Nelder-Mead", {"xatol": 1e-8, "fatol": 1e-12, "maxfev": 5000}),
        ("COBYQA", {"final_tr_radius": 1e-8}),
    ):
        res = minimize(f, x0, jac=None, method=method, constraints=cons, options=options)
        got = np.concatenate([res.x["p"], res.x["t"], [res.x["r"]]])
        np.testing.assert_allclose(got, ref.x, atol=2e-3)
        assert res.x["p"].sum() == pytest.approx(1.0) and np.all(np.diff(res.x["t"]) <= 0)
        assert 0 < res.x["r"] < 1


def test_other_constraints_apply_to_the_user_parameters() -> None:
    """An inequality beside a reparametrisation: c(T(z)), solved by SLSQP and trust-constr."""

    def f(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        return float(-(d["p"] @ np.array([1.0, 2.0, 3.0]))), {"p": -np.array([1.0, 2.0, 3.0])}

    ineq = {"type": "ineq", "fun": lambda d: 0.5 - d["p"][2]}  # p2 <= 0.5
    cons = [{"type": "probability", "key": "p"}, ineq]
    x0 = {"p": np.full(3, 1 / 3)}
    res = minimize(f, x0, method="SLSQP", constraints=cons, options={"ftol": 1e-12})
    np.testing.assert_allclose(res.x["p"], [0.0, 0.5, 0.5], atol=2e-3)
    nl = NonlinearConstraint(lambda d: d["p"][2], -np.inf, 0.5)
    res2 = minimize(f, x0, method="trust-constr", constraints=[cons[0], nl])
    np.testing.assert_allclose(res2.x["p"], [0.0, 0.5, 0.5], atol=5e-3)


def test_callback_trace_and_nested_selectors() -> None:
    x0 = {"layer": {"w": np.array([0.2, 0.8]), "b": np.array(1.0)}, "s": np.array(2.0)}

    def f(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        w, b, s = d["layer"]["w"], d["layer"]["b"], d["s"]
        value = float((w[0] - 0.9) ** 2 + (b - 3.0) ** 2 + (s - 0.5) ** 2)
        grad = {"layer": {"w": np.array([2 * (w[0] - 0.9), 0.0]), "b": 2 * (b - 3.0)}}
        grad["s"] = 2 * (s - 0.5)
        return value, grad

    seen: list[Any] = []
    cons = [
        {"type": "probability", "key": ("layer", "w")},
        {"type": "positive", "key": lambda path: path == ("s",), "transform": "exp"},
        {"type": "fixed", "key": ("layer", "b")},
    ]
    res = minimize(f, x0, method="L-BFGS-B", constraints=cons, trace="x", callback=seen.append)
    assert res.x["layer"]["b"] == 1.0 and res.x["s"] == pytest.approx(0.5, abs=1e-4)
    np.testing.assert_allclose(res.x["layer"]["w"], [0.9, 0.1], atol=1e-4)
    assert set(res.jac) == {"layer", "s"} and res.jac["layer"]["b"] == pytest.approx(-4.0)
    for d in [*seen, *res.trace.x]:  # in the user's parameters
        assert d["layer"]["w"].shape == (2,) and d["layer"]["w"].sum() == pytest.approx(1.0)
        assert d["layer"]["b"] == 1.0 and d["s"] > 0
    assert len(seen) == res.nit


def test_intermediate_result_callback() -> None:
    got: list[Any] = []

    def cb(intermediate_result: Any) -> None:
        got.append(intermediate_result)

    res = minimize(
        lambda d: (float(d["p"] @ [1.0, 2.0]), {"p": np.array([1.0, 2.0])}),
        {"p": np.array([0.5, 0.5])},
        method="L-BFGS-B",
        constraints={"type": "probability", "key": "p"},
        callback=cb,
    )
    assert got and all(r.x["p"].shape == (2,) for r in got)
    assert res.x["p"][0] > 0.99


# ---- the transforms on their own: x0 round trip, the VJP against finite differences ----------
def _cases() -> list[tuple[str, tr.Transform]]:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    p2 = rng.uniform(0.1, 1, size=(2, 3))
    return [
        ("fixed", tr.Fixed("w", rng.normal(size=(2, 3)), rng.random((2, 3)) < 0.5)),
        ("probability", tr.Probability("p", np.array([0.2, 0.3, 0.5]), None, np.float64)),
        ("probability-axis", tr.Probability("p", p2 / p2.sum(0), 0, np.float64)),
        ("increasing", tr.Monotone("t", np.array([0.0, 1.0, 1.5]), "increasing", True)),
        ("decreasing", tr.Monotone("t", np.array([2.0, 1.0, 0.5]), "decreasing", False)),
        ("covariance", tr.Covariance("S", a @ a.T + np.eye(3), np.float64)),
        ("sdcorr", tr.SdCorr("c", np.array([1.0, 2.0, 0.5, 0.3, -0.2, 0.1]))),
        (
            "linear",
            tr.Linear("v", np.array([1.0, 2.0, 0.0]), np.array([[1.0, 1.0, 1.0]]), 3.0, None),
        ),
        ("softplus", tr.Positive("s", np.array([0.5, 30.0]), "softplus")),
        ("exp", tr.Positive("s", np.array([0.5, 3.0]), "exp")),
        ("interval", tr.Interval("r", np.array([0.2, -0.5]), np.array([0.0, -1.0]), 1.0)),
    ]


@pytest.mark.parametrize(("name", "t"), _cases(), ids=[c[0] for c in _cases()])
def test_transform_round_trip_and_vjp(name: str, t: tr.Transform) -> None:
    ops = ops_for("numpy")
    x0 = t.forward(ops, t.z0)
    assert x0.shape == t.shape
    rng = np.random.default_rng(1)
    z = t.z0 + 0.1 * rng.normal(size=t.z0.shape)
    if isinstance(t, tr.Monotone) and t.bounded:
        z = np.abs(z)
    g = rng.normal(size=t.shape)
    got = t.vjp(ops, z, t.forward(ops, z), g)
    h = 1e-6
    fd = np.array(
        [
            (np.sum(g * t.forward(ops, z + h * e)) - np.sum(g * t.forward(ops, z - h * e)))
            / (2 * h)
            for e in np.eye(z.size)
        ]
    ).reshape(z.shape)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7)


def test_round_trips_reproduce_x0() -> None:
    ops = ops_for("numpy")
    for name, t in _cases():
        if name == "fixed":
            continue
        x = t.forward(ops, t.z0)
        assert x.shape == t.shape, name


def test_vjp_matches_autodiff(fw: Framework) -> None:
    """The analytic chain rule (jac=True) and the framework's autodiff (jac='autodiff') agree
    (NumPy: the chain rule and finite differences over z, to their precision)."""
    ops = ops_for(fw.name)

    def value(d: dict[str, Any]) -> Any:
        total = 0.0
        for k in d:
            total = total + ops.sum(d[k] * d[k] * d[k], None, False)
        return total

    def pair(d: dict[str, Any]) -> Any:
        return value(d), {k: 3 * d[k] * d[k] for k in d}

    x0 = {
        "c": fw.tensor([1.0, 2.0, 0.5, 0.3, -0.2, 0.1]),
        "p": fw.tensor([[0.2, 0.5], [0.8, 0.5]]),
        "r": fw.tensor([0.3, 0.6]),
    }
    cons = [
        {"type": "sdcorr", "key": "c"},
        {"type": "probability", "key": "p", "axis": 0},
        {"type": "interval", "key": "r", "lower": 0, "upper": 1},
    ]
    opts = {"maxiter": 3}
    a = minimize(pair, x0, method="L-BFGS-B", constraints=cons, options=opts)
    numpy = fw.name == "numpy"
    jac = "2-point" if numpy else "autodiff"
    b = minimize(value, x0, jac=jac, method="L-BFGS-B", constraints=cons, options=opts)
    tol = 1e-5 if numpy else 1e-9
    for k in x0:
        np.testing.assert_allclose(fw.to_numpy(a.x[k]), fw.to_numpy(b.x[k]), rtol=tol, atol=tol)
        if not numpy:
            np.testing.assert_allclose(fw.to_numpy(a.jac[k]), fw.to_numpy(b.jac[k]), rtol=tol)


# ---- errors -----------------------------------------------------------------------------------
def _f(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    return 0.0, {k: np.zeros_like(v) for k, v in d.items()}


@pytest.mark.parametrize(
    ("con", "kwargs", "error", "match"),
    [
        (
            {"type": "fixed", "key": "q"},
            {},
            ValueError,
            r"constraints\[0\]: key 'q' names no entry.*'p'",
        ),
        (
            {"type": "fixed", "key": "p", "mask": np.ones(2, bool)},
            {},
            ValueError,
            r"mask has shape \(2,\); expected \(3,\)",
        ),
        ({"type": "fixed", "key": "p", "mask": np.ones(3)}, {}, TypeError, "mask must be boolean"),
        (
            {"type": "probability", "key": "t"},
            {},
            ValueError,
            r"'probability' on x0\['t'\].*sum to 1 \(off by up to 2",
        ),
        (
            {"type": "probability", "key": "p"},
            {"lb_dict": {"p": 0.0}},
            ValueError,
            r"bounds on x0\['p'\] cannot carry over",
        ),
        (
            {"type": "probability", "key": "p", "axes": 0},
            {},
            ValueError,
            r"unknown field\(s\) \['axes'\]",
        ),
        ({"type": "increasing", "key": "p"}, {}, ValueError, r"x0 is not increasing"),
        ({"type": "increasing", "key": "z"}, {"method": "BFGS"}, ValueError, r"1 tie\(s\)"),
        ({"type": "covariance", "key": "S"}, {}, ValueError, r"not positive definite"),
        (
            {"type": "linear", "key": "t", "weights": np.ones(3), "value": 1.0},
            {},
            ValueError,
            r"does not satisfy the linear equalities",
        ),
        (
            {"type": "interval", "key": "t", "lower": 0, "upper": 1},
            {},
            ValueError,
            r"strictly inside",
        ),
        (
            {"type": "positive", "key": "z", "transform": "square"},
            {},
            ValueError,
            r"'softplus' or 'exp'",
        ),
        (
            {"type": "fixed", "key": "p"},
            {"hessp": lambda x, p: p},
            TypeError,
            r"hessp=<callable> cannot be chained",
        ),
    ],
)
def test_errors_name_the_constraint_and_key(con: Any, kwargs: Any, error: Any, match: str) -> None:
    x0 = {
        "p": np.array([0.5, 0.3, 0.2]),
        "t": np.array([0.5, 1.0, 2.0]),
        "z": np.array([0.0, 0.0]),
        "S": np.array([[1.0, 2.0], [2.0, 1.0]]),
    }
    with pytest.raises(error, match=match):
        minimize(_f, x0, constraints=[con] if "hessp" not in kwargs else con, **kwargs)


def test_more_errors() -> None:
    x0 = {"p": np.array([0.5, 0.5]), "w": np.array([1.0])}
    prob = {"type": "probability", "key": "p"}
    with pytest.raises(
        ValueError, match=r"reparametrised twice \(constraints\[0\] and constraints\[1\]\)"
    ):
        minimize(_f, x0, constraints=[prob, {"type": "fixed", "key": "p"}])
    lin = scipy.optimize.LinearConstraint(np.ones((1, 3)), 0, 1)
    with pytest.raises(TypeError, match="LinearConstraint, which cannot stand beside"):
        minimize(_f, x0, method="SLSQP", constraints=[prob, lin])
    with pytest.raises(ValueError, match="nothing left to optimize"):
        minimize(_f, x0, constraints=[{"type": "fixed", "key": "p"}, {"type": "fixed", "key": "w"}])
    with pytest.raises(TypeError, match="with jac=True fun must return"):
        minimize(lambda d: 1.0, x0, constraints=prob)
    with pytest.raises(ValueError, match=r"log= cannot be combined with the reparametrisation"):
        minimize(_f, x0, constraints=prob, log="never-written.db")


def test_a_subtree_key_selects_every_leaf_below() -> None:
    x0 = {"layer": {"w": np.array([1.0, 2.0]), "b": np.array(3.0)}, "c": np.array(0.0)}

    def f(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        w, b, c = d["layer"]["w"], d["layer"]["b"], d["c"]
        value = float((w**2).sum() + b**2 + (c - 1.0) ** 2)
        return value, {"layer": {"w": 2 * w, "b": 2 * b}, "c": 2 * (c - 1.0)}

    res = minimize(f, x0, method="BFGS", constraints={"type": "fixed", "key": "layer"})
    np.testing.assert_array_equal(res.x["layer"]["w"], x0["layer"]["w"])
    assert res.x["layer"]["b"] == 3.0 and res.x["c"] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(res.jac["layer"]["w"], [2.0, 4.0])


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    seed=st.integers(0, 2**16),
)
def test_transforms_start_at_x0(shape: tuple[int, ...], seed: int) -> None:
    """T(z0) == x0: held entries bit for bit, the others to rounding."""
    rng = np.random.default_rng(seed)
    ops = ops_for("numpy")
    x0 = rng.normal(size=shape)
    mask = rng.random(shape) < 0.5
    t = tr.Fixed("w", x0, mask)
    np.testing.assert_array_equal(t.forward(ops, t.z0), x0)
    p = rng.uniform(0.01, 1.0, size=shape)
    p = p / p.sum()
    t = tr.Probability("p", p, None, None)
    np.testing.assert_allclose(t.forward(ops, t.z0), p, rtol=1e-12)
    steps = np.abs(rng.normal(size=p.size - 1)) * (rng.random(p.size - 1) < 0.7)  # with ties
    inc = np.reshape(np.concatenate([[0.5], 0.5 + np.cumsum(steps)]), shape)
    for bounded in (True, False):
        t = tr.Monotone("t", inc, "increasing", bounded)
        np.testing.assert_allclose(t.forward(ops, t.z0), inc, rtol=1e-12, atol=1e-15)
    t = tr.Positive("s", p, "softplus")
    np.testing.assert_allclose(t.forward(ops, t.z0), p, rtol=1e-12)
    t = tr.Interval("r", p, 0.0, 2.0)
    np.testing.assert_allclose(t.forward(ops, t.z0), p, rtol=1e-9)


def test_benchmark_runs_quick(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import reparam as bench

    lines = bench.main(["--quick", "--repeat", "1"])
    assert len(lines) == 2 + len(bench.KINDS)
    assert all(line.endswith("| True |") for line in lines[2:])
    assert capsys.readouterr().out.count("\n") == len(lines)


def test_an_exception_keeps_the_best_point_in_user_parameters() -> None:
    calls = [0]

    def f(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        calls[0] += 1
        if calls[0] > 3:
            raise RuntimeError("boom")
        r = d["p"] - np.array([0.7, 0.5, -0.2])
        return float(r @ r), {"p": 2 * r}

    with pytest.raises(RuntimeError, match="boom") as info:
        minimize(f, {"p": np.full(3, 1 / 3)}, constraints={"type": "probability", "key": "p"})
    best = info.value.dict_minimize_result  # type: ignore[attr-defined]
    assert best.x["p"].shape == (3,) and best.x["p"].sum() == pytest.approx(1.0)
