"""PyTorch models: ``torch_api.minimize_module`` and ``torch_api.ScipyOptimizer``.

References: the closed-form least-squares (and ridge) solution, and SciPy on the same flat
problem (the same iterates, so the same ``nfev``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

torch = pytest.importorskip("torch")

from dict_minimize import minimize  # noqa: E402
from dict_minimize.torch_api import ScipyOptimizer, minimize_module  # noqa: E402
from tests.test_examples import load_example  # noqa: E402

F64 = torch.float64


def data(n: int = 30, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64)
    y = X @ torch.arange(1.0, d + 1, dtype=F64) - 0.5 + 0.01 * torch.randn(n, generator=g)
    return X, y


def linear(d: int = 3, dtype=F64, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(d, 1).to(dtype)


def mse(m, X, y):
    return ((m(X).squeeze(-1) - y) ** 2).mean()


def lstsq(X: torch.Tensor, y: torch.Tensor, ridge: float = 0.0) -> np.ndarray:
    """[w..., b] minimizing mean((Xw + b - y)^2) + ridge * (|w|^2 + b^2)."""
    A = np.hstack([X.numpy(), np.ones((len(X), 1))])
    n = len(X)
    return np.linalg.solve(A.T @ A / n + ridge * np.eye(A.shape[1]), A.T @ y.numpy() / n)


def flat(m: torch.nn.Linear) -> np.ndarray:
    return np.concatenate([m.weight.detach().numpy().ravel(), m.bias.detach().numpy()])


# --- minimize_module ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, tol",
    [
        ("L-BFGS-B", None),
        ("BFGS", None),
        ("Newton-CG", None),
        ("trust-krylov", 1e-10),
        ("trust-exact", None),
    ],
)
def test_module_fit_matches_least_squares(method, tol):
    X, y = data()
    m = linear()
    weight, bias = m.weight, m.bias
    res = minimize_module(m, mse, args=(X, y), method=method, tol=tol)
    assert res.success, res.message
    assert m.weight is weight and m.bias is bias  # in place: the same Parameter objects
    np.testing.assert_allclose(flat(m), lstsq(X, y), atol=1e-5)
    assert list(res.x) == ["weight", "bias"]
    assert torch.equal(res.x["weight"], m.weight.detach())
    assert res.x["weight"] is not m.weight and not res.x["weight"].requires_grad
    assert m.weight.grad is None  # .grad is not touched
    np.testing.assert_allclose(m(X).detach().squeeze(-1), X @ res.x["weight"][0] + res.x["bias"])


def test_module_second_order_methods_get_hessian_products():
    """Newton-CG gets exact Hessian products by autodiff (counted in nhev), not differences."""
    X, y = data()
    res = minimize_module(linear(), mse, args=(X, y), method="Newton-CG")
    assert res.success and res.nhev > 0


def test_module_same_iterates_as_scipy_on_the_flat_problem():
    X, y = data()
    m = linear()
    p0 = flat(m)

    def flat_fun(v):
        w = torch.tensor(v, dtype=F64, requires_grad=True)
        # the module's own arithmetic (addmm), so the iterates agree to the last bit
        out = torch.nn.functional.linear(X, w[:3].view(1, 3), w[3:])
        loss = ((out.squeeze(-1) - y) ** 2).mean()
        (g,) = torch.autograd.grad(loss, w)
        return loss.item(), g.numpy()

    ref = scipy.optimize.minimize(flat_fun, p0, jac=True, method="L-BFGS-B")
    res = minimize_module(m, mse, args=(X, y), method="L-BFGS-B")
    assert (res.nfev, res.nit) == (ref.nfev, ref.nit)
    np.testing.assert_allclose(flat(m), ref.x, rtol=1e-9, atol=1e-12)


def test_module_bounds_by_name_and_by_parameter():
    X, y = data()
    free = lstsq(X, y)
    assert free[3] < -0.3  # the unbounded bias is well below the bound: it is active
    m = linear()
    res = minimize_module(m, mse, args=(X, y), method="L-BFGS-B", lb_dict={"bias": -0.2})
    assert res.success and m.bias.item() == pytest.approx(-0.2, abs=1e-12)
    m2 = linear()
    res2 = minimize_module(
        m2, mse, args=(X, y), method="L-BFGS-B", lb_dict={m2.bias: -0.2}, ub_dict={m2.weight: 2.5}
    )
    assert res2.success and m2.bias.item() == pytest.approx(-0.2, abs=1e-12)
    assert m2.weight.max().item() <= 2.5
    with pytest.raises(ValueError, match="not one of the parameters"):
        minimize_module(m2, mse, args=(X, y), lb_dict={linear().bias: 0.0})


def net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
    ).double()


def net_loss(m, X, y):
    return ((m(X).squeeze(-1) - y) ** 2).mean()


def state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize(
    "params, expected",
    [
        (["3.weight", "3.bias"], {"3.weight", "3.bias"}),
        ("0.bias", {"0.bias"}),
        (lambda name, p: name.startswith("3."), {"3.weight", "3.bias"}),
    ],
    ids=["names", "one-name", "predicate"],
)
def test_module_params_selection_leaves_the_rest_alone(params, expected):
    X, y = data(d=2)
    m = net().eval()
    m[0].weight.requires_grad_(False)  # frozen: never optimized
    before = state(m)
    res = minimize_module(m, net_loss, params=params, args=(X, y), method="L-BFGS-B")
    assert set(res.x) == expected
    after = state(m)
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == (key in expected), key
    assert not m.training  # the mode is kept


def test_module_params_by_object_and_default():
    X, y = data(d=2)
    m = net().eval()
    res = minimize_module(m, net_loss, params=[m[3].bias, m[0].weight], args=(X, y))
    assert list(res.x) == ["0.weight", "3.bias"]  # the module's order
    m[1].weight.requires_grad_(False)
    res = minimize_module(m, net_loss, args=(X, y))
    assert list(res.x) == ["0.weight", "0.bias", "1.bias", "3.weight", "3.bias"]


def test_module_train_mode_and_buffers():
    X, y = data(d=2)
    m = net().train()
    m.eval()
    running = m[1].running_mean.clone()
    minimize_module(m, net_loss, args=(X, y), options={"maxiter": 5})
    assert not m.training and torch.equal(m[1].running_mean, running)  # eval: buffers kept
    m.train()
    minimize_module(m, net_loss, args=(X, y), options={"maxiter": 5})
    assert m.training  # the mode is kept


def test_module_loss_reading_parameters_sees_the_candidate():
    """Weight decay written over module.parameters() is part of the objective: ridge."""
    X, y = data()
    lam = 0.3
    m = linear()

    def ridge(mod, X, y):
        return mse(mod, X, y) + lam * sum((p**2).sum() for p in mod.parameters())

    res = minimize_module(m, ridge, args=(X, y), method="L-BFGS-B", tol=1e-12)
    assert res.success
    np.testing.assert_allclose(flat(m), lstsq(X, y, ridge=lam), atol=1e-6)


def test_module_tied_weights_and_hooks():
    X, _ = data(d=4, n=40)
    torch.manual_seed(0)
    enc, dec = torch.nn.Linear(4, 4, bias=False).double(), torch.nn.Linear(4, 4, bias=False)
    dec.weight = enc.weight  # tied
    model = torch.nn.Sequential(enc, torch.nn.Tanh(), dec)
    calls = []
    model.register_forward_hook(lambda mod, inp, out: calls.append(1))
    target = torch.tanh(X) @ torch.eye(4, dtype=F64)

    def loss(mod, X, t):
        return ((mod(X) - t) ** 2).mean()

    tied = enc.weight
    start = loss(model, X, target).item()
    calls.clear()
    res = minimize_module(model, loss, args=(X, target), method="L-BFGS-B")
    assert list(res.x) == ["0.weight"]  # one entry for the tied pair
    assert enc.weight is tied and dec.weight is tied
    assert len(calls) == res.nfev  # hooks run at every evaluation
    assert res.fun < 0.5 * start


def test_module_float32_keeps_dtype():
    X, y = data()
    m = linear(dtype=torch.float32)
    res = minimize_module(
        m, mse, args=(X.float(), y.float()), method="L-BFGS-B", options={"ftol": 1e-7}
    )
    assert m.weight.dtype == torch.float32 and res.x["weight"].dtype == torch.float32
    np.testing.assert_allclose(flat(m), lstsq(X, y), atol=1e-2)


def test_module_optimizer_built_before_keeps_working():
    X, y = data()
    m = linear()
    sgd = torch.optim.SGD(m.parameters(), lr=0.01)
    minimize_module(m, mse, args=(X, y))
    before = flat(m)
    sgd.zero_grad()
    mse(m, X, y).backward()
    sgd.step()
    assert np.abs(flat(m) - before).max() < 1e-4  # at the minimum: a tiny step of the same tensors
    assert sgd.param_groups[0]["params"][0] is m.weight


def test_module_constraints_see_the_named_dict():
    """Constraint functions get the dict of parameter values, as callbacks do."""
    X, y = data()
    m = linear()
    total = {"type": "eq", "fun": lambda d: d["weight"].sum() - 5.0}
    res = minimize_module(m, mse, args=(X, y), method="SLSQP", constraints=[total])
    assert res.success, res.message
    assert m.weight.sum().item() == pytest.approx(5.0, abs=1e-8)
    free = lstsq(X, y)
    assert abs(free[:3].sum() - 5.0) > 0.5  # the constraint is active


def test_module_callback_sees_the_named_dict():
    X, y = data()
    seen = []
    minimize_module(linear(), mse, args=(X, y), callback=lambda x: seen.append(sorted(x)))
    assert seen and all(s == ["bias", "weight"] for s in seen)


def test_module_exception_leaves_the_best_point():
    X, y = data()
    m = linear()
    calls = [0]

    def loss(mod, X, y):
        calls[0] += 1
        if calls[0] == 6:
            raise RuntimeError("boom")
        return mse(mod, X, y)

    start = mse(m, X, y).item()
    with pytest.raises(RuntimeError, match="boom") as info:
        minimize_module(m, loss, args=(X, y), method="L-BFGS-B")
    best = info.value.dict_minimize_result
    assert torch.equal(m.bias.detach(), best.x["bias"]) and best.fun < start
    assert mse(m, X, y).item() == pytest.approx(best.fun)


def test_module_keyboard_interrupt_returns_best_point():
    X, y = data()
    m = linear()
    calls = [0]

    def loss(mod, X, y):
        calls[0] += 1
        if calls[0] == 6:
            raise KeyboardInterrupt
        return mse(mod, X, y)

    res = minimize_module(m, loss, args=(X, y), method="L-BFGS-B")
    assert "KeyboardInterrupt" in res.message
    assert not res.success and torch.equal(m.bias.detach(), res.x["bias"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"params": ["nope"]}, KeyError, r"'nope'.*not a parameter.*'0.weight'"),
        ({"params": ["1.running_mean"]}, KeyError, "a buffer, not a parameter"),
        ({"params": []}, ValueError, "params is empty"),
        ({"params": [torch.zeros(2)]}, ValueError, "not a parameter of the module"),
        ({"params": [3]}, TypeError, "holds a int"),
        ({"params": lambda n, p: False}, ValueError, "selected no parameter"),
        ({"jac": True}, TypeError, "does not take jac="),
        ({"backend": "jax"}, TypeError, "does not take backend="),
    ],
)
def test_module_errors(kwargs, error, match):
    X, y = data(d=2)
    with pytest.raises(error, match=match):
        minimize_module(net(), net_loss, args=(X, y), **kwargs)


def test_module_errors_frozen_lazy_and_types():
    X, y = data(d=2)
    m = net()
    m[0].bias.requires_grad_(False)
    with pytest.raises(ValueError, match=r"'0.bias' has requires_grad=False"):
        minimize_module(m, net_loss, params=["0.bias"], args=(X, y))
    with pytest.raises(ValueError, match="not initialized yet"):
        minimize_module(torch.nn.LazyLinear(1), net_loss, args=(X, y))
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module"):
        minimize_module({"w": torch.zeros(2)}, net_loss)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        minimize_module(m, "mse")
    frozen = torch.nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter that requires grad"):
        minimize_module(frozen, net_loss, args=(X, y))


# --- ScipyOptimizer -----------------------------------------------------------------------------


def closure_for(model, optimizer, X, y, zero=None):
    calls = []

    def closure():
        calls.append(1)
        if zero is None:
            optimizer.zero_grad()
        else:
            zero()
        loss = mse(model, X, y)
        loss.backward()
        return loss

    return closure, calls


def test_optimizer_drop_in_for_lbfgs():
    X, y = data()
    m = linear()
    opt = ScipyOptimizer(m.parameters())  # the line that changes
    closure, calls = closure_for(m, opt, X, y)
    loss = opt.step(closure)
    np.testing.assert_allclose(flat(m), lstsq(X, y), atol=1e-5)
    assert isinstance(loss, torch.Tensor) and loss.dtype == F64 and loss.dim() == 0
    assert loss.item() == opt.last_result.fun == pytest.approx(mse(m, X, y).item())
    assert len(calls) == opt.last_result.nfev
    # .grad holds the gradient at the solution
    torch.testing.assert_close(m.weight.grad, opt.last_result.jac[0])
    assert float(m.weight.grad.abs().max()) < 1e-4


def test_optimizer_same_iterates_as_minimize_module():
    X, y = data()
    m1, m2 = linear(), linear()
    res = minimize_module(m1, mse, args=(X, y), method="L-BFGS-B")
    opt = ScipyOptimizer(m2.parameters(), method="L-BFGS-B")
    opt.step(closure_for(m2, opt, X, y)[0])
    assert opt.last_result.nfev == res.nfev and opt.last_result.nit == res.nit
    np.testing.assert_allclose(flat(m2), flat(m1), rtol=1e-10, atol=1e-12)


def test_optimizer_closure_zeroing_in_place():
    """A closure that zeroes .grad in place must not corrupt the gradient SciPy holds."""
    X, y = data()
    m1, m2 = linear(), linear()
    opt1 = ScipyOptimizer(m1.parameters())
    opt1.step(closure_for(m1, opt1, X, y)[0])
    opt2 = ScipyOptimizer(m2.parameters())
    opt2.step(closure_for(m2, opt2, X, y, zero=lambda: opt2.zero_grad(set_to_none=False))[0])
    assert opt2.last_result.nfev == opt1.last_result.nfev
    np.testing.assert_allclose(flat(m2), flat(m1), rtol=1e-10, atol=1e-12)


def test_optimizer_param_groups_with_bounds():
    X, y = data()
    m = linear()
    opt = ScipyOptimizer(
        [{"params": [m.weight], "ub": [2.5]}, {"params": [m.bias], "lb": -0.2}], ub=10.0
    )
    opt.step(closure_for(m, opt, X, y)[0])
    assert opt.last_result.success
    assert m.bias.item() == pytest.approx(-0.2, abs=1e-12)
    assert m.weight.max().item() == pytest.approx(2.5, abs=1e-12)
    assert opt.param_groups[1]["ub"] == 10.0  # the default applies where a group sets none


def test_optimizer_frozen_parameters_are_skipped():
    X, y = data()
    m = linear()
    m.bias.requires_grad_(False)
    bias = m.bias.detach().clone()
    opt = ScipyOptimizer(m.parameters())
    opt.step(closure_for(m, opt, X, y)[0])
    assert torch.equal(m.bias, bias) and list(opt.last_result.x) == [0]


def test_optimizer_state_dict_round_trip():
    X, y = data()
    m = linear()
    opt = ScipyOptimizer(
        [{"params": [m.weight]}, {"params": [m.bias], "lb": -0.2}],
        method="L-BFGS-B",
        options={"maxiter": 50},
    )
    opt.step(closure_for(m, opt, X, y)[0])
    saved = opt.state_dict()
    assert saved["state"]["scipy"]["steps"] == 1
    m2 = linear()
    other = ScipyOptimizer([{"params": [m2.weight]}, {"params": [m2.bias]}], method="BFGS")
    other.load_state_dict(saved)
    assert other.param_groups[1]["lb"] == -0.2
    assert other.param_groups[0]["method"] == "L-BFGS-B"
    assert other.param_groups[0]["options"] == {"maxiter": 50}
    assert other.state["scipy"]["nfev"] == opt.last_result.nfev
    other.step(closure_for(m2, other, X, y)[0])
    assert other.state["scipy"]["steps"] == 2
    assert m2.bias.item() == pytest.approx(-0.2, abs=1e-12)


def test_optimizer_exception_leaves_the_best_point():
    X, y = data()
    m = linear()
    opt = ScipyOptimizer(m.parameters())
    closure, calls = closure_for(m, opt, X, y)

    def failing():
        if len(calls) == 5:
            raise RuntimeError("boom")
        return closure()

    with pytest.raises(RuntimeError, match="boom") as info:
        opt.step(failing)
    best = info.value.dict_minimize_result
    assert torch.equal(m.bias.detach(), best.x[1])


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda m: ScipyOptimizer([{"params": [m.bias], "lr": 0.1}]), ValueError, r"\['lr'\]"),
        (
            lambda m: ScipyOptimizer([{"params": [m.bias], "method": "BFGS"}]),
            ValueError,
            "set once, in the constructor",
        ),
        (lambda m: ScipyOptimizer(m.parameters(), options=3), TypeError, "options must be"),
        (lambda m: ScipyOptimizer(m.parameters(), callback=3), TypeError, "callback must be"),
    ],
)
def test_optimizer_construction_errors(build, error, match):
    with pytest.raises(error, match=match):
        build(linear())


def test_optimizer_step_errors():
    X, y = data()
    m = linear()
    opt = ScipyOptimizer(m.parameters())
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step()
    bad = ScipyOptimizer([{"params": [m.weight, m.bias], "lb": [0.0]}])
    with pytest.raises(ValueError, match="list of 1 bounds for 2 parameters"):
        bad.step(closure_for(m, bad, X, y)[0])
    m.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to optimize"):
        opt.step(closure_for(m, opt, X, y)[0])


def test_optimizer_float32_and_callback():
    X, y = data()
    m = linear(dtype=torch.float32)
    seen = []
    opt = ScipyOptimizer(m.parameters(), options={"ftol": 1e-7}, callback=seen.append)
    loss = opt.step(closure_for(m, opt, X.float(), y.float())[0])
    assert loss.dtype == torch.float32 and m.weight.dtype == torch.float32
    assert seen and sorted(seen[0]) == [0, 1] and seen[0][0].dtype == torch.float32
    np.testing.assert_allclose(flat(m), lstsq(X, y), atol=1e-2)


def test_generic_minimize_unchanged_by_module_helpers():
    """The helpers are thin calls: the generic API on the same dict gives the same fit."""
    X, y = data()
    m = linear()
    x0 = {k: p.detach().clone() for k, p in m.named_parameters()}

    def loss(d, X, y):
        out = torch.nn.functional.linear(X, d["weight"], d["bias"])  # the module's arithmetic
        return ((out.squeeze(-1) - y) ** 2).mean()

    ref = minimize(loss, x0, args=(X, y), jac="autodiff", method="L-BFGS-B")
    res = minimize_module(m, mse, args=(X, y), method="L-BFGS-B")
    assert ref.nfev == res.nfev
    torch.testing.assert_close(res.x["weight"], ref.x["weight"], rtol=1e-10, atol=1e-12)


# --- examples/torch_module.py -------------------------------------------------------------------


def test_torch_module_example_main(capsys):
    mod = load_example("torch_module")
    assert mod.main(["--size", "30", "--maxiter", "60"]) == 0
    out = capsys.readouterr().out
    for how in ("minimize_module", "ScipyOptimizer", "torch.optim.LBFGS"):
        assert how in out


def test_torch_module_example_fits_agree_and_respect_the_bound():
    mod = load_example("torch_module")
    a = mod.fit_minimize_module(30, maxiter=60)
    b = mod.fit_scipy_optimizer(30, maxiter=60)
    assert abs(a.bias) <= mod.BIAS_BOUND and abs(b.bias) <= mod.BIAS_BOUND
    assert a.loss_after < 0.2 * a.loss_before
    assert b.evaluations == a.evaluations  # the same solve through both doors
    assert b.loss_after == pytest.approx(a.loss_after, rel=1e-8)
