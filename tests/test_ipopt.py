"""``minimize(..., method="ipopt")``: HS71 in every framework (multipliers against the KKT
conditions), the scalable problems of ``benchmarks/constrained_problems.py`` at small sizes
against hand-written cyipopt glue and their reference optima, bounds, callbacks, trace, time
limit, options and Ctrl-C. Skipped where the ``[ipopt]`` extra (cyipopt) is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dict_minimize import LinearConstraint, NonlinearConstraint, minimize

pytest.importorskip("cyipopt")
# torch.func.jvp registers its JIT decompositions through torch.jit.script, deprecated in 2.13
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)

from benchmarks import constrained_problems as C  # noqa: E402

HS71_X = np.array([1.0, 4.74299963, 3.82114998, 1.37940829])
HS71_F = 17.0140172891564


def _hs71(fw: Any) -> tuple[Any, dict, list, dict]:
    """HS71 over {"x": (4,)}: fun, minimize's keywords, the constraints, x0."""
    x0 = {"x": fw.tensor([1.0, 5.0, 5.0, 1.0], "float64")}

    def f(d: Any) -> Any:
        x = d["x"]
        return x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]

    def prod(d: Any) -> Any:
        x = d["x"]
        return x[0] * x[1] * x[2] * x[3]

    def sq(d: Any) -> Any:
        x = d["x"]
        return x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 - 40.0

    if fw.name != "numpy":
        cons = [NonlinearConstraint(prod, 25.0, np.inf), {"type": "eq", "fun": sq}]
        return f, {"jac": "autodiff"}, cons, x0

    def pair(d: Any) -> Any:
        return f(d), {"x": _grad_f(d["x"])}

    # NumPy: the objective's gradient by hand, the constraints' by callables
    cons = [
        NonlinearConstraint(prod, 25.0, np.inf, jac=lambda d: {"x": _jac_g(d["x"])[0]}),
        {"type": "eq", "fun": sq, "jac": lambda d: {"x": _jac_g(d["x"])[1]}},
    ]
    return pair, {"jac": True}, cons, x0


def _grad_f(x: np.ndarray) -> np.ndarray:
    return np.array(
        [x[3] * (2 * x[0] + x[1] + x[2]), x[0] * x[3], x[0] * x[3] + 1.0, x[0] * sum(x[:3])]
    )


def _jac_g(x: np.ndarray) -> np.ndarray:
    return np.array([np.prod(x) / x, 2.0 * x])


def test_hs71_every_framework_with_kkt(fw: Any) -> None:
    """HS71's optimum; the multipliers satisfy ∇f + Σ J_iᵀλ_i − z_L + z_U = 0 (Ipopt's signs:
    the active 'c >= 25' has λ <= 0)."""
    fun, kw, cons, x0 = _hs71(fw)
    res = minimize(fun, x0, method="ipopt", constraints=cons, bounds={"x": (1.0, 5.0)}, **kw)
    assert res.success, res.message
    assert res.status == 0
    x = fw.to_numpy(res.x["x"])
    assert fw.type_check(res.x["x"])
    np.testing.assert_allclose(x, HS71_X, rtol=1e-6)
    assert res.fun == pytest.approx(HS71_F, rel=1e-8)
    lam = [np.asarray(v) for v in res.multipliers]
    assert [v.shape for v in lam] == [(), ()]
    assert lam[0] < 0  # an active lower bound of g (SciPy's 'ineq' c >= 0 too): λ <= 0
    z_l, z_u = fw.to_numpy(res.z_L["x"]), fw.to_numpy(res.z_U["x"])
    assert z_l.min() >= 0 and z_u.min() >= 0
    J = _jac_g(x)
    kkt = _grad_f(x) + J[0] * lam[0] + J[1] * lam[1] - z_l + z_u
    np.testing.assert_allclose(kkt, 0.0, atol=1e-6)
    np.testing.assert_allclose(z_l[0], 1.08787, rtol=1e-4)  # x0 sits at its lower bound
    assert res.nit > 0 and res.nfev > 0


def _ours(prob: C.Problem, framework: str, sparse: bool, **kw: Any) -> Any:
    ops = C.ops_for(framework)
    con = NonlinearConstraint(
        prob.constraint(ops), prob.clb, prob.cub, jac_sparsity=prob.jac_sparsity if sparse else None
    )
    extra = (
        {"hess_sparsity": prob.hess_sparsity} if sparse and prob.hess_sparsity is not None else {}
    )
    return minimize(
        prob.objective(ops),
        C.to_framework(prob.x0, framework),
        jac="autodiff",
        method="ipopt",
        constraints=[con],
        bounds=prob.bounds,
        **extra,
        **kw,
    )


