"""What the bridge relies on in SciPy's implementation, checked against the installed SciPy.

The driver keeps the best point seen as a *reference* to the ``x`` SciPy passes to the
objective (no 4-million-element copy per improvement), because SciPy's gradient methods wrap the
objective in ``ScalarFunction``, which hands it a fresh copy of ``x`` at every evaluation and
never writes that copy afterwards. If a SciPy release changes that, this test fails (and the
driver must copy again: ``private_x`` in ``_minimize.solve``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

GRADIENT_METHODS = [
    "CG",
    "BFGS",
    "Newton-CG",
    "L-BFGS-B",
    "TNC",
    "SLSQP",
    "dogleg",
    "trust-ncg",
    "trust-krylov",
    "trust-exact",
    "trust-constr",
]


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_pass_a_fresh_private_x(method: str) -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    target = np.array([1.0, -2.0, 0.5])

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        seen.append((x, x.copy()))
        r = x - target
        return float(r @ r + 0.1 * (r**4).sum()), 2 * r + 0.4 * r**3

    def hess(x: np.ndarray) -> np.ndarray:
        return np.diag(2 + 1.2 * (x - target) ** 2)

    kwargs = (
        {"hess": hess}
        if method
        in ("Newton-CG", "dogleg", "trust-ncg", "trust-krylov", "trust-exact", "trust-constr")
        else {}
    )
    res = scipy.optimize.minimize(fun, np.zeros(3), jac=True, method=method, **kwargs)
    assert res.success, res.message
    assert len(seen) >= 3
    for x, copy in seen:  # never written after the call
        np.testing.assert_array_equal(x, copy)
        assert x.dtype == np.float64 and x.ndim == 1
    arrays = [x for x, _ in seen]
    assert len({id(x) for x in arrays}) == len(arrays)  # a new array every time (all alive)
    for i, x in enumerate(arrays):  # and no two share memory
        for y in arrays[i + 1 :]:
            assert not np.shares_memory(x, y)
