"""dict_minimize.compare: SciPy's methods and the frameworks' optimizers at equal budgets.

Framework optimizers are checked against a hand-written loop with the same optimizer and the
same framework operations (so their rows agree bit for bit), SciPy's rows against
``minimize(trace=True)`` run directly with the same budget; counts are asserted exactly, values
with margins, and the published observations (docs/guide/comparing.md) with wide margins.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from dict_minimize import OptimizeResult, minimize
from dict_minimize._compare.compare import compare, compare_table
from dict_minimize._problem.trace import Trace
from dict_minimize.testfunctions import ALL

ROSEN = ALL["rosenbrock"]

#: (framework, optimizer) pairs that the shared tests run; optimizers are built lazily
FRAMEWORK_OPTIMIZERS = [
    ("torch", "SGD"),
    ("torch", "Adam"),
    ("torch", "AdamW"),
    ("torch", "LBFGS"),
    ("jax", "adam"),
    ("jax", "sgd"),
    ("tensorflow", "Adam"),
    ("tensorflow", "SGD"),
]
MODULES = {"torch": "torch", "jax": "optax", "tensorflow": "keras"}


def optimizer(framework: str, which: str) -> Any:
    """The optimizer spec ``which`` of ``framework`` (skips when it is not installed)."""
    mod = pytest.importorskip(MODULES[framework])
    if framework == "torch":
        hyper = {"SGD": {"lr": 1e-3}, "Adam": {"lr": 0.1}, "AdamW": {"lr": 0.1}, "LBFGS": {}}
        return getattr(mod.optim, which), hyper[which]
    if framework == "jax":
        return getattr(mod, which), {"learning_rate": 0.1 if which == "adam" else 1e-3}
    return getattr(mod.optimizers, which), {"learning_rate": 0.1 if which == "Adam" else 1e-3}


def to_np(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().cpu()
    return np.asarray(t, dtype=np.float64)


def check_framework_rows(tr: Trace, budget: int, name: str) -> None:
    """The row rule of a framework optimizer's run that spent its whole budget."""
    assert tr.label == name and tr.result is None
    assert len(tr) == budget + 1
    assert tr.njev.tolist() == [*range(1, budget + 1), budget]
    assert tr.nfev.tolist() == list(range(1, budget + 2))
    assert tr.nit.tolist() == list(range(budget + 1))
    assert np.isfinite(tr.grad_norm[:-1]).all() and math.isnan(tr.grad_norm[-1])
    assert (np.diff(tr.time) >= 0).all() and tr.time[0] >= 0


# -- the row rule, x0 and the framework optimizers -------------------------------------------


@pytest.mark.parametrize(("framework", "which"), FRAMEWORK_OPTIMIZERS)
def test_framework_rows_budget_and_start(framework: str, which: str) -> None:
    """budget + 1 rows with the counts of the row rule; row 0 is f(x0); x kept for 2 scalars."""
    spec = optimizer(framework, which)
    budget = 6
    x0 = ROSEN.x0(framework)
    before = {k: to_np(v).copy() for k, v in x0.items()}
    traces = compare(
        ROSEN.objective(framework), x0, {"run": spec, "L-BFGS-B": "L-BFGS-B"}, max_grad_evals=budget
    )
    tr = traces["run"]
    check_framework_rows(tr, budget, "run")
    f0 = float(to_np(ROSEN.objective(framework)(x0)))
    assert tr.fun[0] == pytest.approx(f0, rel=1e-6)
    assert traces["L-BFGS-B"].fun[0] == pytest.approx(f0, rel=1e-6)
    assert tr.x is not None and len(tr.x) == budget + 1
    assert {k: float(to_np(v)) for k, v in tr.x[0].items()} == pytest.approx({"x": -1.2, "y": 1.0})
    # rows hold copies: the first point is still x0 although the run moved on
    assert to_np(tr.x[0]["x"]) != to_np(tr.x[-1]["x"])
    assert tr.fun[-1] == pytest.approx(float(to_np(ROSEN.objective(framework)(tr.x[-1]))), 1e-6)
    # x0 untouched by either kind of run
    for k, v in x0.items():
        np.testing.assert_array_equal(to_np(v), before[k])
    if framework == "torch":
        assert all(not v.requires_grad and v.grad is None for v in x0.values())
    assert list(traces) == ["run", "L-BFGS-B"]


