"""Traces, progress bars and time limits of the generic minimize (and the model helpers).

Trace rows are checked against plain SciPy on the flat problem with the same arithmetic
(``flat_objective``): the same per-iteration values, points and evaluation counts, exactly.
"""

from __future__ import annotations

import io
import math
import re
import sys
import time
from collections import OrderedDict

import numpy as np
import pytest
import scipy.optimize
import threadpoolctl

import dict_minimize
from dict_minimize import Trace, minimize
from tests.conftest import Framework, flat_objective

X0 = np.array([-1.2, 1.0, 0.5])


def rosen(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(scipy.optimize.rosen(x)), scipy.optimize.rosen_der(x)


def rosen_d(d: dict) -> tuple[float, dict]:
    f, g = rosen(d["x"])
    return f, {"x": g}


def split(fw: Framework, x: np.ndarray) -> dict:
    """x as {"a": (2,), "b": ()} in ``fw``."""
    return {"a": fw.tensor(x[:2]), "b": fw.tensor(x[2])}


def flat_of(fw: Framework, d: dict) -> np.ndarray:
    return np.concatenate([fw.to_numpy(d["a"]).ravel(), fw.to_numpy(d["b"]).ravel()])


def reference(method: str, **kwargs) -> dict:
    """Plain SciPy on the flat problem: per-iteration (fun, x, nfev, njev), starting row 0."""
    counts = {"nfev": 0, "njev": 0}
    uses_grad = method.lower() not in ("nelder-mead", "powell", "cobyla", "cobyqa")

    def fun(x):
        counts["nfev"] += 1
        counts["njev"] += uses_grad
        f, g = rosen(x)
        return (f, g) if uses_grad else f

    rows = {"fun": [float(rosen(X0)[0])], "x": [X0.copy()], "nfev": [1], "njev": [int(uses_grad)]}

    def callback(intermediate_result):
        rows["fun"].append(float(intermediate_result.fun))
        rows["x"].append(np.array(intermediate_result.x))
        rows["nfev"].append(counts["nfev"])
        rows["njev"].append(counts["njev"])

    # under one BLAS thread, as minimize's default threads="auto" runs a problem this small
    # (SLSQP's last bits depend on the BLAS thread count)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        res = scipy.optimize.minimize(
            fun, X0.copy(), method=method, jac=uses_grad or None, callback=callback, **kwargs
        )
    rows["res"] = res
    return rows


GRADIENT_METHODS = ["L-BFGS-B", "BFGS", "CG", "SLSQP"]


@pytest.mark.parametrize("method", [*GRADIENT_METHODS, "Nelder-Mead", "Powell"])
def test_rows_match_scipy_on_the_flat_problem(fw: Framework, method: str) -> None:
    ref = reference(method)
    res = minimize(flat_objective(fw, rosen), split(fw, X0), method=method, trace="x")
    tr = res.trace
    assert isinstance(tr, Trace) and tr.label == method.lower()
    assert len(tr) == len(ref["fun"])
    np.testing.assert_array_equal(tr.fun, ref["fun"])
    np.testing.assert_array_equal(tr.nfev, ref["nfev"])
    np.testing.assert_array_equal(tr.njev, ref["njev"])
    np.testing.assert_array_equal(tr.nit, np.arange(len(tr)))
    assert tr.x is not None
    for row, want in zip(tr.x, ref["x"], strict=True):
        assert list(row) == ["a", "b"] and fw.type_check(row["a"])
        np.testing.assert_array_equal(flat_of(fw, row), want)
    assert tr.fun[-1] == res.fun and tr.nfev[-1] == res.nfev
    times = tr.time
    assert np.all(np.diff(times) >= 0) and times[0] >= 0


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_grad_norm_is_the_gradient_at_each_row(fw: Framework, method: str) -> None:
    res = minimize(flat_objective(fw, rosen), split(fw, X0), method=method, trace="x")
    tr = res.trace
    assert tr.x is not None
    want = [np.linalg.norm(rosen(flat_of(fw, row))[1]) for row in tr.x]
    np.testing.assert_allclose(tr.grad_norm, want, rtol=1e-12)


@pytest.mark.parametrize("method", ["Nelder-Mead", "Powell", "COBYLA"])
def test_gradient_free_rows_have_no_gradient_norm(method: str) -> None:
    res = minimize(lambda d: rosen(d["x"])[0], {"x": X0}, method=method, jac=None, trace=True)
    assert len(res.trace) > 2 and np.isnan(res.trace.grad_norm).all()
    assert (res.trace.njev == 0).all()


