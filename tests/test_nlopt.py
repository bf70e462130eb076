"""NLopt's algorithms through ``minimize(method="nlopt:<algorithm>")``, the method registry, and
the "did you mean" for a misspelt method.

The NLopt tests skip cleanly without NLopt; the registry's flags are checked against SciPy's own
behaviour (the warnings it gives for what a method cannot use)."""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import warnings

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import dict_minimize
from dict_minimize import LinearConstraint, NonlinearConstraint, methods, minimize
from dict_minimize._problem.methods import ALIASES, BY_NAME, REGISTRY, names, resolve
from dict_minimize._solvers.minimize_steps import BOUNDED, GRADIENT_FREE, METHODS, TAKES_HESS
from dict_minimize.testfunctions import ALL
from tests.conftest import Framework, derandomized, get_framework

HAS_NLOPT = importlib.util.find_spec("nlopt") is not None
needs_nlopt = pytest.mark.skipif(not HAS_NLOPT, reason="NLopt is not installed")

LOCAL = [m.name for m in REGISTRY if m.family == "nlopt" and not m.needs_bounds]
#: (function, the largest f - f_min and distance to a minimum accepted)
FUNCTIONS = {"rosenbrock": 1e-6, "beale": 1e-6, "booth": 1e-6, "himmelblau": 1e-6}


def _shifted(d):
    """sum((x - 3)^2) over a dict of NumPy arrays, with its gradient."""
    x = d["x"]
    return float(((x - 3.0) ** 2).sum()), {"x": 2.0 * (x - 3.0)}


# --- NLopt's algorithms on the package's test functions --------------------------------------
@needs_nlopt
@pytest.mark.parametrize("method", LOCAL)
def test_local_algorithms_find_the_known_minima(method: str) -> None:
    for name, margin in FUNCTIONS.items():
        fn = ALL[name]
        if name == "rosenbrock" and method in ("nlopt:ln_cobyla", "nlopt:ld_mma", "nlopt:ld_ccsaq"):
            continue  # tens of thousands of evaluations down Rosenbrock's valley: too slow here
        # (a seed: PRAXIS draws random directions, and on Beale some seeds run off along its
        # plateau towards x -> inf)
        res = minimize(fn.objective(), fn.x0(), method=method, options={"seed": 1})
        if method == "nlopt:ln_newuoa_bound":
            margin = 1e-4  # NEWUOA with bounds stops further off (its trust region's floor)
        assert res.success, (method, name, res.message)
        assert res.fun - fn.f_min < margin**2 * 100, (method, name, res.fun)
        assert fn.distance(res.x) < margin * 100, (method, name, res.x)
        assert res.nfev >= res.nit >= 1
        gradient = BY_NAME[method].gradient
        assert (res.jac is not None) == gradient and ("njev" in res) == gradient


@needs_nlopt
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("nlopt:isres", {"maxeval": 4000, "seed": 1}),
        ("nlopt:crs2_lm", {"maxeval": 3000, "seed": 1}),
        ("nlopt:direct_l", {"maxeval": 3000}),
        ("nlopt:esch", {"maxeval": 6000, "seed": 2}),
    ],
)
def test_global_algorithms_search_the_box(method: str, options: dict) -> None:
    fn = ALL["rastrigin"]  # a lattice of local minima; the global one at the origin
    box = {"x": (-4.0, 5.0), "y": (-4.0, 5.0)}
    res = minimize(fn.objective(), fn.x0(), method=method, bounds=box, options=options)
    assert res.fun < 1.0, (method, res.fun)  # a local method from x0 ends near 12.9
    assert res.status == 5 and not res.success and "MAXEVAL_REACHED" in res.message


@needs_nlopt
def test_global_algorithms_need_a_box_and_a_budget() -> None:
    with pytest.raises(ValueError, match="global search over a box: give finite bounds"):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:isres", options={"maxeval": 10})
    with pytest.raises(ValueError, match=r"options\['maxeval'\] or options\['maxtime'\]"):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:isres", bounds={"x": (-1, 1)})