def hand_torch(fun: Callable, x0: dict, cls: type, hyper: dict, budget: int) -> list[float]:
    """What a user writes: a closure with backward, one step per evaluation; the values at the
    start of each step, then the final point's."""
    import torch

    params = {k: v.detach().clone().requires_grad_(True) for k, v in x0.items()}
    opt = cls(list(params.values()), **hyper)
    values: list[float] = []

    def closure() -> Any:
        opt.zero_grad()
        loss = fun(params)
        loss.backward()
        values.append(float(loss.detach()))
        return loss

    for _ in range(budget):
        opt.step(closure)
    assert len(values) == budget  # one closure call per step
    with torch.no_grad():
        values.append(float(fun(params)))
    return values


@pytest.mark.parametrize("which", ["Adam", "LBFGS"])
def test_torch_matches_hand_written_loop(which: str) -> None:
    torch = pytest.importorskip("torch")
    cls, hyper = {"Adam": (torch.optim.Adam, {"lr": 0.1}), "LBFGS": (torch.optim.LBFGS, {})}[which]
    budget = 25
    fun, x0 = ROSEN.objective("torch"), ROSEN.x0("torch")
    tr = compare(fun, x0, {which: (cls, hyper)}, max_grad_evals=budget)[which]
    # one closure call per step (LBFGS with max_iter=1): row k is step k's value
    expected = hand_torch(
        fun, x0, cls, {"max_iter": 1, **hyper} if which == "LBFGS" else hyper, budget
    )
    np.testing.assert_array_equal(tr.fun, np.array(expected))


def test_optax_matches_hand_written_loop() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    budget = 12
    fun, x0 = ROSEN.objective("jax"), ROSEN.x0("jax")
    tx = optax.adam(0.1)
    traces = compare(
        fun,
        x0,
        {"built": tx, "factory": (optax.adam, {"learning_rate": 0.1})},
        max_grad_evals=budget,
    )
    vg, value = jax.jit(jax.value_and_grad(fun)), jax.jit(fun)

    @jax.jit
    def update(g: Any, s: Any, p: Any) -> Any:
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    params, state, values = dict(x0), tx.init(x0), []
    for _ in range(budget):
        f, g = vg(params)
        values.append(float(f))
        params, state = update(g, state, params)
    values.append(float(value(params)))
    for tr in traces.values():
        np.testing.assert_array_equal(tr.fun, np.array(values))
        check_framework_rows(tr, budget, tr.label)
        assert float(tr.x[-1]["x"]) == float(params["x"])


def line_searches(optax: Any) -> dict[str, Any]:
    return {
        "lbfgs": optax.lbfgs(),
        "zoom": optax.chain(optax.sgd(1.0), optax.scale_by_zoom_linesearch(15)),
        "backtracking": optax.chain(
            optax.sgd(1.0), optax.scale_by_backtracking_linesearch(15, store_grad=True)
        ),
        "backtracking, no grad kept": optax.chain(
            optax.sgd(1.0), optax.scale_by_backtracking_linesearch(15)
        ),
    }