def test_autodiff_and_second_order_rows_count_hessian_runs() -> None:
    torch = pytest.importorskip("torch")

    def fun(d):
        return torch.sum(100 * (d["x"][1:] - d["x"][:-1] ** 2) ** 2 + (1 - d["x"][:-1]) ** 2)

    x0 = {"x": torch.tensor(X0, dtype=torch.float64)}
    for method in ("Newton-CG", "trust-krylov", "trust-exact"):
        res = minimize(fun, x0, jac="autodiff", method=method, trace=True)
        tr = res.trace
        assert res.success and len(tr) == res.nit + 1, method
        assert not np.isnan(tr.grad_norm).any() and tr.grad_norm[-1] < 1e-4
        assert tr.fun[-1] == res.fun and tr.njev[-1] == res.njev_ran  # (evaluations that ran)


def test_jac_callable_rows_carry_the_gradient_norm() -> None:
    res = minimize(
        lambda d: rosen(d["x"])[0],
        {"x": X0},
        jac=lambda d: {"x": rosen(d["x"])[1]},
        method="BFGS",
        trace=True,
    )
    assert not np.isnan(res.trace.grad_norm).any()
    assert res.trace.njev[0] == 1 and res.trace.nfev[0] == 1


def test_no_trace_by_default_and_no_extra_evaluations() -> None:
    calls = []

    def fun(d):
        calls.append(1)
        return rosen_d(d)

    plain = minimize(fun, {"x": X0}, method="L-BFGS-B")
    n_plain = len(calls)
    calls.clear()
    traced = minimize(fun, {"x": X0}, method="L-BFGS-B", trace=True, progress=False)
    assert "trace" not in plain and len(calls) == n_plain == traced.nfev


def test_trace_rows_are_copies() -> None:
    res = minimize(rosen_d, {"x": X0}, method="BFGS", trace="x")
    rows = res.trace.x
    assert rows is not None
    np.testing.assert_array_equal(rows[0]["x"], X0)
    second = rows[1]["x"].copy()
    rows[0]["x"][:] = 99.0  # the caller may write the arrays it gets
    np.testing.assert_array_equal(rows[1]["x"], second)
    assert not np.shares_memory(rows[-1]["x"], res.x["x"])


def test_nested_x0_rows_keep_the_nesting() -> None:
    x0 = {"layer": [{"w": X0[:2]}, (X0[2:],)]}

    def fun(d):
        x = np.concatenate([d["layer"][0]["w"], d["layer"][1][0]])
        f, g = rosen(x)
        return f, {"layer": [{"w": g[:2]}, (g[2:],)]}

    res = minimize(fun, x0, trace="x")
    assert res.trace.x is not None
    row = res.trace.x[-1]
    assert isinstance(row["layer"], list) and isinstance(row["layer"][1], tuple)
    np.testing.assert_array_equal(row["layer"][0]["w"], res.x["layer"][0]["w"])


def test_beside_a_user_callback_of_either_form() -> None:
    seen = []

    def cb(intermediate_result):
        seen.append((intermediate_result.nit, intermediate_result.nfev, intermediate_result.njev))

    res = minimize(rosen_d, {"x": X0}, method="L-BFGS-B", callback=cb, trace=True)
    tr = res.trace
    assert [s[0] for s in seen] == list(tr.nit[1:])
    assert [s[1] for s in seen] == list(tr.nfev[1:]) and [s[2] for s in seen] == list(tr.njev[1:])
    points = []
    res2 = minimize(rosen_d, {"x": X0}, method="L-BFGS-B", callback=points.append, trace=True)
    assert len(points) == len(res2.trace) - 1
    np.testing.assert_array_equal(res2.trace.fun, tr.fun)


