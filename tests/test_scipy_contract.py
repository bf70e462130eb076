"""What the bridge relies on in SciPy's implementation, checked against the installed SciPy.

The driver keeps the best point seen as a *reference* to the ``x`` SciPy passes to the
objective (no 4-million-element copy per improvement), because SciPy's gradient methods wrap the
objective in ``ScalarFunction``, which hands it a fresh copy of ``x`` at every evaluation and
never writes that copy afterwards. If a SciPy release changes that, this test fails (and the
driver must copy again: ``private_x`` in ``_minimize.solve``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize

from dict_minimize import minimize

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


@pytest.mark.parametrize("apart", [False, True], ids=["jac=True", "fun and jac apart"])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_pass_a_fresh_private_x(method: str, apart: bool) -> None:
    """Both ways of giving SciPy the gradient: ``jac=True`` (SciPy's MemoizeJac splits the
    pair) and a value function with a ``jac`` callable (what ``minimize`` hands SciPy, with a
    memo of its own); each call gets a fresh copy."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    target = np.array([1.0, -2.0, 0.5])

    def pair(x: np.ndarray) -> tuple[float, np.ndarray]:
        seen.append((x, x.copy()))
        r = x - target
        return float(r @ r + 0.1 * (r**4).sum()), 2 * r + 0.4 * r**3

    fun: Any = (lambda x: pair(x)[0]) if apart else pair
    jac: Any = (lambda x: pair(x)[1]) if apart else True

    def hess(x: np.ndarray) -> np.ndarray:
        return np.diag(2 + 1.2 * (x - target) ** 2)

    kwargs = (
        {"hess": hess}
        if method
        in ("Newton-CG", "dogleg", "trust-ncg", "trust-krylov", "trust-exact", "trust-constr")
        else {}
    )
    res = scipy.optimize.minimize(fun, np.zeros(3), jac=jac, method=method, **kwargs)
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


# -- what the driver does with that private copy -----------------------------------------------


def test_objective_writing_its_numpy_inputs_changes_nothing() -> None:
    """NumPy inputs are always copies: an objective that writes into them cannot change SciPy's
    x or the best point kept by reference (the result stays consistent after an interrupt)."""
    from dict_minimize import minimize

    target = np.array([1.0, -2.0, 0.5])
    calls: list[float] = []

    def fun(d: dict) -> tuple[float, dict]:
        if len(calls) == 2:
            raise KeyboardInterrupt
        r = d["x"] - target
        value = float(r @ r)
        calls.append(value)
        d["x"][:] = 1e9  # scribble on the input
        return value, {"x": 2 * r}

    res = minimize(fun, {"x": np.zeros(3)}, method="L-BFGS-B")
    assert res.status == -1 and res.fun == min(calls)
    r = res.x["x"] - target
    assert float(r @ r) == pytest.approx(res.fun)


def test_torch_shares_the_private_copy_only_where_it_is_private() -> None:
    """float64 CPU leaves share SciPy's private copy (no copy per evaluation) with SciPy's
    gradient methods; a custom method, whose x may be its own buffer, gets copies."""
    torch = pytest.importorskip("torch")
    from dict_minimize import minimize

    module = __import__("dict_minimize.backends.torch", fromlist=["_to_device"])
    shared: list[bool] = []
    original = module._to_device

    def spy(vec: np.ndarray, device: object, dtype: object, share: bool = False) -> object:
        out = original(vec, device, dtype, share)
        shared.append(bool(np.shares_memory(vec, out.numpy())))
        return out

    def fun(d: dict) -> tuple:
        value = ((d["x"] - 3.0) ** 2).sum()
        (g,) = torch.autograd.grad(value, d["x"])
        return value, {"x": g}

    def descent(f, x0, args=(), jac=None, callback=None, **options):
        x = np.array(x0, dtype=float)
        for _ in range(50):
            f(x)
            x -= 0.25 * jac(x)  # the method's own buffer, written in place
        return scipy.optimize.OptimizeResult(x=x, fun=f(x), success=True, nit=50, nfev=51)

    x0 = {"x": torch.zeros(4, dtype=torch.float64)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "_to_device", spy)
        res = minimize(fun, x0, method="L-BFGS-B")
        assert res.success and shared.count(True) == res.nfev  # results are built from copies
        shared.clear()
        custom = minimize(fun, x0, method=descent)
        assert shared and not any(shared)
    assert torch.allclose(res.x["x"], torch.tensor(3.0, dtype=torch.float64))
    assert torch.allclose(custom.x["x"], torch.tensor(3.0, dtype=torch.float64))


def test_tnc_with_equal_bounds_and_a_callback() -> None:
    """SciPy's TNC breaks new-style callbacks when equal bounds fix a variable: ours works."""
    seen: list = []
    x0 = {"a": np.array([1.0, 1.0])}
    res = minimize(
        lambda d: (float(d["a"].sum()), {"a": np.ones(2)}),
        x0,
        method="TNC",
        lb_dict={"a": np.array([0.0, 1.0])},
        ub_dict={"a": np.array([1.0, 1.0])},
        callback=lambda d: seen.append(d["a"].copy()),
    )
    assert res.success and seen and all(s[1] == 1.0 for s in seen)
    np.testing.assert_array_equal(res.x["a"], [0.0, 1.0])