@pytest.mark.parametrize("which", ["lbfgs", "zoom", "backtracking", "backtracking, no grad kept"])
def test_optax_line_search_matches_optax_documented_loop(which: str) -> None:
    """optax.lbfgs() and the line searches: rows follow optax's documented loop
    (value_and_grad_from_state, update with value, grad and value_fn), and every evaluation of
    the objective the line search makes is counted."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    fn = ALL["booth"]
    budget = 25
    calls = [0]

    def fun(p: Any) -> Any:
        jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
        return fn.objective("jax")(p)

    x0 = fn.x0("jax")
    tr = compare(fun, x0, {which: line_searches(optax)[which]}, max_grad_evals=budget)[which]
    assert tr.njev[-1] <= budget and len(tr) >= 3
    assert tr.nit.tolist() == list(range(len(tr)))
    if which != "backtracking, no grad kept":
        assert tr.nfev.tolist() == tr.njev.tolist()

    solver = line_searches(optax)[which]  # the documented loop, on a fresh transformation
    state, params, rows = solver.init(x0), dict(x0), []
    kept = optax.tree.get(state, "grad") is not None
    value_and_grad = optax.value_and_grad_from_state(fun) if kept else jax.value_and_grad(fun)

    # compiled once (unjitted, every update would compile its line search's loop again)
    @jax.jit
    def evaluate(params: Any, state: Any) -> Any:
        return value_and_grad(params, state=state) if kept else value_and_grad(params)

    @jax.jit
    def update(params: Any, state: Any, value: Any, grad: Any) -> Any:
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return optax.apply_updates(params, updates), state

    calls[0] = 0
    for _ in range(len(tr)):
        value, grad = evaluate(params, state)
        rows.append((float(value), float(params["x"]), float(params["y"])))
        jax.effects_barrier()
        rows[-1] += (calls[0],)  # the objective's evaluations so far, line searches included
        params, state = update(params, state, value, grad)
    expected = np.array(rows)
    assert tr.nfev.tolist() == expected[:, 3].astype(int).tolist()
    np.testing.assert_allclose(tr.fun, expected[:, 0], rtol=1e-4, atol=1e-5)
    got = np.array([[float(x["x"]), float(x["y"])] for x in tr.x])
    np.testing.assert_allclose(got, expected[:, 1:3], rtol=1e-4, atol=1e-5)
    assert tr.fun[-1] < 0.5 * tr.fun[0]  # on its way to booth's minimum, 0 at (1, 3)


def test_optax_line_search_refusals() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    fun, x0 = ROSEN.objective("jax"), ROSEN.x0("jax")
    with pytest.raises(TypeError, match=r"optimizer 'L' runs a line search .*lb_dict"):
        compare(fun, x0, {"L": optax.lbfgs()}, max_grad_evals=5, lb_dict={"x": -2.0})
    pair = jax.value_and_grad(fun)
    with pytest.raises(TypeError, match=r"optimizer 'L' runs a line search .*jac=True"):
        compare(pair, x0, {"L": (optax.lbfgs, {})}, max_grad_evals=5, jac=True)


def test_keras_matches_hand_written_loop() -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    budget = 5
    fun, x0 = ROSEN.objective("tensorflow"), ROSEN.x0("tensorflow")
    tr = compare(
        fun, x0, {"Adam": (keras.optimizers.Adam, {"learning_rate": 0.1})}, max_grad_evals=budget
    )["Adam"]
    vs = {k: tf.Variable(v) for k, v in x0.items()}
    opt = keras.optimizers.Adam(learning_rate=0.1)
    values = []
    for _ in range(budget):
        with tf.GradientTape() as tape:
            loss = fun(vs)
        grads = tape.gradient(loss, list(vs.values()))
        values.append(float(loss))
        opt.apply_gradients(zip(grads, list(vs.values()), strict=True))
    values.append(float(fun(vs)))
    np.testing.assert_array_equal(tr.fun, np.array(values))


# -- SciPy's methods -------------------------------------------------------------------------

#: what compare adds to each method's options (SciPy's own caps)
CAPS = {"l-bfgs-b": "maxfun", "tnc": "maxfun", "nelder-mead": "maxfev", "powell": "maxfev"}
GRADIENT_FREE = {"nelder-mead", "powell", "cobyla", "cobyqa"}


@pytest.mark.parametrize(
    "method", ["L-BFGS-B", "bfgs", "cg", "tnc", "slsqp", "trust-constr", "nelder-mead", "powell"]
)
def test_scipy_rows_agree_with_minimize(method: str) -> None:
    """The rows within the budget are minimize(trace=True)'s, run with the same stop."""
    budget = 12
    meth = method.lower()
    count = "nfev" if meth in GRADIENT_FREE else "njev"
    tr = compare(ROSEN.objective(), ROSEN.x0(), {"m": method}, max_grad_evals=budget)["m"]

    def stop(intermediate_result: Any) -> None:
        if intermediate_result[count] >= budget:
            raise StopIteration

    res = minimize(
        ROSEN.objective(),
        ROSEN.x0(),
        method=meth,
        trace=True,
        callback=stop,
        options={CAPS.get(meth, "maxiter"): budget},
    )
    ref = res.trace
    keep = getattr(ref, count) <= budget
    assert 1 <= len(tr) == int(keep.sum())
    assert getattr(tr, count)[-1] <= budget
    for col in ("fun", "grad_norm", "nfev", "njev", "nit"):
        np.testing.assert_array_equal(getattr(tr, col), getattr(ref, col)[keep])
    assert isinstance(tr.result, OptimizeResult) and tr.result.fun == res.fun
    assert tr.label == "m" and tr.fun[0] == ROSEN(-1.2, 1.0) and tr.nfev[0] == 1