@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "COBYQA"])
def test_user_stop_ends_the_trace_at_that_row(method: str) -> None:
    def cb(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration

    res = minimize(rosen_d, {"x": X0}, method=method, callback=cb, trace="x")
    assert res.success is (method == "COBYQA") and len(res.trace) == 4  # COBYQA: SciPy's status 3
    assert res.trace.fun[-1] == res.fun
    assert res.trace.x is not None
    np.testing.assert_array_equal(res.trace.x[-1]["x"], res.x["x"])


def test_a_result_that_is_not_the_last_iterate_gets_a_final_row() -> None:
    # COBYLA returns the best point it evaluated, which need not be its last iterate
    res = minimize(
        lambda d: rosen(d["x"])[0],
        {"x": X0},
        method="COBYLA",
        jac=None,
        trace="x",
        options={"maxiter": 60},
    )
    tr = res.trace
    assert tr.fun[-1] == res.fun
    assert tr.x is not None
    np.testing.assert_array_equal(tr.x[-1]["x"], res.x["x"])
    assert np.all(np.diff(tr.nit) == 1)


def test_interrupted_and_failing_runs_keep_their_trace() -> None:
    calls = []

    def fun(d):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return rosen_d(d)

    res = minimize(fun, {"x": X0}, method="BFGS", trace=True)
    assert res.status == -1 and len(res.trace) >= 2 and res.trace.nfev[-1] <= 11

    calls.clear()

    def broken(d):
        calls.append(1)
        if len(calls) == 12:
            raise RuntimeError("boom")
        return rosen_d(d)

    with pytest.raises(RuntimeError, match="boom") as info:
        minimize(broken, {"x": X0}, method="BFGS", trace=True)
    best = info.value.dict_minimize_result  # type: ignore[attr-defined]
    assert len(best.trace) >= 2 and best.trace.fun[0] == rosen(X0)[0]


# --- time limit -----------------------------------------------------------------------------


def slow_rosen(d):
    time.sleep(0.005)
    return rosen_d(d)


@pytest.mark.parametrize(
    "method", ["L-BFGS-B", "BFGS", "TNC", "SLSQP", "trust-constr", "Nelder-Mead", "COBYQA"]
)
def test_time_limit_stops_cleanly_at_an_iterate(method: str) -> None:
    full = minimize(rosen_d, {"x": X0}, method=method)
    limit = 0.05
    res = minimize(slow_rosen, {"x": X0}, method=method, time_limit=limit, trace="x")
    assert not res.success
    assert res.message.startswith(f"time limit of {limit:g} s reached after {res.nit} iterations")
    assert res.nit < full.nit  # each evaluation sleeps: the full run takes > 10x the limit
    tr = res.trace
    assert tr.time[-1] >= limit and (tr.time[:-1] < limit).all()
    assert tr.fun[-1] == res.fun and tr.x is not None
    np.testing.assert_array_equal(tr.x[-1]["x"], res.x["x"])


def test_time_limit_without_trace_and_beside_a_callback() -> None:
    seen = []
    res = minimize(slow_rosen, {"x": X0}, method="L-BFGS-B", time_limit=0.03, callback=seen.append)
    assert not res.success and "time limit" in res.message and "trace" not in res
    assert len(seen) == res.nit


def test_a_run_that_ends_before_the_limit_is_untouched() -> None:
    a = minimize(rosen_d, {"x": X0}, method="L-BFGS-B")
    b = minimize(rosen_d, {"x": X0}, method="L-BFGS-B", time_limit=600)
    assert b.success and b.message == a.message and b.nfev == a.nfev


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, "positive"),
        (-1.0, ValueError, "positive"),
        (math.nan, ValueError, "positive"),
        ("10", TypeError, "number of seconds"),
        (True, TypeError, "number of seconds"),
    ],
)
def test_bad_time_limit(value, error, match) -> None:
    with pytest.raises(error, match=match):
        minimize(rosen_d, {"x": X0}, time_limit=value)


@pytest.mark.parametrize("value", ["y", 1, "X"])
def test_bad_trace_argument(value) -> None:
    with pytest.raises(ValueError, match="trace must be False, True or 'x'"):
        minimize(rosen_d, {"x": X0}, trace=value)


# --- progress bar ---------------------------------------------------------------------------


def test_progress_bar_counts_iterations() -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    res = minimize(
        rosen_d,
        {"x": X0},
        method="BFGS",
        progress={"file": out, "desc": "fit", "mininterval": 0},
    )
    text = out.getvalue()
    assert res.success and "fit" in text and f"{res.nit}it" in text and "nfev=" in text


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "Nelder-Mead"])
def test_progress_bar_total_is_maxiter(method: str) -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    res = minimize(
        rosen_d,
        {"x": X0},
        method=method,
        options={"maxiter": 500},
        trace=True,
        progress={"file": out, "mininterval": 0, "miniters": 1},
    )
    counts = [int(m) for m in re.findall(r"(\d+)/500 ", out.getvalue())]
    # drawn against the total of 500 from the start, one step per iteration (a trace row)
    assert counts[0] == 0 and counts[-1] == len(res.trace) - 1 > 10
    assert counts == sorted(counts)


def test_progress_bar_without_maxiter_has_no_total() -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    res = minimize(rosen_d, {"x": X0}, method="BFGS", progress={"file": out, "mininterval": 0})
    assert f"{res.nit}it" in out.getvalue() and "/" not in out.getvalue().split("[")[0]


def test_progress_bar_default_writes_to_stderr(capsys) -> None:
    pytest.importorskip("tqdm")
    minimize(rosen_d, {"x": X0}, method="L-BFGS-B", progress=True)
    assert "l-bfgs-b" in capsys.readouterr().err