# --- bounds, dicts, frameworks ----------------------------------------------------------------
@needs_nlopt
@pytest.mark.parametrize("method", ["nlopt:bobyqa", "nlopt:LD_LBFGS", "nlopt:mma", "nlopt:sbplx"])
def test_bounds_as_dicts(method: str) -> None:
    x0 = {"x": np.zeros(3), "y": np.array(5.0)}
    x0_copy = {k: v.copy() for k, v in x0.items()}

    def fun(d):
        value, grad = _shifted(d)
        return value + float(d["y"] ** 2), {"x": grad["x"], "y": 2 * d["y"]}

    res = minimize(
        fun, x0, method=method, lb_dict={"x": [-1.0, 0.0, -1.0]}, ub_dict={"x": 2.0, "y": 9.0}
    )
    np.testing.assert_allclose(res.x["x"], [2.0, 2.0, 2.0], atol=1e-5)
    np.testing.assert_allclose(res.x["y"], 0.0, atol=1e-4)
    assert list(res.x) == ["x", "y"] and res.x["y"].shape == ()
    for k in x0:  # no input mutated
        np.testing.assert_array_equal(x0[k], x0_copy[k])
    # x0 outside the bounds is moved into them (NLopt refuses it), as L-BFGS-B does
    out = minimize(
        fun, {"x": np.full(3, 7.0), "y": np.array(1.0)}, method=method, bounds={"x": (-1, 2)}
    )
    np.testing.assert_allclose(out.x["x"], 2.0, atol=1e-5)


@needs_nlopt
def test_autodiff_in_every_framework(fw: Framework) -> None:
    # one gradient algorithm per framework (SLSQP's constraints run in every one below)
    method = {"numpy": "nlopt:tnewton", "torch": "nlopt:lbfgs", "jax": "nlopt:slsqp"}.get(
        fw.name, "nlopt:var2"
    )
    fn = ALL["rosenbrock"]
    fun = fn.objective() if fw.name == "numpy" else fn.objective(fw.name)
    jac = True if fw.name == "numpy" else "autodiff"
    res = minimize(fun, fn.x0(fw.name), method=method, jac=jac)
    assert res.success and fn.distance(res.x) < 1e-5, res.message
    assert fw.type_check(res.x["x"]) and fw.type_check(res.jac["y"])
    assert res.njev >= 1


@needs_nlopt
def test_finite_differences_for_gradient_algorithms() -> None:
    value = lambda d: _shifted(d)[0]  # noqa: E731
    for jac in (None, "2-point", "3-point"):
        res = minimize(value, {"x": np.zeros(2)}, method="nlopt:lbfgs", jac=jac)
        np.testing.assert_allclose(res.x["x"], 3.0, atol=1e-5)
        assert res.nfev > res.njev * 2  # each gradient costs evaluations


# --- constraints ------------------------------------------------------------------------------
def _sum(t):
    """The sum of a tensor of any framework (TensorFlow's tensors have no ``.sum``)."""
    if hasattr(t, "sum"):
        return t.sum()
    import tensorflow as tf

    return tf.reduce_sum(t)


def _constrained(fw: Framework):
    """min sum((x - 3)^2) s.t. sum(x) <= 1 (SciPy's c >= 0 form) and x[0] = x[1]; autodiff
    for the objective and the constraints' Jacobians outside NumPy."""
    if fw.name == "numpy":
        fun, jac = _shifted, True
    else:
        fun, jac = (lambda d: _sum((d["x"] - 3.0) ** 2)), "autodiff"
    ineq = {"type": "ineq", "fun": lambda d: 1.0 - _sum(d["x"])}
    eq = NonlinearConstraint(lambda d: d["x"][0] - d["x"][1], 0.0, 0.0)
    return fun, jac, [ineq, eq]


def _check_against_slsqp(fw: Framework, method: str) -> None:
    fun, jac, cons = _constrained(fw)
    x0 = {"x": fw.tensor([0.0, 0.5, 0.0])}
    ref = minimize(fun, x0, method="SLSQP", jac=jac, constraints=cons)
    res = minimize(fun, x0, method=method, jac=jac, constraints=cons)
    assert res.success, res.message
    np.testing.assert_allclose(fw.to_numpy(res.x["x"]), fw.to_numpy(ref.x["x"]), atol=1e-5)
    assert res.nfev_constraints > 0