def test_scipy_extra_keywords_and_user_callback() -> None:
    """(method, {minimize keywords}): options merge with the cap, the callback runs too."""
    seen: list[int] = []
    tr = compare(
        ROSEN.objective(),
        ROSEN.x0(),
        {
            "m": ("L-BFGS-B", {"options": {"maxcor": 3}, "callback": lambda x: seen.append(1)}),
            "r": ("BFGS", {"callback": lambda intermediate_result: seen.append(2)}),
        },
        max_grad_evals=15,
    )
    assert tr["m"].njev[-1] <= 15 and tr["r"].njev[-1] <= 15
    assert seen.count(1) >= len(tr["m"]) - 1 and seen.count(2) >= len(tr["r"]) - 1
    scale = compare(
        lambda d, s: (s * float(d["a"] @ d["a"]), {"a": 2 * s * d["a"]}),
        {"a": np.ones(3)},
        {"L": "l-bfgs-b"},
        max_grad_evals=10,
        args=(3.0,),
    )["L"]
    assert scale.fun[0] == 9.0 and scale.fun[-1] < 1e-12


# -- keep_x, bounds, jac, nesting, divergence ------------------------------------------------


def test_keep_x_rule() -> None:
    def quad(d: dict) -> tuple[float, dict]:
        return float(d["w"] @ d["w"]), {"w": 2 * d["w"]}

    def run(n: int, keep: bool | None) -> Trace:
        return compare(quad, {"w": np.ones(n)}, {"L": "L-BFGS-B"}, max_grad_evals=5, keep_x=keep)[
            "L"
        ]

    assert run(100, None).x is not None and run(101, None).x is None
    assert run(101, True).x is not None and run(2, False).x is None
    kept = run(3, None).x
    assert kept is not None and isinstance(kept[0]["w"], np.ndarray)


def test_keep_x_rule_torch() -> None:
    torch = pytest.importorskip("torch")
    x0 = {"w": torch.ones(101, dtype=torch.float64)}
    fun = lambda d: (d["w"] ** 2).sum()  # noqa: E731
    adam = (torch.optim.Adam, {"lr": 0.1})
    assert compare(fun, x0, {"A": adam}, max_grad_evals=3)["A"].x is None
    kept = compare(fun, x0, {"A": adam}, max_grad_evals=3, keep_x=True)["A"].x
    assert kept is not None and kept[0]["w"].shape == (101,) and not kept[0]["w"].requires_grad


