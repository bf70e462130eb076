"""Implicit differentiation of a solution: ``torch_api.argmin`` and ``jax_api.argmin``.

Written once for both frameworks. The reference is ridge regression, whose minimizer has a
closed form, ``x*(lam, b) = (A'A + lam I)^{-1} A'b``: the implicit gradient of a loss of
``x*`` with respect to ``lam`` and ``b`` is compared with the closed form's derivative and with
central finite differences of the whole SciPy solve. float64 throughout (JAX x64 is enabled
for each test only).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from dict_minimize._solvers.implicit import ImplicitGradientWarning, solve_hessian
from tests.conftest import Framework, get_framework

RTOL = 1e-6  # implicit vs closed form / finite differences (relative)
TIGHT = {"method": "trust-exact", "tol": 1e-12}  # tight forward solves (exact Hessian)
FD_STEP = 1e-5

RNG = np.random.default_rng(20261203)
A = RNG.normal(size=(12, 3))
B = RNG.normal(size=12)
C = np.array([1.0, -2.0, 0.5])  # the loss is <C, x*>
LAM = 0.7


@pytest.fixture(params=["torch", "jax"])
def fw(request: pytest.FixtureRequest) -> Iterator[Framework]:
    pytest.importorskip(request.param)
    framework = get_framework(request.param)
    with framework.x64():  # JAX: float64 for this test only, restored after
        yield framework


def argmin_of(fw: Framework) -> Callable[..., Any]:
    if fw.name == "torch":
        from dict_minimize.torch_api import argmin
    else:
        from dict_minimize.jax_api import argmin
    return argmin


def grad(fw: Framework, loss: Callable[[dict], Any], theta: dict[str, Any]) -> dict:
    """The gradient of ``loss(theta_dict)`` (a framework scalar) at NumPy values ``theta``."""
    if fw.name == "jax":
        import jax

        g = jax.grad(loss)({k: fw.tensor(v) for k, v in theta.items()})
        return {k: fw.to_numpy(v) for k, v in g.items()}
    ts = {k: fw.tensor(v).requires_grad_(True) for k, v in theta.items()}
    loss(ts).backward()
    return {k: fw.to_numpy(t.grad) for k, t in ts.items()}


def value(fw: Framework, loss: Callable[[dict], Any], theta: dict[str, Any]) -> float:
    return float(fw.to_numpy(loss({k: fw.tensor(v) for k, v in theta.items()})))


def closed_form(lam: float, b: np.ndarray, design: np.ndarray = A) -> np.ndarray:
    k = design.shape[1]
    return np.linalg.solve(design.T @ design + lam * np.eye(k), design.T @ b)


def closed_form_grad(lam: float, b: np.ndarray, c: np.ndarray, design: np.ndarray = A) -> dict:
    """d<c, x*>/dlam = -c' M^{-1} x*, d<c, x*>/db = A M^{-1} c, with M = A'A + lam I."""
    M = design.T @ design + lam * np.eye(design.shape[1])
    u = np.linalg.solve(M, c)
    return {"lam": np.asarray(-u @ closed_form(lam, b, design)), "b": design @ u}


def ridge_loss(fw: Framework, **kwargs: Any) -> Callable[[dict], Any]:
    a, c = fw.tensor(A), fw.tensor(C)
    argmin = argmin_of(fw)

    def f(x: dict, lam: Any, b: Any) -> Any:
        r = a @ x["w"] - b
        return 0.5 * (r @ r) + 0.5 * lam * (x["w"] @ x["w"])

    def loss(theta: dict) -> Any:
        x = argmin(f, {"w": fw.tensor(np.zeros(3))}, (theta["lam"], theta["b"]), **kwargs)
        return c @ x["w"]

    return loss


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("solve", ["dense", "cg"])
def test_ridge_matches_closed_form(fw: Framework, solve: str) -> None:
    loss = ridge_loss(fw, solve=solve, **TIGHT)
    got = grad(fw, loss, {"lam": np.asarray(LAM), "b": B})
    want = closed_form_grad(LAM, B, C)
    assert rel_err(got["lam"], want["lam"]) < RTOL
    assert rel_err(got["b"], want["b"]) < RTOL


def test_ridge_matches_finite_differences_of_the_solve(fw: Framework) -> None:
    loss = ridge_loss(fw, **TIGHT)
    got = grad(fw, loss, {"lam": np.asarray(LAM), "b": B})["lam"]
    hi = value(fw, loss, {"lam": np.asarray(LAM + FD_STEP), "b": B})
    lo = value(fw, loss, {"lam": np.asarray(LAM - FD_STEP), "b": B})
    fd = (hi - lo) / (2 * FD_STEP)
    assert rel_err(got, np.asarray(fd)) < RTOL
    # the forward solve is the closed form too
    a, b = fw.tensor(A), fw.tensor(B)
    x = argmin_of(fw)(
        lambda x, lam: 0.5 * ((a @ x["w"] - b) ** 2).sum() + 0.5 * lam * (x["w"] ** 2).sum(),
        {"w": fw.tensor(np.zeros(3))},
        (fw.tensor(np.asarray(LAM)),),
        **TIGHT,
    )
    assert np.allclose(fw.to_numpy(x["w"]), closed_form(LAM, B), rtol=1e-8, atol=1e-10)


def test_two_keys_and_nested_args(fw: Framework) -> None:
    """x0 = {"w": (3,), "c": ()} (an intercept), args = ({"b": b, "reg": [lam, 2]}, "tag")."""
    a, cw = fw.tensor(A), fw.tensor(C)
    argmin = argmin_of(fw)
    seen = []

    def f(x: dict, data: dict, tag: str) -> Any:
        seen.append(tag)
        lam, power = data["reg"]
        r = a @ x["w"] + x["c"] - data["b"]
        return 0.5 * (r @ r) + 0.5 * lam * ((x["w"] ** power).sum() + x["c"] ** power)

    def loss(theta: dict) -> Any:
        x = argmin(
            f,
            {"w": fw.tensor(np.zeros(3)), "c": fw.tensor(np.zeros(()))},
            ({"b": theta["b"], "reg": [theta["lam"], 2]}, "tag"),
            **TIGHT,
        )
        return cw @ x["w"] + 3.0 * x["c"]

    got = grad(fw, loss, {"lam": np.asarray(LAM), "b": B})
    design = np.column_stack([A, np.ones(len(B))])
    want = closed_form_grad(LAM, B, np.append(C, 3.0), design)
    assert rel_err(got["lam"], want["lam"]) < RTOL
    assert rel_err(got["b"], want["b"]) < RTOL
    assert set(seen) == {"tag"}


def test_dense_and_cg_agree(fw: Framework) -> None:
    theta = {"lam": np.asarray(0.05), "b": B}
    dense = grad(fw, ridge_loss(fw, solve="dense", **TIGHT), theta)
    cg = grad(fw, ridge_loss(fw, solve="cg", cg_tol=1e-12, **TIGHT), theta)
    for k in theta:
        assert rel_err(cg[k], dense[k]) < 1e-8


def test_return_result(fw: Framework) -> None:
    x, res = argmin_of(fw)(
        lambda x, t: ((x["w"] - t) ** 2).sum(),
        {"w": fw.tensor(np.zeros(2))},
        (fw.tensor(np.array([1.0, 2.0])),),
        return_result=True,
        method="L-BFGS-B",
    )
    assert res.success and res.nfev > 0
    assert np.allclose(fw.to_numpy(x["w"]), [1.0, 2.0])


def test_not_converged_warns(fw: Framework) -> None:
    loss = ridge_loss(fw, options={"maxiter": 1})
    with pytest.warns(ImplicitGradientWarning, match="the solve did not converge"):
        got = grad(fw, loss, {"lam": np.asarray(LAM), "b": B})
    assert np.all(np.isfinite(got["b"]))  # a gradient is still returned


@pytest.mark.parametrize("solve", ["dense", "cg"])
def test_singular_hessian_warns(fw: Framework, solve: str) -> None:
    """f is flat in x["w"][1]: the Hessian is diag(2, 0)."""
    argmin = argmin_of(fw)

    def f(x: dict, t: Any) -> Any:
        return (x["w"][0] - t) ** 2

    def loss(theta: dict) -> Any:
        return argmin(f, {"w": fw.tensor(np.zeros(2))}, (theta["t"],), solve=solve)["w"].sum()

    with pytest.warns(ImplicitGradientWarning, match="Hessian at x\\* is singular"):
        got = grad(fw, loss, {"t": np.asarray(1.5)})
    assert np.isfinite(got["t"])
    if solve == "dense":  # least squares ignores the flat direction: the right answer here
        assert np.isclose(got["t"], 1.0)


def test_indefinite_hessian_warns(fw: Framework) -> None:
    """A saddle: SciPy stops at once at the stationary point x0 = 0."""
    argmin = argmin_of(fw)

    def f(x: dict, t: Any) -> Any:
        return x["w"][0] ** 2 - x["w"][1] ** 2 + t * 0.0 * x["w"][0]

    def loss(theta: dict) -> Any:
        return argmin(f, {"w": fw.tensor(np.zeros(2))}, (theta["t"],), solve="dense")["w"].sum()

    with pytest.warns(ImplicitGradientWarning, match="not positive definite"):
        grad(fw, loss, {"t": np.asarray(1.0)})


def test_no_warning_on_a_good_solve(fw: Framework) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplicitGradientWarning)
        grad(fw, ridge_loss(fw), {"lam": np.asarray(LAM), "b": B})


def test_bad_options(fw: Framework) -> None:
    argmin = argmin_of(fw)
    x0 = {"w": fw.tensor(np.zeros(2))}

    def f(x: dict) -> Any:
        return (x["w"] ** 2).sum()

    with pytest.raises(ValueError, match="solve must be one of"):
        argmin(f, x0, solve="lu")
    with pytest.raises(ValueError, match="cg_tol must be a positive float"):
        argmin(f, x0, cg_tol=0.0)
    with pytest.raises(ValueError, match="cg_maxiter must be a positive int"):
        argmin(f, x0, cg_maxiter=0)
    with pytest.raises(ValueError, match="argmin does not take lb_dict"):
        argmin(f, x0, lb_dict={"w": 0.0})
    with pytest.raises(ValueError, match="argmin needs jac='autodiff'"):
        argmin(f, x0, jac=True)


def test_jax_under_jit_is_refused() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from dict_minimize.jax_api import argmin

    def f(x: dict, t: Any) -> Any:
        return jnp.sum((x["w"] - t) ** 2)

    with pytest.raises(TypeError, match=r"cannot run under jax\.jit"):
        jax.jit(lambda t: argmin(f, {"w": jnp.zeros(2)}, (t,))["w"])(jnp.ones(2))


def test_torch_without_grad_returns_plain_tensors() -> None:
    torch = pytest.importorskip("torch")
    from dict_minimize.torch_api import argmin

    t = torch.tensor([1.0, 2.0])
    x = argmin(lambda x, t: ((x["w"] - t) ** 2).sum(), {"w": torch.zeros(2)}, (t,))
    assert not x["w"].requires_grad
    assert torch.allclose(x["w"], t)


# --- the shared solver on NumPy matrices ---------------------------------------------------------


@pytest.mark.parametrize("solve", ["dense", "cg", "auto"])
def test_solve_hessian_spd(solve: str) -> None:
    M = RNG.normal(size=(30, 30))
    H = M @ M.T + 30 * np.eye(30)
    v = RNG.normal(size=30)
    w = solve_hessian(lambda p: H @ p, v, solve=solve, cg_tol=1e-12)
    assert np.allclose(H @ w, v, rtol=1e-9, atol=1e-9)


def test_cg_maxiter_warns() -> None:
    H = np.diag(np.logspace(0, 6, 50))
    with pytest.warns(ImplicitGradientWarning, match="did not reach cg_tol"):
        solve_hessian(lambda p: H @ p, np.ones(50), solve="cg", cg_maxiter=3)


def test_zero_cotangent_is_zero() -> None:
    w = solve_hessian(lambda p: p, np.zeros(4), solve="cg")
    assert np.array_equal(w, np.zeros(4))