@needs_nlopt
def test_constraints_match_slsqp(fw: Framework) -> None:
    """NLopt's SLSQP, with autodiff Jacobians of the constraints outside NumPy."""
    _check_against_slsqp(fw, "nlopt:slsqp")


@needs_nlopt
def test_cobyla_constraints_match_slsqp() -> None:
    """COBYLA evaluates values only (NumPy: the frameworks add nothing to check)."""
    _check_against_slsqp(get_framework("numpy"), "nlopt:cobyla")


@needs_nlopt
@pytest.mark.parametrize("method", ["nlopt:mma", "nlopt:ccsaq", "nlopt:slsqp", "nlopt:cobyla"])
def test_inequality_forms_and_signs(method: str) -> None:
    """SciPy's c >= 0, lb <= c <= ub (both sides) and LinearConstraint, against SLSQP."""
    cons = [
        {"type": "ineq", "fun": lambda d: 1.0 - d["x"].sum()},  # sum(x) <= 1
        NonlinearConstraint(lambda d: d["x"][0] - d["x"][1], -0.1, 0.1),  # |x0 - x1| <= 0.1
        LinearConstraint({"x": np.array([0.0, 0.0, 1.0])}, lb=-1.0, ub=0.2),  # x2 <= 0.2
    ]
    x0 = {"x": np.zeros(3)}
    ref = minimize(_shifted, x0, method="SLSQP", constraints=cons)
    res = minimize(_shifted, x0, method=method, constraints=cons, options={"xtol_rel": 1e-10})
    assert res.success, res.message
    np.testing.assert_allclose(res.x["x"], ref.x["x"], atol=1e-4)
    np.testing.assert_allclose(ref.x["x"], [0.4, 0.4, 0.2], atol=1e-6)


@needs_nlopt
def test_isres_with_an_inequality() -> None:
    cons = {"type": "ineq", "fun": lambda d: 1.0 - d["x"].sum()}
    res = minimize(
        _shifted,
        {"x": np.zeros(2)},
        method="nlopt:isres",
        constraints=cons,
        bounds={"x": (-2.0, 2.0)},
        options={"maxeval": 6000, "seed": 3},
    )
    np.testing.assert_allclose(res.x["x"], [0.5, 0.5], atol=0.05)


@needs_nlopt
def test_constraint_kinds_an_algorithm_cannot_take() -> None:
    eq = {"type": "eq", "fun": lambda d: d["x"][0] - d["x"][1]}
    with pytest.raises(
        ValueError, match=r"'nlopt:ld_mma' does not take equality constraints.*ld_slsqp"
    ):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:mma", constraints=eq)
    with pytest.warns(RuntimeWarning, match="Method nlopt:ln_bobyqa cannot handle constraints"):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:bobyqa", constraints=eq)
    with pytest.warns(RuntimeWarning, match="Method nlopt:ln_newuoa cannot handle bounds"):
        res = minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:newuoa", bounds={"x": (0, 1)})
    np.testing.assert_allclose(res.x["x"], 3.0, atol=1e-5)  # ignored, as SciPy does


# --- options, result codes, callbacks ---------------------------------------------------------
@needs_nlopt
def test_options_pass_through() -> None:
    fn = ALL["rosenbrock"]
    options = {"maxeval": 7}
    res = minimize(fn.objective(), fn.x0(), method="nlopt:bobyqa", options=options)
    assert options == {"maxeval": 7}  # the defaults never land in the user's dict
    assert res.nfev == 7 and res.status == 5 and not res.success
    assert res.message.startswith("NLopt: MAXEVAL_REACHED")
    res = minimize(fn.objective(), fn.x0(), method="nlopt:lbfgs", options={"stopval": 1.0})
    assert res.status == 2 and res.success and res.fun <= 1.0
    loose = minimize(fn.objective(), fn.x0(), method="nlopt:sbplx", options={"xtol_rel": 1e-2})
    tight = minimize(fn.objective(), fn.x0(), method="nlopt:sbplx", options={"xtol_rel": 1e-10})
    assert loose.nfev < tight.nfev and tight.fun < loose.fun
    res = minimize(
        fn.objective(),
        fn.x0(),
        method="nlopt:ld_mma",
        options={"params": {"inner_maxeval": 5}, "ftol_abs": 1e-12, "maxeval": 500},
    )
    assert res.nfev <= 500
    step = minimize(
        _shifted,
        {"x": np.zeros(2)},
        method="nlopt:neldermead",
        options={"initial_step": 3.0, "xtol_abs": 1e-9},
    )
    np.testing.assert_allclose(step.x["x"], 3.0, atol=1e-6)
    loose = minimize(fn.objective(), fn.x0(), method="nlopt:sbplx", tol=1e-3)
    default = minimize(fn.objective(), fn.x0(), method="nlopt:sbplx")
    assert loose.success and loose.nfev < default.nfev