def test_progress_needs_tqdm(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"dict_minimize\[progress\]"):
        minimize(rosen_d, {"x": X0}, progress=True)


def test_bad_progress_argument() -> None:
    with pytest.raises(TypeError, match="progress must be"):
        minimize(rosen_d, {"x": X0}, progress="yes")


# --- entry points ---------------------------------------------------------------------------


def test_the_dropin_api_keeps_the_original_signature() -> None:
    from dict_minimize import numpy_api

    with pytest.raises(TypeError):
        numpy_api.minimize(  # type: ignore[call-arg]
            rosen_d, OrderedDict(x=X0), trace=True
        )


def test_model_helpers_take_trace_and_time_limit() -> None:
    torch = pytest.importorskip("torch")
    from dict_minimize.torch_api import ScipyOptimizer, minimize_module

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1).double()
    x = torch.randn(20, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)

    def loss(m):
        return torch.mean((m(x) - y) ** 2)

    res = minimize_module(net, loss, trace="x", time_limit=600)
    assert res.success and len(res.trace) == res.nit + 1
    assert res.trace.x is not None and sorted(res.trace.x[-1]) == ["bias", "weight"]

    net2 = torch.nn.Linear(3, 1).double()
    opt = ScipyOptimizer(net2.parameters(), trace=True)

    def closure():
        opt.zero_grad()
        value = loss(net2)
        value.backward()
        return value

    opt.step(closure)
    assert opt.last_result is not None and len(opt.last_result.trace) == opt.last_result.nit + 1
    assert "trace" not in str(opt.state_dict()["param_groups"])


def test_keras_helper_takes_trace() -> None:
    tf = pytest.importorskip("tensorflow")
    from dict_minimize.tensorflow_api import minimize_model

    w = tf.Variable(np.zeros(2), name="w")

    class M(tf.Module):
        def __init__(self):
            self.w = w

    def loss(m):
        return tf.reduce_sum((m.w - tf.constant([1.0, 2.0], tf.float64)) ** 2)

    res = minimize_model(M(), loss, trace=True)
    assert res.success and len(res.trace) == res.nit + 1 and res.trace.fun[0] == 5.0


# --- the Trace object -------------------------------------------------------------------------


def test_trace_object_by_hand() -> None:
    tr = Trace(fun=[3.0, 1.0, 2.0], nfev=[1, 3, 5], njev=[1, 3, 5], label="demo")
    assert len(tr) == 3 and tr.label == "demo" and tr.x is None
    assert tr.nfev.dtype == np.int64 and np.isnan(tr.grad_norm).all()
    np.testing.assert_array_equal(tr.nit, [0, 1, 2])
    assert tr.best() == {
        "nit": 1,
        "fun": 1.0,
        "grad_norm": tr.row(1)["grad_norm"],
        "nfev": 3,
        "njev": 3,
        "time": tr.row(1)["time"],
    }
    assert tr.evals_to(1.5) == 3 and tr.evals_to(0.5) is None and tr.evals_to(3.0, by="nit") == 0
    assert [r["fun"] for r in tr] == [3.0, 1.0, 2.0]
    tr.append(0.5, nfev=7, njev=7, time=0.1)
    assert len(tr) == 4 and tr.nit[-1] == 3 and tr.row(-1)["fun"] == 0.5
    assert "demo: 4 rows" in repr(tr) and "Trace(" in repr(Trace())
    with pytest.raises(IndexError, match="4 rows"):
        tr.row(4)
    with pytest.raises(ValueError, match="does not keep x"):
        tr.append(0.1, nfev=8, x={"a": 1})
    with pytest.raises(ValueError, match="nfev has 1 rows; fun has 2"):
        Trace(fun=[1.0, 2.0], nfev=[1])
    with pytest.raises(ValueError, match="by must be"):
        tr.evals_to(1.0, by="time")
    with pytest.raises(ValueError, match="no row with a finite"):
        Trace(fun=[math.nan], nfev=[1]).best()
    kept = Trace()
    kept.append(1.0, nfev=1, x={"a": 1.0})
    with pytest.raises(ValueError, match="keeps x"):
        kept.append(0.5, nfev=2)


def test_to_pandas() -> None:
    pd = pytest.importorskip("pandas")
    res = minimize(rosen_d, {"x": X0}, method="BFGS", trace="x")
    frame = res.trace.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(res.trace)
    assert list(frame.columns) == ["nit", "fun", "grad_norm", "nfev", "njev", "time", "x"]
    np.testing.assert_array_equal(frame["fun"].to_numpy(), res.trace.fun)


def test_trace_is_exported() -> None:
    assert dict_minimize.Trace is Trace