@pytest.mark.parametrize(
    ("framework", "which"), [("torch", "Adam"), ("jax", "adam"), ("tensorflow", "Adam")]
)
def test_bounds_project_framework_optimizers(framework: str, which: str) -> None:
    """x is clipped into the bounds at the start and after every step; SciPy's honour them."""
    spec = optimizer(framework, which)
    traces = compare(
        ROSEN.objective(framework),
        ROSEN.x0(framework),
        {"fw": spec, "L": "L-BFGS-B"},
        max_grad_evals=8,
        lb_dict={"x": -1.0},
        ub_dict={"y": 1.02},
    )
    for tr in traces.values():
        xs = np.array([[float(to_np(p["x"])), float(to_np(p["y"]))] for p in tr.x])
        assert (xs[:, 0] >= -1.0).all() and (xs[:, 1] <= 1.02).all()
    assert float(to_np(traces["fw"].x[0]["x"])) == -1.0  # x0 clipped, as L-BFGS-B does
    assert traces["fw"].fun[0] == pytest.approx(ROSEN(-1.0, 1.0), rel=1e-6)


def test_torch_jac_true_and_nested_x0() -> None:
    """A torch objective that returns its own gradient dict (jac=True); nested x0."""
    torch = pytest.importorskip("torch")
    fun = ROSEN.objective("torch")

    def pair(d: dict) -> tuple[Any, dict]:
        value = fun(d)
        gx, gy = torch.autograd.grad(value, [d["x"], d["y"]])
        return value.detach(), {"x": gx, "y": gy}

    adam = (torch.optim.Adam, {"lr": 0.1})
    auto = compare(fun, ROSEN.x0("torch"), {"A": adam, "L": "L-BFGS-B"}, max_grad_evals=10)
    own = compare(
        pair, ROSEN.x0("torch"), {"A": adam, "L": "L-BFGS-B"}, max_grad_evals=10, jac=True
    )
    for name in ("A", "L"):
        np.testing.assert_allclose(own[name].fun, auto[name].fun, rtol=1e-12)
    nested = {"w": {"a": torch.ones(2, dtype=torch.float64)}, "b": torch.zeros(3)}
    tr = compare(
        lambda d: (d["w"]["a"] ** 2).sum() + ((d["b"] - 1.0) ** 2).sum(),
        nested,
        {"A": adam, "L": "L-BFGS-B"},
        max_grad_evals=4,
    )
    check_framework_rows(tr["A"], 4, "A")
    assert tr["A"].x[-1]["w"]["a"].shape == (2,) and tr["A"].fun[0] == 5.0


@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow"])
def test_divergence_is_recorded_and_ends_the_run(framework: str) -> None:
    """SGD with a large step on Rosenbrock overflows: the rows keep inf/NaN, nothing raises."""
    if framework == "torch":
        torch = pytest.importorskip("torch")
        spec: Any = (torch.optim.SGD, {"lr": 0.1})
    elif framework == "jax":
        optax = pytest.importorskip("optax")
        spec = (optax.sgd, {"learning_rate": 0.1})
    else:
        keras = pytest.importorskip("keras")
        spec = (keras.optimizers.SGD, {"learning_rate": 0.1})
    budget = 40
    tr = compare(
        ROSEN.objective(framework), ROSEN.x0(framework), {"SGD": spec}, max_grad_evals=budget
    )["SGD"]
    assert 2 <= len(tr) < budget + 1
    last = tr.row(-1)
    assert not (math.isfinite(last["fun"]) and math.isfinite(last["grad_norm"]))
    assert np.isfinite(tr.fun[:-1]).all() and tr.njev[-1] == len(tr)


def test_torch_lbfgs_line_search_stays_in_budget() -> None:
    """LBFGS with a line search calls the closure many times a step: the budget still holds,
    and a step the budget cuts short is undone (the last row repeats its start point)."""
    torch = pytest.importorskip("torch")
    budget = 9
    hyper = {"max_iter": 5, "line_search_fn": "strong_wolfe"}
    tr = compare(
        ROSEN.objective("torch"),
        ROSEN.x0("torch"),
        {"L": (torch.optim.LBFGS, hyper)},
        max_grad_evals=budget,
    )["L"]
    assert tr.njev[-1] == budget and tr.nfev[-1] == budget + 1
    assert (np.diff(tr.njev) >= 0).all() and len(tr) < budget + 1
    assert tr.nit.tolist() == sorted(tr.nit.tolist())
    final = float(ROSEN.objective("torch")(tr.x[-1]))
    assert tr.fun[-1] == pytest.approx(final, rel=1e-12) and tr.fun[-1] < tr.fun[0]
    # Beale, one iteration a step: step 1's line search runs past a budget of 3
    fn = ALL["beale"]
    cut = compare(
        fn.objective("torch"),
        fn.x0("torch"),
        {"L": (torch.optim.LBFGS, {"line_search_fn": "strong_wolfe"})},
        max_grad_evals=3,
    )["L"]
    assert cut.nit.tolist() == [0, 1, 1] and cut.njev.tolist() == [1, 3, 3]
    assert cut.fun[1] < cut.fun[0] and cut.fun[2] == cut.fun[1]
    assert all(torch.equal(cut.x[2][k], cut.x[1][k]) for k in ("x", "y"))