@needs_nlopt
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"maxiter": 5}, r"unknown option 'maxiter' .*did you mean 'maxeval'"),
        ({"xtol_rell": 1e-3}, r"unknown option 'xtol_rell' .*did you mean 'xtol_rel'"),
        (
            {"bogus": 1},
            r"unknown option 'bogus' for method 'nlopt:ld_lbfgs'; NLopt's methods take xtol_rel",
        ),
    ],
)
def test_unknown_options(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:lbfgs", options=options)


@needs_nlopt
def test_roundoff_limited_is_reported() -> None:
    def wrong(d):  # a gradient that is not the value's: the line search cannot make progress
        value, _ = _shifted(d)
        return value, {"x": np.ones(2)}

    res = minimize(wrong, {"x": np.zeros(2)}, method="nlopt:slsqp")
    assert not res.success and res.status < 0 and res.message.startswith("NLopt: ")


@needs_nlopt
def test_forced_stop_is_a_result() -> None:
    """NLopt's own way to stop from the objective: raising nlopt.ForcedStop."""
    import nlopt

    calls = []

    def fun(d):
        calls.append(1)
        if len(calls) == 6:
            raise nlopt.ForcedStop
        return _shifted(d)

    res = minimize(fun, {"x": np.zeros(2)}, method="nlopt:sbplx")
    assert res.status == -5 and not res.success and "FORCED_STOP" in res.message
    assert res.fun < 18.0 and len(calls) == 6


@needs_nlopt
def test_nlopt_before_2_10_raises_its_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``set_exceptions_enabled`` (NLopt < 2.10) NLopt raises for a failure code: the
    result still carries the code, with the best point seen."""
    import nlopt

    monkeypatch.delattr(nlopt.opt, "set_exceptions_enabled")

    def wrong(d):
        return _shifted(d)[0], {"x": np.ones(2)}

    res = minimize(wrong, {"x": np.zeros(2)}, method="nlopt:slsqp")
    assert res.status < 0 and not res.success and res.fun == 18.0
    res = minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:lbfgs")
    assert res.success and np.allclose(res.x["x"], 3.0)

    def boom(d):
        raise RuntimeError("boom at x0")

    with pytest.raises(RuntimeError, match="boom at x0"):
        minimize(boom, {"x": np.zeros(2)}, method="nlopt:lbfgs")


@needs_nlopt
def test_callback_trace_and_iterations() -> None:
    """An iteration is an evaluation after x0 that improves on the best value so far."""
    seen, values = [], []

    def callback(intermediate_result):
        seen.append(intermediate_result.x["x"].copy())
        values.append(intermediate_result.fun)

    res = minimize(
        _shifted, {"x": np.zeros(2)}, method="nlopt:bobyqa", callback=callback, trace=True
    )
    assert len(seen) == res.nit == len(res.trace) - 1 >= 1
    assert all(b < a for a, b in itertools.pairwise(values))
    assert res.trace.fun[0] == 18.0 and res.trace.fun[-1] == res.fun
    old_style = []
    minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:lbfgs", callback=old_style.append)
    assert old_style and isinstance(old_style[0], dict)


@needs_nlopt
def test_stop_time_limit_and_exceptions() -> None:
    def stop(intermediate_result):
        if intermediate_result.fun < 10:
            raise StopIteration

    res = minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:neldermead", callback=stop)
    assert res.status == 99 and not res.success and res.fun < 10
    res = minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:sbplx", time_limit=1e-9)
    assert res.status == 99 and "time limit" in res.message and res.nit == 1

    def boom(d):
        if d["x"][0] > 1:
            raise RuntimeError("boom")
        return _shifted(d)

    with pytest.raises(RuntimeError, match="boom") as info:
        minimize(boom, {"x": np.zeros(2)}, method="nlopt:lbfgs")
    assert info.value.dict_minimize_result.fun <= 18.0


@needs_nlopt
@pytest.mark.parametrize(
    "method", ["nlopt:cobyla", "nlopt:bobyqa", "nlopt:lbfgs", "nlopt:neldermead"]
)
def test_nonfinite_points(method: str) -> None:
    """A NaN region counts as worse than every finite point; the run ends at a finite point."""

    def fun(d):
        if d["x"][0] > 2.5:
            return float("nan"), {"x": np.full(2, np.nan)}
        return _shifted(d)

    with pytest.warns(RuntimeWarning, match="were not finite"):
        res = minimize(fun, {"x": np.zeros(2)}, method=method)
    assert np.isfinite(res.fun) and res.fun < 18.0 and res.x["x"][0] <= 2.5
    assert res.nonfinite_count > 0
    with pytest.raises(dict_minimize.NonFiniteError):
        minimize(fun, {"x": np.zeros(2)}, method=method, nonfinite="raise")


@needs_nlopt
def test_hessians_are_not_used() -> None:
    with pytest.warns(RuntimeWarning, match=r"does not use Hessian information \(hess\)"):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:lbfgs", hess=lambda d: np.eye(2) * 2)


def test_missing_nlopt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nlopt", None)  # import nlopt raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'dict_minimize\[nlopt\]'"):
        minimize(_shifted, {"x": np.zeros(2)}, method="nlopt:bobyqa")


# --- the registry -----------------------------------------------------------------------------
def test_registry_lists_every_scipy_method() -> None:
    scipy_names = [m.name for m in methods() if m.family == "scipy"]
    assert tuple(scipy_names) == METHODS == names("scipy")
    # SciPy's own list of minimize methods (its docstring's "method" entry)
    documented = re.findall(r"- '([\w-]+)' *:ref:", scipy.optimize.minimize.__doc__ or "")
    assert {d.lower() for d in documented} == set(METHODS)
    assert {m.name for m in REGISTRY if not m.gradient} == GRADIENT_FREE
    assert {m.name for m in REGISTRY if m.bounds} == BOUNDED
    assert {m.name for m in REGISTRY if m.hess and m.family == "scipy"} == TAKES_HESS
    assert "ipopt" in BY_NAME and BY_NAME["ipopt"].extra == "ipopt"


@pytest.mark.parametrize("method", METHODS)
def test_scipy_flags_agree_with_scipy(method: str) -> None:
    """SciPy warns for what a method cannot use: the registry's flags say the same."""
    spec = BY_NAME[method]
    x0 = np.array([0.5, 0.5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scipy.optimize.minimize(
            lambda x: float(x @ x),
            x0,
            method=method,
            jac=lambda x: 2 * x,
            hess=lambda x: 2 * np.eye(2),
            bounds=[(0, 1), (0, 1)],
            constraints=[
                {"type": "ineq", "fun": lambda x: x[0]},
                {"type": "eq", "fun": lambda x: x[0] - x[1]},
            ],
            options={"maxiter": 5},
        )
    said = " ".join(str(w.message) for w in caught)
    assert ("does not use gradient information" in said) == (not spec.gradient), said
    assert ("does not use Hessian information" in said) == (not spec.hess), said
    assert ("cannot handle bounds" in said) == (not spec.bounds), said
    assert ("cannot handle constraints" in said) == (not spec.constraints), said
    if spec.hessp or not spec.gradient:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scipy.optimize.minimize(
                lambda x: float(x @ x),
                x0,
                method=method,
                jac=lambda x: 2 * x,
                hessp=lambda x, p: 2 * p,
                options={"maxiter": 2},
            )
        said = " ".join(str(w.message) for w in caught)
        assert ("does not use Hessian-vector product" in said) == (not spec.hessp), said


@needs_nlopt
def test_nlopt_flags_agree_with_nlopt() -> None:
    import nlopt

    for m in REGISTRY:
        if m.family != "nlopt":
            continue
        algorithm = getattr(nlopt, m.name.removeprefix("nlopt:").upper())
        described = nlopt.algorithm_name(algorithm)
        assert m.gradient == ("derivative" in described and "no-derivative" not in described)
        assert ("(global" in described) <= m.needs_bounds and ("(local" in described) <= (
            not m.needs_bounds
        ), described
        for kind in ("eq", "ineq"):
            opt = nlopt.opt(algorithm, 2)
            add = opt.add_equality_constraint if kind == "eq" else opt.add_inequality_constraint
            try:
                add(lambda x, grad: 0.0, 1e-8)
                takes = True
            except nlopt.invalid_argument:
                takes = False
            assert takes == (kind in m.constraints), (m.name, kind)


def test_methods_table_prints() -> None:
    table = methods()
    text = str(table)
    lines = text.splitlines()
    assert len(lines) == len(REGISTRY) + 1 and lines[0].split()[:3] == [
        "method",
        "gradient",
        "bounds",
    ]
    assert "nlopt:ld_mma" in text and "[nlopt]" in text and "trust-constr" in text
    assert all(isinstance(m, dict_minimize.Method) for m in table)
    assert BY_NAME["l-bfgs-b"].installed and str(BY_NAME["l-bfgs-b"]).startswith("l-bfgs-b")
    assert BY_NAME["nlopt:ln_bobyqa"].installed == HAS_NLOPT
    assert repr(table) == f"MethodTable({len(REGISTRY)} methods)"


# --- names and "did you mean" -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("L-BFGS-B", "l-bfgs-b"),
        ("nlopt:bobyqa", "nlopt:ln_bobyqa"),
        ("NLOPT:LN_BOBYQA", "nlopt:ln_bobyqa"),
        ("nlopt:LD_MMA", "nlopt:ld_mma"),
        ("nlopt:nlopt_ld_slsqp", "nlopt:ld_slsqp"),
        ("nlopt:tnewton_precond_restart", "nlopt:ld_tnewton_precond_restart"),
        ("nlopt:isres", "nlopt:gn_isres"),
        ("ipopt", "ipopt"),
    ],
)
def test_spellings(spelling: str, name: str) -> None:
    assert resolve(spelling) == name
    assert all(resolve(alias) == target for alias, target in ALIASES.items())


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("lbfgsb", "'l-bfgs-b'"),
        ("L-BFGS", "'l-bfgs-b'"),
        ("nelder_mead", "'nelder-mead'"),
        ("trust_constr", "'trust-constr'"),
        ("nlopt:bobyqua", "'nlopt:bobyqa'"),
        ("nlopt:ld_mmma", "'nlopt:ld_mma'"),
        ("mma", "'nlopt:mma'"),
        ("slsqp2", "'slsqp'"),
    ],
)
def test_did_you_mean(typo: str, suggestion: str) -> None:
    with pytest.raises(
        ValueError, match=f"unknown method '{typo}'; did you mean [^?]*{re.escape(suggestion)}"
    ):
        minimize(_shifted, {"x": np.zeros(2)}, method=typo)


def test_no_guess_for_a_name_far_from_all() -> None:
    with pytest.raises(
        ValueError, match=r"unknown method 'adam'; expected one of nelder-mead.*methods\(\)"
    ):
        minimize(_shifted, {"x": np.zeros(2)}, method="adam")


@derandomized("NLOPT_EXAMPLES", 60)
@given(
    st.sampled_from(sorted(ALIASES)),
    st.integers(0, 2**40 - 1),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_:", max_size=3),
)
def test_any_case_resolves_and_suggestions_are_methods(alias, upper, noise) -> None:
    """Every accepted spelling in any case gives its method; a misspelt one is a ValueError
    whose suggestions are all spellings that resolve."""
    cased = "".join(c.upper() if upper >> i & 1 else c for i, c in enumerate(alias))
    assert resolve(cased) == ALIASES[alias]
    typo = alias + noise
    if typo.lower() in ALIASES:
        return
    with pytest.raises(ValueError, match="unknown method") as info:
        resolve(typo)
    message = str(info.value)
    if "did you mean" in message:
        guesses = re.findall(r"'([^']+)'", message.split("?")[0])[1:]
        assert guesses and all(resolve(g) in BY_NAME for g in guesses)
