"""``dict_minimize.minimize`` takes what SciPy's ``minimize`` takes and behaves as it does.

Each test compares with plain SciPy on the same flat problem where SciPy has an answer
(docs/guide/scipy-differences.md lists the differences kept on purpose). The last tests check
the runner of SciPy's own test suite (tools/scipy_suite.py) and its shim on a small subset.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from scipy.optimize import Bounds, rosen, rosen_der, rosen_hess
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import dict_minimize
from dict_minimize import NonFiniteError, minimize
from tests.conftest import Framework, flat_objective

ROOT = Path(__file__).resolve().parents[1]


def rosen_pair(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


def rosen_value(d: Any) -> float:
    """Rosenbrock of a dict {'x': ...} (module level: it pickles into worker processes)."""
    return float(rosen(np.asarray(d["x"])))


def two_keys(fw: Framework) -> dict:
    return {"a": fw.tensor([1.3, 0.7], "float64"), "b": fw.tensor(0.8, "float64")}


# -- bounds= ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "form",
    ["Bounds of dicts", "dict of pairs", "flat pairs", "flat Bounds", "lb_dict/ub_dict"],
)
def test_bounds_forms_agree_with_scipy(fw: Framework, form: str) -> None:
    lo, hi = np.array([0.0, 1.0, -np.inf]), np.array([1.2, np.inf, 0.5])
    want = scipy.optimize.minimize(rosen_pair, [1.3, 0.7, 0.8], jac=True, bounds=Bounds(lo, hi))
    kwargs: dict[str, Any] = {
        "Bounds of dicts": {"bounds": Bounds({"a": [0.0, 1.0]}, {"a": [1.2, np.inf], "b": 0.5})},
        "dict of pairs": {"bounds": {"a": ([0.0, 1.0], [1.2, np.inf]), "b": (None, 0.5)}},
        "flat pairs": {"bounds": [(0.0, 1.2), (1.0, None), (None, 0.5)]},
        "flat Bounds": {"bounds": Bounds(lo, hi)},
        "lb_dict/ub_dict": {
            "lb_dict": {"a": [0.0, 1.0]},
            "ub_dict": {"a": [1.2, np.inf], "b": 0.5},
        },
    }[form]
    res = minimize(flat_objective(fw, rosen_pair), two_keys(fw), **kwargs)
    got = np.concatenate([fw.to_numpy(res.x["a"]), fw.to_numpy(res.x["b"]).reshape(1)])
    np.testing.assert_allclose(got, want.x, rtol=1e-10, atol=1e-12)
    assert (res.nfev, res.njev, res.nit) == (want.nfev, want.njev, want.nit)


def test_bounds_keep_feasible_reaches_scipy() -> None:
    seen = []

    def custom(fun: Any, x0: Any, bounds: Any = None, **_: Any) -> Any:
        seen.append(bounds)
        return scipy.optimize.OptimizeResult(x=x0, fun=fun(x0), success=True)

    x0 = {"a": np.ones(2), "b": np.array(0.5)}
    keep = Bounds({"a": 0}, keep_feasible=True)
    minimize(lambda d: 0.0, x0, jac=None, method=custom, bounds=keep)
    np.testing.assert_array_equal(seen[0].lb, [0.0, 0.0, -np.inf])
    np.testing.assert_array_equal(seen[0].keep_feasible, True)
    flat = Bounds([0, 0, 0], [2, 2, 2], keep_feasible=[True, False, True])
    minimize(lambda d: 0.0, x0, jac=None, method=custom, bounds=flat)
    assert seen[1] is flat  # a flat Bounds goes to SciPy unchanged


def test_bounds_errors_keep_scipys_words() -> None:
    x0 = {"x": np.ones(3)}
    with pytest.raises(
        ValueError,
        match=(
            r"The number of bounds is not compatible with the length of `x0`: "
            r"bounds has 2 .* x0 has 3 .*lb_dict/ub_dict"
        ),
    ):
        minimize(lambda d: 0.0, x0, jac=None, bounds=[(0, 2)] * 2)
    with pytest.raises(ValueError, match="An upper bound is less than the corresponding lower"):
        minimize(lambda d: 0.0, x0, jac=None, bounds={"x": (2.0, 1.0)})
    with pytest.raises(ValueError, match="An upper bound is less than the corresponding lower"):
        minimize(lambda d: 0.0, x0, jac=None, bounds=[(2.0, 1.0)] * 3)  # SciPy's own check
    with pytest.raises(TypeError, match="not both"):
        minimize(lambda d: 0.0, x0, jac=None, bounds=[(0, 2)] * 3, lb_dict={"x": 0.0})
    with pytest.raises(TypeError, match=r"bounds\['x'\] is a float; expected an \(lb, ub\) pair"):
        minimize(lambda d: 0.0, x0, jac=None, bounds={"x": 0.0})
    with pytest.raises(ValueError, match=r"unknown key\(s\) 'y'"):
        minimize(lambda d: 0.0, x0, jac=None, bounds={"y": (0, 1)})
    # the first thing a SciPy user types works when its length fits
    res = minimize(lambda d: float((d["x"] ** 2).sum()), x0, jac=None, bounds=[(0.5, 2)] * 3)
    np.testing.assert_allclose(res.x["x"], 0.5)


def test_scipy_option_as_keyword_points_to_options() -> None:
    x0 = {"x": np.ones(2)}
    with pytest.raises(
        TypeError, match=r"'maxiter': it is a method option, pass options=\{'maxiter': 5\}"
    ):
        minimize(rosen_value, x0, jac=None, maxiter=5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'x_0'$"):
        minimize(rosen_value, x0, jac=None, x_0=5)


# -- what user functions may return ------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (1, 1)])
def test_size_one_value_is_a_value(fw: Framework, shape: tuple) -> None:
    def fun(d: Any) -> Any:
        return fw.tensor(np.full(shape, rosen(fw.to_numpy(d["x"]))), "float64")

    x0 = {"x": fw.tensor([1.3, 0.7], "float64")}
    want = scipy.optimize.minimize(lambda x: np.full(shape, rosen(x)), [1.3, 0.7], method="CG")
    res = minimize(fun, x0, jac=None, method="CG")
    np.testing.assert_array_equal(fw.to_numpy(res.x["x"]), want.x)
    assert isinstance(res.fun, float)


def test_several_values_are_refused_in_scipys_words() -> None:
    with pytest.raises(ValueError, match=r"must return a scalar value: .* shape \(2,\)") as info:
        minimize(lambda d: d["x"], {"x": np.ones(2)}, jac=None)
    assert isinstance(info.value, TypeError)  # (COBYQA raises TypeError there: both hold)


def test_sparse_and_operator_hessians_reach_scipy() -> None:
    x0 = np.array([1.3, 0.7, 0.8])
    want = scipy.optimize.minimize(rosen, x0, jac=rosen_der, hess=rosen_hess, method="trust-constr")
    for make in (scipy.sparse.csr_array, scipy.sparse.csr_matrix, aslinearoperator):
        got: list = []

        def hess(d: Any, make: Any = make, got: list = got) -> Any:
            h = make(rosen_hess(d["x"]))
            got.append(type(h))
            return h

        res = minimize(
            rosen_value,
            {"x": x0},
            jac=lambda d: {"x": rosen_der(d["x"])},
            hess=hess,
            method="trust-constr",
        )
        np.testing.assert_allclose(res.x["x"], want.x, rtol=1e-8)
        assert got and got[0] is type(make(np.eye(2)))
    with pytest.raises(ValueError, match=r"result of hess has shape \(2, 2\); expected \(3, 3\)"):
        minimize(
            rosen_value,
            {"x": x0},
            jac=lambda d: {"x": rosen_der(d["x"])},
            hess=lambda d: scipy.sparse.eye(2),
            method="trust-constr",
        )


def test_sparse_constraint_jacobian_and_hessian() -> None:
    """A constraint's jac may be sparse; its hess(x_dict, v) may be sparse or an operator."""

    def cfun(x: np.ndarray) -> np.ndarray:
        return np.array([x @ x])

    def cjac(x: np.ndarray) -> Any:
        return scipy.sparse.csr_array(2 * x.reshape(1, -1))

    def chess(x: np.ndarray, v: np.ndarray) -> Any:
        return LinearOperator((3, 3), matvec=lambda p: 2 * v[0] * np.ravel(p))

    x0 = np.array([0.3, 0.2, 0.1])
    flat = scipy.optimize.NonlinearConstraint(cfun, 0, 1, jac=cjac, hess=chess)
    want = scipy.optimize.minimize(
        rosen, x0, jac=rosen_der, constraints=flat, method="trust-constr"
    )
    ours = scipy.optimize.NonlinearConstraint(
        lambda d: cfun(d["x"]),
        0,
        1,
        jac=lambda d: cjac(d["x"]),
        hess=lambda d, v: chess(d["x"], v),
    )
    res = minimize(
        rosen_value,
        {"x": x0},
        jac=lambda d: {"x": rosen_der(d["x"])},
        constraints=ours,
        method="trust-constr",
    )
    np.testing.assert_allclose(res.x["x"], want.x, rtol=1e-8)
    assert (res.nfev, res.njev, res.nit) == (want.nfev, want.njev, want.nit)