# -- errors ----------------------------------------------------------------------------------


def test_errors_name_the_optimizer() -> None:
    fun, x0 = ROSEN.objective(), ROSEN.x0()
    ok = {"L": "L-BFGS-B"}
    for bad in (0, -3):
        with pytest.raises(ValueError, match="max_grad_evals must be a positive int"):
            compare(fun, x0, ok, max_grad_evals=bad)
    for bad in (1.5, True, "10"):
        with pytest.raises(TypeError, match="max_grad_evals must be a positive int"):
            compare(fun, x0, ok, max_grad_evals=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="optimizers is empty"):
        compare(fun, x0, {}, max_grad_evals=5)
    with pytest.raises(TypeError, match="optimizers must be a dict"):
        compare(fun, x0, ["L-BFGS-B"], max_grad_evals=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"optimizer 'mine': unknown SciPy method 'lbfgs'"):
        compare(fun, x0, {"mine": "lbfgs"}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'L': the minimize keywords must be a dict"):
        compare(fun, x0, {"L": ("L-BFGS-B", 3)}, max_grad_evals=5)
    with pytest.raises(ValueError, match=r"optimizer 'L': 'jac' is set by compare"):
        compare(fun, x0, {"L": ("L-BFGS-B", {"jac": "2-point"})}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'L': 'maxiter' is not a keyword"):
        compare(fun, x0, {"L": ("L-BFGS-B", {"maxiter": 3})}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'x' is a int; expected a SciPy method name"):
        compare(fun, x0, {"x": 3}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'x' is a tuple of 3 items"):
        compare(fun, x0, {"x": ("bfgs", {}, {})}, max_grad_evals=5)
    with pytest.raises(TypeError, match="optimizer names must be strings"):
        compare(fun, x0, {1: "bfgs"}, max_grad_evals=5)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="jac must be None"):
        compare(fun, x0, ok, max_grad_evals=5, jac="2-point")
    with pytest.raises(ValueError, match="jac='autodiff' needs x0 in a framework"):
        compare(fun, x0, ok, max_grad_evals=5, jac="autodiff")
    with pytest.raises(TypeError, match="keep_x must be None"):
        compare(fun, x0, ok, max_grad_evals=5, keep_x="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x0 must be a dict"):
        compare(fun, np.ones(2), ok, max_grad_evals=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lb_dict\['x'\] > ub_dict\['x'\]"):
        compare(fun, x0, ok, max_grad_evals=5, lb_dict={"x": 1.0}, ub_dict={"x": 0.0})
    with pytest.raises(TypeError, match="fun must be callable"):
        compare(None, x0, ok, max_grad_evals=5)  # type: ignore[arg-type]


def test_errors_framework_mismatch_and_hyperparameters() -> None:
    torch = pytest.importorskip("torch")
    adam = (torch.optim.Adam, {"lr": 0.1})
    with pytest.raises(
        TypeError,
        match=r"optimizer 'A' is a torch.optim optimizer, which needs "
        r"x0 in PyTorch; x0 holds NumPy tensors: NumPy has no automatic",
    ):
        compare(ROSEN.objective(), ROSEN.x0(), {"A": adam}, max_grad_evals=5)
    fun, x0 = ROSEN.objective("torch"), ROSEN.x0("torch")
    with pytest.raises(TypeError, match=r"optimizer 'A': the hyperparameters must be a dict"):
        compare(fun, x0, {"A": (torch.optim.Adam, 0.1)}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'A': Adam with hyperparameters \{'rate'"):
        compare(fun, x0, {"A": (torch.optim.Adam, {"rate": 0.1})}, max_grad_evals=5)
    built = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    with pytest.raises(TypeError, match=r"optimizer 'A' is an optimizer already built"):
        compare(fun, x0, {"A": built}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"fun returned a float"):
        compare(lambda d: 1.0, x0, {"A": adam}, max_grad_evals=5)
    # a bare class is the class with its default hyperparameters
    tr = compare(fun, x0, {"A": torch.optim.Adam}, max_grad_evals=3)["A"]
    check_framework_rows(tr, 3, "A")
    # what fun raises propagates, with a note naming the optimizer
    with pytest.raises(ZeroDivisionError) as info:
        compare(lambda d: 1 / 0, x0, {"A": adam}, max_grad_evals=3)
    assert "optimizer 'A'" in "".join(getattr(info.value, "__notes__", []))
    optax = pytest.importorskip("optax")
    with pytest.raises(
        TypeError,
        match=r"optimizer 'o' is an optax optimizer, which needs x0 "
        r"in JAX; x0 holds PyTorch tensors: use a torch.optim.Optimizer class",
    ):
        compare(fun, x0, {"o": (optax.adam, {"learning_rate": 0.1})}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'o' is an optax optimizer"):
        compare(fun, x0, {"o": optax.adam(0.1)}, max_grad_evals=5)
    jx0 = ROSEN.x0("jax")
    with pytest.raises(TypeError, match=r"GradientTransformation already built, which takes no"):
        compare(ROSEN.objective("jax"), jx0, {"o": (optax.adam(0.1), {"a": 1})}, max_grad_evals=5)
    with pytest.raises(TypeError, match=r"optimizer 'f': a callable is taken as an optax"):
        compare(ROSEN.objective("jax"), jx0, {"f": (lambda: 3, {})}, max_grad_evals=5)
    with pytest.raises(
        TypeError,
        match=r"optimizer 'A' is a torch.optim optimizer, which needs "
        r"x0 in PyTorch; x0 holds JAX tensors: use an optax optimizer",
    ):
        compare(ROSEN.objective("jax"), jx0, {"A": adam}, max_grad_evals=5)


# -- what the comparison shows (docs/guide/comparing.md) -------------------------------------


def test_rosenbrock_lbfgsb_needs_far_fewer_gradients_than_adam() -> None:
    """From (-1.2, 1): L-BFGS-B reaches f < 1e-6 in well under 200 gradient evaluations
    (42 measured); Adam at learning rates 0.01 to 1 does not get below 1e-3 in 200."""
    torch = pytest.importorskip("torch")
    lrs = (0.01, 0.1, 0.3, 1.0)
    traces = compare(
        ROSEN.objective("torch"),
        ROSEN.x0("torch"),
        {"L-BFGS-B": "L-BFGS-B", **{f"Adam {lr}": (torch.optim.Adam, {"lr": lr}) for lr in lrs}},
        max_grad_evals=200,
    )
    hit = traces["L-BFGS-B"].evals_to(1e-6)
    assert hit is not None and hit <= 100
    for lr in lrs:
        assert traces[f"Adam {lr}"].best()["fun"] > 1e-3, lr
    table = compare_table(traces, target=1e-6, f_min=0.0)
    assert table.splitlines()[2].startswith("L-BFGS-B") and table.count(" - ") >= len(lrs)


def test_counter_examples_rastrigin_and_flower() -> None:
    """Rastrigin from (-2, 3.5): L-BFGS-B stays in its start's local minimum (12.93), Adam
    with lr=1 hops to a lower one (8.95 measured). The flower from (20, 20): L-BFGS-B gets
    within 1e-6 of the infimum -1, Adam oscillates around the origin, never within 1e-3."""
    torch = pytest.importorskip("torch")
    fn = ALL["rastrigin"]
    traces = compare(
        fn.objective("torch"),
        fn.x0("torch"),
        {"L-BFGS-B": "L-BFGS-B", "Adam": (torch.optim.Adam, {"lr": 1.0})},
        max_grad_evals=200,
    )
    assert traces["L-BFGS-B"].fun[-1] == pytest.approx(12.93, abs=0.01)
    assert traces["Adam"].fun[-1] < 11.0
    fn = ALL["flower"]
    lrs = (0.1, 0.3, 1.0)
    traces = compare(
        fn.objective("torch"),
        fn.x0("torch"),
        {"L-BFGS-B": "L-BFGS-B", **{f"Adam {lr}": (torch.optim.Adam, {"lr": lr}) for lr in lrs}},
        max_grad_evals=200,
    )
    assert traces["L-BFGS-B"].fun[-1] < fn.f_min + 1e-6
    for lr in lrs:
        assert traces[f"Adam {lr}"].best()["fun"] > fn.f_min + 1e-3, lr


# -- the table -------------------------------------------------------------------------------


def test_compare_table() -> None:
    fn = ALL["booth"]
    traces = compare(
        fn.objective(),
        fn.x0(),
        {"L-BFGS-B": "L-BFGS-B", "Nelder-Mead": "nelder-mead"},
        max_grad_evals=30,
    )
    made = Trace(fun=[5.0, math.inf], nfev=[1, 2], njev=[1, 2], label="hand")
    by_hand = {**traces, "hand": made}
    text = compare_table(by_hand, target=1e-6, f_min=0.0)
    lines = text.splitlines()
    assert lines[0].split("  ")[0].strip() == "optimizer" and set(lines[1]) == {"-", " "}
    assert "final - f_min" in lines[0] and "evals to 1e-06" in lines[0]
    # fixed width: every column starts where its header does
    starts = [
        i for i in range(len(lines[1])) if lines[1][i] == "-" and (i == 0 or lines[1][i - 1] == " ")
    ]
    for line in lines[2:5]:
        assert all(line[s - 1] == " " for s in starts[1:]), line
    nm = next(line for line in lines if line.startswith("Nelder-Mead"))
    assert "*" in nm and lines[-1].startswith("* function evaluations")
    hand = next(line for line in lines if line.startswith("hand"))
    assert hand.split()[1:4] == ["inf", "5", "2"] and " - " in hand  # the gaps to f_min = 0
    shifted = compare_table({"t": Trace(fun=[5.0, 2.5, 3.0], nfev=[1, 2, 3])}, f_min=2.0)
    assert shifted.splitlines()[2].split()[1:3] == ["1", "0.5"]  # final - f_min, best - f_min
    plain = compare_table(traces).splitlines()[0]
    assert "f_min" not in plain and "evals to" not in plain
    # a minimize result with a trace goes in as it is; anything else is refused
    res = minimize(fn.objective(), fn.x0(), method="bfgs", trace=True)
    assert compare_table({"BFGS": res}).splitlines()[2].startswith("BFGS")
    with pytest.raises(TypeError, match=r"traces\['x'\] is a int"):
        compare_table({"x": 3})
    with pytest.raises(TypeError, match="traces must be a dict"):
        compare_table([made])  # type: ignore[arg-type]


def test_import_touches_no_framework() -> None:
    code = (
        "import sys, dict_minimize._compare.compare; "
        "bad = [m for m in ('torch', 'jax', 'tensorflow', 'optax', 'keras', 'matplotlib') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_copies_of_x0_in_rows_are_independent() -> None:
    """Rows of a NumPy run are copies: changing one changes neither x0 nor other rows."""
    x0 = ROSEN.x0()
    keep = copy.deepcopy(x0)
    tr = compare(ROSEN.objective(), x0, {"L": "L-BFGS-B"}, max_grad_evals=10)["L"]
    tr.x[0]["x"][...] = 99.0
    assert float(x0["x"]) == float(keep["x"]) and float(tr.x[1]["x"]) != 99.0