@pytest.mark.parametrize(
    ("name", "size", "rel", "framework", "sparse"),
    [
        ("chain", 12, 2e-2, "jax", True),
        ("chain", 12, 2e-2, "torch", False),
        ("cart", 12, 2e-2, "jax", False),
        ("cart", 12, 2e-2, "torch", True),
        ("electrons", 6, 1e-8, "jax", False),
        ("electrons", 5, 1e-8, "torch", False),
    ],
)
def test_scalable_problems_match_the_floor_and_reference(
    name: str, size: int, rel: float, framework: str, sparse: bool
) -> None:
    """Ours (sparse patterns or dense derivatives) reaches the hand-written glue's solution, and
    that solution is the reference optimum up to the discretisation error."""
    pytest.importorskip(framework)
    prob = C.PROBLEMS[name](size)
    x_floor, info = C.solve_floor(prob)
    assert info["status"] == 0
    assert info["obj_val"] == pytest.approx(prob.reference, rel=rel)
    if framework == "jax":
        import jax

        with jax.enable_x64(True):
            res = _ours(prob, framework, sparse)
            flat = np.concatenate([np.ravel(np.asarray(v)) for v in res.x.values()])
    else:
        res = _ours(prob, framework, sparse)
        flat = np.concatenate([v.detach().numpy().ravel() for v in res.x.values()])
    assert res.success, res.message
    assert res.fun == pytest.approx(info["obj_val"], rel=1e-9)
    np.testing.assert_allclose(flat, x_floor, atol=1e-6)
    assert res.nit == info["nit"]  # the same Ipopt run, to the iteration
    np.testing.assert_allclose(res.multipliers[0], info["mult_g"], rtol=1e-5, atol=1e-8)
    if sparse and name != "electrons":
        assert res.sparsity["constraints"][0] is not None


def test_discretisations_converge_to_the_references() -> None:
    """The floors themselves: finer grids move toward the continuous optima (O(h²), O(h))."""
    for make, sizes in ((C.chain, (20, 80)), (C.cart, (20, 80))):
        errs = [abs(C.solve_floor(make(N))[1]["obj_val"] - make(4).reference) for N in sizes]
        assert errs[1] < errs[0] / 3


def _small(fw_numpy: bool = True) -> tuple[Any, dict]:
    """A tiny NumPy problem: min (a-2)² + (b+1)² + a·b over a box, with a linear constraint."""

    def fun(d: Any) -> Any:
        a, b = d["a"], d["b"]
        value = (a - 2) ** 2 + np.sum((b + 1) ** 2) + a * np.sum(b)
        return float(value), {"a": 2 * (a - 2) + np.sum(b), "b": 2 * (b + 1) + a}

    return fun, {"a": np.array(0.5), "b": np.zeros(2)}


def test_bounds_as_dicts_and_linear_constraints() -> None:
    """lb_dict/ub_dict, bounds={key: (lo, hi)} and a LinearConstraint per key agree."""
    fun, x0 = _small()
    budget = LinearConstraint({"a": 1.0, "b": np.ones(2)}, lb=-np.inf, ub=0.5)
    one = minimize(fun, x0, method="ipopt", lb_dict={"a": 1.0}, ub_dict={"b": -0.5})
    two = minimize(fun, x0, method="ipopt", bounds={"a": (1.0, None), "b": (None, -0.5)})
    assert one.success and two.success
    assert one.fun == pytest.approx(two.fun, rel=1e-10)
    assert float(one.x["a"]) >= 1.0 - 1e-8 and np.all(one.x["b"] <= -0.5 + 1e-8)
    res = minimize(fun, x0, method="ipopt", constraints=budget, bounds={"a": (0.0, 3.0)})
    assert res.success
    assert float(res.x["a"]) + float(np.sum(res.x["b"])) <= 0.5 + 1e-7
    assert res.multipliers[0].shape == (1,)
    assert set(res.z_L) == {"a", "b"} and res.z_L["b"].shape == (2,)


def test_callback_trace_and_stop() -> None:
    """callback(intermediate_result) once per Ipopt iteration, Ipopt's fields included;
    StopIteration stops the run (success False, status 99); trace=True records the rows."""
    fun, x0 = _small()
    seen: list[Any] = []

    def callback(intermediate_result: Any) -> None:
        seen.append(intermediate_result)
        if intermediate_result.nit == 3:
            raise StopIteration

    res = minimize(fun, x0, method="ipopt", callback=callback, trace=True)
    assert not res.success and res.status == 99
    assert [r.nit for r in seen] == [1, 2, 3]
    assert set(seen[0].x) == {"a", "b"} and "inf_pr" in seen[0] and "mu" in seen[0]
    assert res.nit == 3
    assert len(res.trace) == 4  # the start and three iterations
    plain: list[Any] = []
    full = minimize(fun, x0, method="ipopt", callback=lambda x: plain.append(x))
    assert full.success and len(plain) == full.nit
    pytest.importorskip("tqdm")
    bar = minimize(fun, x0, method="ipopt", progress={"disable": True})
    assert bar.success and bar.nit == full.nit