# -- warnings where SciPy warns; counts as SciPy counts --------------------------------------
@pytest.mark.parametrize(
    ("method", "kwargs", "words"),
    [
        ("BFGS", {"hess": lambda d: np.eye(2)}, "does not use Hessian information"),
        ("CG", {"hessp": lambda d, p: p}, "does not use Hessian-vector product"),
        ("BFGS", {"bounds": [(0, 2)] * 2}, "cannot handle bounds"),
        ("Nelder-Mead", {"jac": lambda d: d}, "does not use gradient information"),
    ],
)
def test_scipy_warns_and_goes_on(method: str, kwargs: dict, words: str) -> None:
    kwargs = {"jac": None, **kwargs}
    with pytest.warns(RuntimeWarning, match=f"Method {method} {words}"):
        res = minimize(rosen_value, {"x": np.array([1.3, 0.7])}, method=method, **kwargs)
    assert res.success


@pytest.mark.parametrize("method", ["SLSQP", "trust-constr", "BFGS", "Nelder-Mead"])
def test_counts_are_scipys(method: str) -> None:
    con = {"type": "ineq", "fun": lambda x: 1 - x @ x}
    constrained = method in ("SLSQP", "trust-constr")
    kwargs: dict[str, Any] = {"constraints": con} if constrained else {}
    jac: Any = None if method == "Nelder-Mead" else True
    fun: Any = rosen if jac is None else rosen_pair
    want = scipy.optimize.minimize(fun, [0.3, 0.2], jac=jac, method=method, **kwargs)
    if constrained:
        kwargs = {"constraints": {"type": "ineq", "fun": lambda d: 1 - d["x"] @ d["x"]}}
    ours = (
        (lambda d: rosen(d["x"]))
        if jac is None
        else (lambda d: (rosen(d["x"]), {"x": rosen_der(d["x"])}))
    )
    res = minimize(ours, {"x": np.array([0.3, 0.2])}, jac=jac, method=method, **kwargs)
    np.testing.assert_allclose(res.x["x"], want.x, rtol=1e-9)
    for field in ("nfev", "njev", "nhev"):
        assert res.get(field) == want.get(field), field  # absent where SciPy has none
    assert res.nfev_ran >= 1 and res.nfev_ran <= res.nfev


