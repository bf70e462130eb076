"""Against a real reference: on the flat problem the bridge reproduces plain SciPy exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import rosen, rosen_der

from dict_minimize import minimize
from tests.conftest import Framework, flat_objective

METHODS = ["L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr"]


def rosen_pair(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


@pytest.mark.parametrize("method", METHODS)
def test_same_iterates_and_nfev_as_scipy(fw: Framework, method: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=4)
    x0 = {"a": fw.tensor(a), "b": fw.tensor(b)}
    flat0 = np.concatenate([a.ravel(), b])
    bounds = scipy.optimize.Bounds(np.full(10, -1.5), np.full(10, 2.0))
    bounded = method in {"L-BFGS-B", "TNC", "SLSQP", "trust-constr"}

    ref_iterates: list[np.ndarray] = []
    ours_iterates: list[np.ndarray] = []
    ref = scipy.optimize.minimize(
        rosen_pair,
        flat0,
        jac=True,
        method=method,
        bounds=bounds if bounded else None,
        callback=lambda xk, *_: ref_iterates.append(np.copy(getattr(xk, "x", xk))),
    )
    ours = minimize(
        flat_objective(fw, rosen_pair),
        x0,
        method=method,
        lb_dict={"a": -1.5, "b": -1.5} if bounded else None,
        ub_dict={"a": 2.0, "b": np.full(4, 2.0)} if bounded else None,
        callback=lambda d: ours_iterates.append(
            np.concatenate([fw.to_numpy(d["a"]).ravel(), fw.to_numpy(d["b"])])
        ),
    )
    assert ours.nfev == ref.nfev
    assert ours.nit == ref.nit
    assert len(ours_iterates) == len(ref_iterates)
    np.testing.assert_array_equal(np.array(ours_iterates), np.array(ref_iterates))
    flat = np.concatenate([fw.to_numpy(ours.x["a"]).ravel(), fw.to_numpy(ours.x["b"])])
    np.testing.assert_array_equal(flat, ref.x)
    assert ours.fun == ref.fun and ours.success == ref.success
