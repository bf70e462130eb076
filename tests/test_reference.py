"""Against a real reference: on the flat problem the bridge reproduces plain SciPy exactly."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import rosen, rosen_der

from dict_minimize import minimize
from dict_minimize._threads import ENV_VAR, OLD_ENV_VAR
from tests.conftest import Framework, flat_objective

METHODS = ["L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr"]


def rosen_pair(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


def _reference(method: str, flat0: np.ndarray, bounds: Any, capped: bool) -> tuple:
    """Plain SciPy on the flat problem, its BLAS on one thread when ``capped`` (as
    ``threads="auto"`` runs small problems)."""
    iterates: list[np.ndarray] = []
    with contextlib.ExitStack() as stack:
        if capped:
            threadpoolctl = pytest.importorskip("threadpoolctl")
            stack.enter_context(threadpoolctl.threadpool_limits(1, user_api="blas"))
        ref = scipy.optimize.minimize(
            rosen_pair,
            flat0,
            jac=True,
            method=method,
            bounds=bounds,
            callback=lambda xk, *_: iterates.append(np.copy(getattr(xk, "x", xk))),
        )
    return ref, iterates


@pytest.mark.parametrize("threads", ["auto", None])
@pytest.mark.parametrize("method", METHODS)
def test_same_iterates_and_nfev_as_scipy(fw: Framework, method: str, threads: Any) -> None:
    """Bit for bit, with SciPy's BLAS on the same threads: ``threads=None`` against SciPy as
    it is, the default (one thread for a problem this small) against SciPy under
    ``threadpool_limits(1)`` (SLSQP's last bits depend on the BLAS thread count)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=4)
    x0 = {"a": fw.tensor(a), "b": fw.tensor(b)}
    flat0 = np.concatenate([a.ravel(), b])
    bounds = scipy.optimize.Bounds(np.full(10, -1.5), np.full(10, 2.0))
    bounded = method in {"L-BFGS-B", "TNC", "SLSQP", "trust-constr"}

    if os.environ.get(ENV_VAR) or os.environ.get(OLD_ENV_VAR):
        pytest.skip("the thread setting is overridden by the environment")
    ref, ref_iterates = _reference(
        method, flat0, bounds if bounded else None, capped=threads == "auto"
    )
    ours_iterates: list[np.ndarray] = []
    ours = minimize(
        flat_objective(fw, rosen_pair),
        x0,
        method=method,
        lb_dict={"a": -1.5, "b": -1.5} if bounded else None,
        ub_dict={"a": 2.0, "b": np.full(4, 2.0)} if bounded else None,
        callback=lambda d: ours_iterates.append(
            np.concatenate([fw.to_numpy(d["a"]).ravel(), fw.to_numpy(d["b"])])
        ),
        threads=threads,
    )
    assert ours.nfev == ref.nfev
    assert ours.nit == ref.nit
    assert len(ours_iterates) == len(ref_iterates)
    np.testing.assert_array_equal(np.array(ours_iterates), np.array(ref_iterates))
    flat = np.concatenate([fw.to_numpy(ours.x["a"]).ravel(), fw.to_numpy(ours.x["b"])])
    np.testing.assert_array_equal(flat, ref.x)
    assert ours.fun == ref.fun and ours.success == ref.success