def test_cobyqa_stopped_by_callback_as_scipy() -> None:
    def stop(intermediate_result: Any) -> None:
        raise StopIteration

    want = scipy.optimize.minimize(rosen, [1.3, 0.7], method="COBYQA", callback=stop)
    x0 = {"x": np.array([1.3, 0.7])}
    res = minimize(rosen_value, x0, jac=None, method="COBYQA", callback=stop)
    assert (res.status, res.success, res.message) == (want.status, want.success, want.message)


def test_nonfinite_pass_is_scipys_behaviour() -> None:
    def nan(x: Any) -> float:
        return np.nan

    with pytest.raises(NonFiniteError, match="not finite at x0"):  # the default: refuse
        minimize(lambda d: nan(d), {"x": np.ones(1)}, jac=None)
    want = scipy.optimize.minimize(nan, [1.0])
    res = minimize(lambda d: nan(d), {"x": np.ones(1)}, jac=None, nonfinite="pass")
    assert np.isnan(res.fun) and res.success is want.success is False
    assert res.message == want.message


# -- workers: SciPy's parallel finite differences in a real process pool -----------------------
@pytest.mark.parametrize("method", ["L-BFGS-B", "trust-constr"])
def test_workers_process_pool(method: str) -> None:
    x0 = np.array([1.3, 0.7, 0.8])
    want = scipy.optimize.minimize(rosen, x0, method=method)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        res = minimize(
            rosen_value, {"x": x0}, jac=None, method=method, options={"workers": pool.map}
        )
    np.testing.assert_array_equal(res.x["x"], want.x)
    assert res.nfev == want.nfev
    assert res.nfev_ran < res.nfev  # the finite differences ran in the workers


# -- SciPy's own tests through the package: the runner and its shim ---------------------------
def test_shim_routes_scipy_minimize_through_the_package() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from tools.scipy_shims import minimize as shim
    finally:
        sys.path.remove(str(ROOT))
    calls = []
    original = dict_minimize.minimize

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("method"))
        return original(*args, **kwargs)

    saved = scipy.optimize.minimize
    try:
        shim.patch()
        dict_minimize.minimize = spy  # type: ignore[assignment]
        res = scipy.optimize.minimize(rosen, [1.3, 0.7], jac=rosen_der, method="BFGS")
    finally:
        dict_minimize.minimize = original  # type: ignore[assignment]
        scipy.optimize.minimize = saved
        scipy.optimize._minimize.minimize = saved  # type: ignore[attr-defined]
    want = saved(rosen, [1.3, 0.7], jac=rosen_der, method="BFGS")
    assert calls == ["BFGS"]
    np.testing.assert_array_equal(res.x, want.x)
    np.testing.assert_array_equal(res.jac, want.jac)
    assert (res.nfev, res.njev, res.nit) == (want.nfev, want.njev, want.nit)
    assert set(shim.KNOWN) <= {k for k in shim.KNOWN if "::" in k}


def test_suite_runner_on_a_small_file() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "scipy_suite.py"),
            "--only",
            "minimize",
            "--files",
            "test_lbfgsb_hessinv.py,test_lbfgsb_setulb.py",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line}
    assert rows["test_lbfgsb_hessinv.py"][:2] == ["3", "3"]  # plain passed, through passed
    assert rows["total"] == ["5", "5", "0", "0"]