def test_time_limit_stops_between_iterations() -> None:
    fun, x0 = _small()
    res = minimize(fun, x0, method="ipopt", time_limit=1e-9)
    assert not res.success
    assert "time limit" in res.message
    assert res.nit == 1


def test_options_pass_through_and_limited_memory() -> None:
    """Ipopt's options by name (SciPy's maxiter too); limited-memory needs no Hessian."""
    prob = C.chain(12)
    res = _ours(prob, "torch", False, options={"max_iter": 2})
    assert not res.success and res.status == -1  # Maximum_Iterations_Exceeded
    assert "Maximum number of iterations" in res.message
    res = _ours(prob, "torch", False, options={"maxiter": 2})
    assert res.status == -1 and res.nit == 2
    lm = _ours(prob, "torch", False, options={"hessian_approximation": "limited-memory"})
    assert lm.success
    assert lm.get("nhev", 0) == 0
    assert lm.fun == pytest.approx(C.solve_floor(prob)[1]["obj_val"], rel=1e-7)


def test_unknown_and_bad_options_are_errors_naming_them() -> None:
    fun, x0 = _small()
    with pytest.raises(ValueError, match=r"options\['no_such_option'\] = 1: Ipopt rejected it"):
        minimize(fun, x0, method="ipopt", options={"no_such_option": 1})
    with pytest.raises(ValueError, match=r"options\['max_iter'\] = 'many'"):
        minimize(fun, x0, method="ipopt", options={"max_iter": "many"})


def test_ctrl_c_keeps_the_best_feasible_point() -> None:
    """A KeyboardInterrupt (here raised in a callback, the iteration after the first feasible
    one) returns the best feasible iterate so far, with success False."""
    torch = pytest.importorskip("torch")
    prob = C.chain(12)
    feasible: list[tuple[float, Any]] = []

    def callback(intermediate_result: Any) -> None:
        stop = bool(feasible)
        if intermediate_result.inf_pr <= 1e-4:  # (Ipopt's constr_viol_tol)
            feasible.append((intermediate_result.fun, intermediate_result.x))
        if stop:  # the iterate of this iteration counts too
            raise KeyboardInterrupt

    res = _ours(prob, "torch", False, callback=callback)
    assert not res.success and "KeyboardInterrupt" in res.message
    best = min(feasible, key=lambda fx: fx[0])
    assert res.fun == pytest.approx(best[0], rel=1e-12)
    for key, value in best[1].items():
        np.testing.assert_array_equal(res.x[key].numpy(), value.numpy())
    ops = C.ops_for("torch")
    viol = prob.constraint(ops)({k: torch.as_tensor(v) for k, v in res.x.items()})
    assert float(viol.abs().max()) <= 1e-4


def test_multipliers_keep_the_constraint_output_shape() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with jax.enable_x64(True):
        x0 = {"w": jnp.ones((2, 3))}
        con = NonlinearConstraint(lambda d: d["w"] ** 2, 0.25, 4.0)
        res = minimize(
            lambda d: jnp.sum((d["w"] - 3.0) ** 2),
            x0,
            jac="autodiff",
            method="ipopt",
            constraints=con,
        )
    assert res.success
    assert res.multipliers[0].shape == (2, 3)
    np.testing.assert_allclose(np.asarray(res.x["w"]), 2.0, rtol=1e-7)
    assert np.all(res.multipliers[0] > 0)  # active upper bounds: λ >= 0


def test_hessp_is_ignored_with_scipys_warning() -> None:
    fun, x0 = _small()
    with pytest.warns(RuntimeWarning, match="does not use Hessian-vector product"):
        minimize(fun, x0, method="ipopt", hessp=lambda x, p: p)


def test_benchmark_machinery_and_figure_on_tiny_sizes(tmp_path: Any) -> None:
    """benchmarks/constrained.py's run, table and JSON, and the docs' figure drawn from it."""
    import importlib.util
    import json
    from pathlib import Path

    from benchmarks import constrained as B

    rows = [B.run_one("floor", "chain", 60), B.run_one("trust-constr-dense-jax", "cart", 30)]
    assert all(r["success"] for r in rows)
    assert rows[0]["nit"] > 0 and rows[0]["peak_mib"] > 0
    text = B.table({"rows": [*rows, {"contender": "x", "problem": "p", "n": 1, "timeout": 9}]})
    assert "| chain | 59 | floor |" in text and "> 9" in text
    out = tmp_path / "constrained.json"
    out.write_text(json.dumps({"machine": {}, "rows": rows}))
    hook = Path(__file__).resolve().parents[1] / "docs" / "_hooks" / "constrained_figures.py"
    spec = importlib.util.spec_from_file_location("constrained_figures", hook)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.time_vs_n(out)[:4] == b"\x89PNG"
