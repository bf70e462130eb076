"""minimize_batched: every problem equals its sequential minimize; one call per round; the batch
shrinks; failures stay with their problem; minimize_many/multistart(batched=True)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dict_minimize as dm
from dict_minimize._solvers import batched_fast
from tests.conftest import INSTALLED, derandomized, exact_lbfgsb_core, get_framework

pytest.importorskip("greenlet")

GRADIENT_METHODS = ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr")
FIELDS = ("nit", "nfev", "njev", "status", "message", "success")


# -- a NumPy batched objective and its one-problem form (the same arithmetic per row) -------------
def _np_batched(x, idx, target):
    """Rosenbrock-like in w (k, 2) plus a quartic in b (k,), per row."""
    w, b = x["w"], x["b"]
    r = w - target
    value = (
        (r**2).sum(axis=1) + 0.5 * (w[:, 1] - w[:, 0] ** 2) ** 2 + np.cosh(b) + w.sum(axis=1) * b
    )
    gw = 2 * r + w[:, :1] * 0 + b[:, None]
    gw = gw + np.stack([-2 * w[:, 0] * (w[:, 1] - w[:, 0] ** 2), (w[:, 1] - w[:, 0] ** 2)], axis=1)
    gb = np.sinh(b) + w.sum(axis=1)
    return value, {"b": gb, "w": gw}


def _np_single(x, target):
    value, grad = _np_batched(
        {"w": x["w"][None], "b": np.asarray(x["b"])[None]}, np.zeros(1, np.int64), target[None]
    )
    return float(value[0]), {"w": grad["w"][0], "b": grad["b"][0]}


def _problems(B, seed=0):
    rng = np.random.default_rng(seed)
    x0 = {"w": rng.normal(size=(B, 2)), "b": rng.normal(size=B)}
    return x0, rng.normal(size=(B, 2))


def _row(x0, i):
    return {k: v[i] for k, v in x0.items()}


def _equal_leaves(a, b):
    if isinstance(b, dict):
        assert a.keys() == b.keys()
        for k in b:
            _equal_leaves(a[k], b[k])
    elif isinstance(b, list):
        for u, v in zip(a, b, strict=True):
            _equal_leaves(u, v)
    else:
        _close(a, b)


def _close(a, b):
    # "exact": bit for bit on this machine's default BLAS kernel, but SciPy's L-BFGS-B core
    # (and the lean driver's copy of its state) round differently where the kernel's SIMD path
    # depends on the arrays' alignment (OPENBLAS_CORETYPE=Prescott shows ~1e-16 growing to ~1e-11)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def _same(batched, alone, exact):
    for f in FIELDS:
        assert batched[f] == alone[f], (f, batched[f], alone[f])
    if exact:
        assert batched.fun == pytest.approx(alone.fun, rel=1e-10, abs=1e-14)
        _equal_leaves(batched.x, alone.x)
    else:
        assert batched.fun == pytest.approx(alone.fun, rel=1e-10, abs=1e-300)


@exact_lbfgsb_core
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_numpy_vectorized_equals_sequential_bit_for_bit(method):
    x0, target = _problems(5)
    res = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), method=method, jac=True, vectorized=True
    )
    assert isinstance(res, dm.BatchedResult) and len(res.results) == 5
    for i, r in enumerate(res.results):
        alone = dm.minimize(_np_single, _row(x0, i), args=(target[i],), method=method)
        _same(r, alone, exact=True)
        _close(res.x["w"][i], alone.x["w"])
    assert res.x["w"].shape == (5, 2) and res.x["b"].shape == (5,)
    np.testing.assert_array_equal(res.nit, [r.nit for r in res.results])


@exact_lbfgsb_core
def test_generic_path_equals_fast_path(monkeypatch):
    x0, target = _problems(6, seed=3)
    fast = dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)
    monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    generic = dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)
    assert generic.path == "generic"
    for a, b in zip(fast.results, generic.results, strict=True):
        _same(a, b, exact=True)


def test_fast_path_runs_where_scipy_has_it():
    from dict_minimize._solvers.lbfgsb_batch import fast_path_available

    x0, target = _problems(3)
    res = dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)
    assert res.path == ("fast" if fast_path_available() else "generic")


# -- frameworks: vmap of one problem's objective ---------------------------------------------
def _fw_fun(name):
    if name == "torch":
        import torch

        def fun(x, t):
            w, b = x["w"], x["b"]
            r = w - t
            return (r**2).sum() + 0.5 * (w[1] - w[0] ** 2) ** 2 + torch.cosh(b) + w.sum() * b

    elif name == "jax":
        import jax.numpy as jnp

        def fun(x, t):
            w, b = x["w"], x["b"]
            r = w - t
            return (r**2).sum() + 0.5 * (w[1] - w[0] ** 2) ** 2 + jnp.cosh(b) + w.sum() * b

    else:
        import tensorflow as tf

        def fun(x, t):
            w, b = x["w"], x["b"]
            r = w - t
            extra = 0.5 * (w[1] - w[0] ** 2) ** 2 + tf.cosh(b) + tf.reduce_sum(w) * b
            return tf.reduce_sum(r**2) + extra

    return fun


_FW_CASES = [
    (name, method)
    for name in ("torch", "jax")
    if name in INSTALLED
    for method in (*GRADIENT_METHODS, "trust-krylov")
] + [("tensorflow", "L-BFGS-B")] * ("tensorflow" in INSTALLED)


@pytest.mark.parametrize(("name", "method"), _FW_CASES)
def test_frameworks_equal_sequential(name, method):
    fw = get_framework(name)
    with fw.x64():
        x0n, tn = _problems(4, seed=1)
        x0 = {k: fw.tensor(v) for k, v in x0n.items()}
        target = fw.tensor(tn)
        fun = _fw_fun(name)
        res = dm.minimize_batched(fun, x0, batch_args=(target,), method=method)
        for i, r in enumerate(res.results):
            row = {k: fw.tensor(v[i]) for k, v in x0n.items()}
            alone = dm.minimize(fun, row, args=(fw.tensor(tn[i]),), method=method, jac="autodiff")
            _same(r, alone, exact=False)
            for k in alone.x:
                np.testing.assert_allclose(
                    fw.to_numpy(r.x[k]), fw.to_numpy(alone.x[k]), rtol=1e-10, atol=1e-12
                )
        assert fw.type_check(res.x["w"]) and tuple(res.x["w"].shape) == (4, 2)


@pytest.mark.skipif("torch" not in INSTALLED, reason="needs PyTorch")
def test_torch_pair_with_autograd_falls_back_to_rows():
    import torch

    def fun(x, t):  # jac=True written with torch.autograd.grad: not under vmap
        v = ((x["w"] - t) ** 2).sum() + torch.cosh(x["b"])
        g = torch.autograd.grad(v, [x["w"], x["b"]])
        return v, {"w": g[0], "b": g[1]}

    x0n, tn = _problems(3, seed=2)
    x0 = {k: torch.tensor(v) for k, v in x0n.items()}
    res = dm.minimize_batched(fun, x0, batch_args=(torch.tensor(tn),), jac=True)
    for i, r in enumerate(res.results):
        alone = dm.minimize(fun, _row(x0, i), args=(torch.tensor(tn[i]),), method="L-BFGS-B")
        _same(r, alone, exact=True)


# -- bounds, batch_args, the shrinking batch -------------------------------------------------
@exact_lbfgsb_core
def test_per_problem_and_shared_bounds():
    x0, target = _problems(4, seed=4)
    lb_w = np.full((4, 2), -0.3) + np.arange(4)[:, None] * 0.1  # per problem (x0's shape)
    res = dm.minimize_batched(
        _np_batched,
        x0,
        batch_args=(target,),
        jac=True,
        vectorized=True,
        lb_dict={"w": lb_w, "b": -0.2},
        ub_dict={"w": 0.5},
    )
    for i, r in enumerate(res.results):
        alone = dm.minimize(
            _np_single,
            _row(x0, i),
            args=(target[i],),
            method="L-BFGS-B",
            lb_dict={"w": lb_w[i], "b": -0.2},
            ub_dict={"w": 0.5},
        )
        _same(r, alone, exact=True)
        assert (r.x["w"] >= lb_w[i]).all()


def test_bounds_below_above_names_problem():
    x0, target = _problems(2)
    with pytest.raises(ValueError, match=r"lb_dict\['w'\] > ub_dict\['w'\] for problem 1"):
        dm.minimize_batched(
            _np_batched,
            x0,
            batch_args=(target,),
            jac=True,
            vectorized=True,
            lb_dict={"w": np.array([[0.0, 0.0], [2.0, 0.0]])},
            ub_dict={"w": 1.0},
        )


@pytest.mark.parametrize("fast", [True, False])
def test_batch_shrinks_one_call_per_round(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    seen = []

    def fun(x, idx, target):
        seen.append(idx.copy())
        return _np_batched(x, idx, target)

    x0, target = _problems(7, seed=5)
    res = dm.minimize_batched(fun, x0, batch_args=(target,), jac=True, vectorized=True)
    counts = [len(i) for i in seen]
    # round j holds exactly the problems that evaluate at least j + 1 times, never another
    expected = [int((res.nfev > j).sum()) for j in range(int(res.nfev.max()))]
    assert counts == expected == res.rows
    assert counts[0] == 7 and counts == sorted(counts, reverse=True) and counts[-1] >= 1
    for j, idx in enumerate(seen):
        assert set(idx.tolist()) == set(np.flatnonzero(res.nfev > j).tolist())


@pytest.mark.parametrize("fast", [True, False])
def test_max_rows_caps_calls_and_keeps_results(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    x0, target = _problems(7, seed=5)
    full = dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)
    capped = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), jac=True, vectorized=True, max_rows=3
    )
    assert max(capped.rows) == 3 and capped.calls > full.calls
    for a, b in zip(full.results, capped.results, strict=True):
        _same(a, b, exact=True)


# -- failures stay with their problem --------------------------------------------------------
@exact_lbfgsb_core
@pytest.mark.parametrize("fast", [True, False])
def test_failing_row_fails_alone(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    calls = []

    def fun(x, idx, target):
        calls.append(idx.tolist())
        if 2 in idx.tolist() and len(calls) > 3:
            raise ZeroDivisionError("problem 2 breaks")
        return _np_batched(x, idx, target)

    x0, target = _problems(5, seed=6)
    res = dm.minimize_batched(fun, x0, batch_args=(target,), jac=True, vectorized=True)
    bad = res.results[2]
    assert not bad.success and bad.status == -1 and bad.exception == "ZeroDivisionError"
    assert "problem 2 breaks" in bad.message and bad.nfev >= 1
    for i in (0, 1, 3, 4):
        alone = dm.minimize(_np_single, _row(x0, i), args=(target[i],), method="L-BFGS-B")
        _same(res.results[i], alone, exact=True)
    assert not res.success[2] and res.success[[0, 1, 3, 4]].all()


@pytest.mark.parametrize("fast", [True, False])
def test_nonfinite_at_x0_and_raise_policy(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    x0, target = _problems(4, seed=7)
    x0["b"][1] = 800.0  # cosh overflows: not finite at problem 1's x0
    with np.errstate(over="ignore", invalid="ignore"):
        res = dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)
    assert res.results[1].exception == "NonFiniteError" and not res.success[1]
    assert "not finite at x0" in res.results[1].message
    assert res.success[[0, 2, 3]].all()


@pytest.mark.parametrize("fast", [True, False])
def test_time_limit_trace_and_progress(capsys, monkeypatch, fast):
    pytest.importorskip("tqdm")
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    x0, target = _problems(3, seed=8)
    res = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), jac=True, vectorized=True, trace=True,
        progress={"file": sys.stderr},
    )  # fmt: skip
    for i, r in enumerate(res.results):
        alone = dm.minimize(
            _np_single, _row(x0, i), args=(target[i],), method="L-BFGS-B", trace=True
        )
        assert len(r.trace) == len(alone.trace) == r.nit + 1
        _close(r.trace.fun, alone.trace.fun)
    assert "3/3" in capsys.readouterr().err
    stopped = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), jac=True, vectorized=True, time_limit=1e-9
    )
    for r in stopped.results:
        assert not r.success and r.status == 99 and "time limit" in r.message and r.nit == 1


# -- sizes -------------------------------------------------------------------------------------
def test_one_problem():
    x0, target = _problems(1, seed=9)
    res = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), jac=True, vectorized=True, method="BFGS"
    )
    alone = dm.minimize(_np_single, _row(x0, 0), args=(target[0],), method="BFGS")
    _same(res.results[0], alone, exact=True)


def test_no_problems_never_calls_fun():
    def fun(*a):
        raise AssertionError("called")

    res = dm.minimize_batched(
        fun, {"w": np.zeros((0, 2)), "b": np.zeros(0)}, jac=True, vectorized=True
    )
    assert res.results == [] and res.x["w"].shape == (0, 2) and res.x["b"].shape == (0,)
    assert res.calls == 0 and res.fun.shape == (0,)


@derandomized("DM_HYPOTHESIS_BATCHED", 12)
@given(
    B=st.integers(1, 5),
    shapes=st.lists(st.lists(st.integers(1, 3), max_size=2).map(tuple), min_size=1, max_size=3),
    seed=st.integers(0, 100),
)
def test_hypothesis_leaf_shapes(B, shapes, seed):
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in range(len(shapes))]
    x0 = {k: rng.normal(size=(B, *s)) for k, s in zip(keys, shapes, strict=True)}
    centre = {k: rng.normal(size=(B, *s)) for k, s in zip(keys, shapes, strict=True)}

    def batched(x, idx, c):
        value = sum(
            ((x[k] - c[k]) ** 2 + 0.1 * x[k] ** 4).reshape(len(idx), -1).sum(1) for k in keys
        )
        return value, {k: 2 * (x[k] - c[k]) + 0.4 * x[k] ** 3 for k in keys}

    def single(x, c):
        value = sum(float(((x[k] - c[k]) ** 2 + 0.1 * x[k] ** 4).sum()) for k in keys)
        return value, {k: 2 * (x[k] - c[k]) + 0.4 * x[k] ** 3 for k in keys}

    res = dm.minimize_batched(batched, x0, batch_args=(centre,), jac=True, vectorized=True)
    for i, r in enumerate(res.results):
        alone = dm.minimize(single, _row(x0, i), args=(_row(centre, i),), method="L-BFGS-B")
        for f in FIELDS:
            assert r[f] == alone[f]
        assert r.fun == pytest.approx(alone.fun, rel=1e-12, abs=1e-14)


# -- errors ------------------------------------------------------------------------------------
def test_errors_are_clear():
    x0, target = _problems(2)
    kw = {"batch_args": (target,), "jac": True, "vectorized": True}
    with pytest.raises(ValueError, match=r"x0\['s'\] is 0-d"):
        dm.minimize_batched(_np_batched, {"s": np.float64(1.0)}, jac=True, vectorized=True)
    with pytest.raises(ValueError, match="same leading axis"):
        dm.minimize_batched(_np_batched, {"w": np.zeros((2, 2)), "b": np.zeros(3)}, **kw)
    with pytest.raises(ValueError, match="method 'nelder-mead' is not batched"):
        dm.minimize_batched(_np_batched, x0, method="Nelder-Mead", **kw)
    with pytest.raises(ValueError, match=r"jac=.autodiff..*or jac=True"):
        dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac="2-point")
    with pytest.raises(ValueError, match="pass vectorized=True"):
        dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True)
    with pytest.raises(ValueError, match=r"batch_args\[0\] has shape \(3, 2\)"):
        dm.minimize_batched(
            _np_batched, x0, batch_args=(np.zeros((3, 2)),), jac=True, vectorized=True
        )
    with pytest.raises(TypeError, match="does not take constraints"):
        dm.minimize_batched(_np_batched, x0, constraints=(), **kw)
    with pytest.raises(ValueError, match="max_rows"):
        dm.minimize_batched(_np_batched, x0, max_rows=0, **kw)
    # what fun returns is checked per call: a malformed output fails the problems it was for
    res = dm.minimize_batched(
        lambda x, idx, t: (np.zeros((len(idx), 1)), {"w": x["w"], "b": x["b"]}), x0, **kw
    )
    assert not res.success.any()
    assert "returned values of shape (1, 1) for 1 problems" in res.results[0].message


def test_missing_greenlet_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "greenlet", None)
    monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    x0, target = _problems(2)
    with pytest.raises(ImportError, match=r"dict_minimize\[batched\]"):
        dm.minimize_batched(_np_batched, x0, batch_args=(target,), jac=True, vectorized=True)


# -- minimize_many / multistart ----------------------------------------------------------------
@pytest.mark.skipif("torch" not in INSTALLED, reason="needs PyTorch")
def test_minimize_many_and_multistart_batched_equal_unbatched():
    import torch

    def fun(x, t):
        v = ((x["w"] - t) ** 2).sum() + 0.1 * (x["w"] ** 4).sum()
        return v

    rng = np.random.default_rng(11)
    x0s = [{"w": torch.tensor(rng.normal(size=2))} for _ in range(4)]
    args = [(torch.tensor(rng.normal(size=2)),) for _ in range(4)]
    kw = {"jac": "autodiff", "method": "BFGS"}
    plain = dm.minimize_many(fun, x0s, args=args, **kw)
    batched = dm.minimize_many(fun, x0s, args=args, batched=True, **kw)
    for a, b in zip(plain, batched, strict=True):
        _same(b, a, exact=False)
    lb, ub = {"w": -2.0}, {"w": 2.0}
    t = (torch.tensor([0.5, -0.5]),)
    one = dm.multistart(fun, {"w": torch.zeros(2)}, 5, seed=0, lb_dict=lb, ub_dict=ub, args=t,
                        jac="autodiff")  # fmt: skip
    many = dm.multistart(fun, {"w": torch.zeros(2)}, 5, seed=0, lb_dict=lb, ub_dict=ub, args=t,
                         jac="autodiff", batched=True)  # fmt: skip
    assert one.best_index == many.best_index
    for a, b in zip(one.starts, many.starts, strict=True):
        _same(b, a, exact=False)
    with pytest.raises(ValueError, match="one structure"):
        dm.minimize_many(fun, [x0s[0], {"w": torch.zeros(3)}], args=t, batched=True, **kw)


# -- the other forms: jac=True under vmap, vectorized=True with autodiff -----------------------
def _forms(name):
    if name == "tensorflow":
        import tensorflow as tf

        def one(x, t):
            return tf.reduce_sum((x["w"] - t) ** 2) + 0.1 * tf.reduce_sum(x["w"] ** 4)

        def vec(x, idx, t):
            return tf.reduce_sum((x["w"] - t) ** 2, 1) + 0.1 * tf.reduce_sum(x["w"] ** 4, 1)

    else:

        def one(x, t):
            return ((x["w"] - t) ** 2).sum() + 0.1 * (x["w"] ** 4).sum()

        def vec(x, idx, t):
            return ((x["w"] - t) ** 2).sum(1) + 0.1 * (x["w"] ** 4).sum(1)

    def pair(x, t):
        return one(x, t), {"w": 2 * (x["w"] - t) + 0.4 * x["w"] ** 3}

    return one, pair, vec


@pytest.mark.parametrize("name", [n for n in ("torch", "jax", "tensorflow") if n in INSTALLED])
def test_pair_and_vectorized_autodiff_forms(name):
    fw = get_framework(name)
    with fw.x64():
        rng = np.random.default_rng(12)
        x0n, tn = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
        one, pair, vec = _forms(name)
        cases = [
            (pair, {"jac": True}),
            (vec, {"vectorized": True}),
            (vec, {"vectorized": True, "method": "trust-krylov"}),
        ]
        for fun, kw in cases:
            res = dm.minimize_batched(fun, {"w": fw.tensor(x0n)}, batch_args=(fw.tensor(tn),), **kw)
            for i, r in enumerate(res.results):
                alone = dm.minimize(
                    one,
                    {"w": fw.tensor(x0n[i])},
                    args=(fw.tensor(tn[i]),),
                    method=kw.get("method", "L-BFGS-B"),
                    jac="autodiff",
                )
                _same(r, alone, exact=False)


def test_nested_x0_and_bounds_by_path():
    rng = np.random.default_rng(13)
    B = 3
    x0 = {
        "layer": {"w": rng.normal(size=(B, 2)), "b": rng.normal(size=B)},
        "s": [rng.normal(size=(B, 1))],
    }

    def batched(x, idx):
        w, b, s = x["layer"]["w"], x["layer"]["b"], x["s"][0]
        value = (w**2).sum(1) + (b - 1) ** 2 + (s**2 + 0.1 * s**4).sum(1)
        return value, {"layer": {"w": 2 * w, "b": 2 * (b - 1)}, "s": [2 * s + 0.4 * s**3]}

    def single(x):
        v, g = batched(
            {
                "layer": {"w": x["layer"]["w"][None], "b": x["layer"]["b"][None]},
                "s": [x["s"][0][None]],
            },
            None,
        )
        return float(v[0]), {
            "layer": {"w": g["layer"]["w"][0], "b": g["layer"]["b"][0]},
            "s": [g["s"][0][0]],
        }

    lb_b = np.array([2.0, -5.0, 1.5])  # per problem, by path
    res = dm.minimize_batched(
        batched, x0, jac=True, vectorized=True, lb_dict={"layer": {"b": lb_b}}
    )
    for i, r in enumerate(res.results):
        row = {"layer": {"w": x0["layer"]["w"][i], "b": x0["layer"]["b"][i]}, "s": [x0["s"][0][i]]}
        alone = dm.minimize(single, row, method="L-BFGS-B", lb_dict={"layer": {"b": lb_b[i]}})
        _same(r, alone, exact=True)
    np.testing.assert_allclose(res.x["layer"]["b"], [2.0, 1.0, 1.5], atol=1e-6)
    assert isinstance(res.x["s"], list) and res.x["s"][0].shape == (B, 1)


@pytest.mark.parametrize("fast", [True, False])
def test_keyboard_interrupt_returns_each_best_point(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    calls = []

    def fun(x, idx, target):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return _np_batched(x, idx, target)

    x0, target = _problems(3, seed=14)
    res = dm.minimize_batched(fun, x0, batch_args=(target,), jac=True, vectorized=True)
    for r in res.results:
        assert not r.success and r.status == -1 and "KeyboardInterrupt" in r.message
        assert np.isfinite(r.fun) and r.nfev >= 1


@pytest.mark.parametrize("fast", [True, False])
def test_nonfinite_raise_mid_run_fails_that_problem_alone(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    seen = {"n": 0}

    def fun(x, idx, target):
        value, grad = _np_batched(x, idx, target)
        seen["n"] += 1
        if seen["n"] >= 3:  # problem 1 turns NaN from its third evaluation on
            value = np.where(idx == 1, np.nan, value)
        return value, grad

    x0, target = _problems(3, seed=15)
    res = dm.minimize_batched(
        fun, x0, batch_args=(target,), jac=True, vectorized=True, nonfinite="raise"
    )
    bad = res.results[1]
    assert bad.exception == "NonFiniteError" and "evaluation 3" in bad.message
    assert bad.nfev == 3 and np.isfinite(bad.fun)  # the best point before it
    for i in (0, 2):
        alone = dm.minimize(_np_single, _row(x0, i), args=(target[i],), method="L-BFGS-B")
        _same(res.results[i], alone, exact=True)


@pytest.mark.parametrize("fast", [True, False])
def test_callback_per_problem_equals_sequential(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)

    def callback(intermediate_result):  # stop a problem once its value is below 1
        if intermediate_result.fun < 1.0:
            raise StopIteration

    x0, target = _problems(4, seed=16)
    res = dm.minimize_batched(
        _np_batched, x0, batch_args=(target,), jac=True, vectorized=True, callback=callback
    )
    for i, r in enumerate(res.results):
        alone = dm.minimize(
            _np_single, _row(x0, i), args=(target[i],), method="L-BFGS-B", callback=callback
        )
        _same(r, alone, exact=True)
    assert (res.status == 99).any()


@pytest.mark.skipif("tensorflow" not in INSTALLED, reason="needs TensorFlow")
def test_tensorflow_pair_with_its_own_tape_runs_vectorized():
    import tensorflow as tf

    def pair(x, t):
        with tf.GradientTape() as tape:
            tape.watch(x["w"])
            v = tf.reduce_sum((x["w"] - t) ** 2) + 0.1 * tf.reduce_sum(x["w"] ** 4)
        return v, {"w": tape.gradient(v, x["w"])}

    rng = np.random.default_rng(17)
    x0n, tn = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    res = dm.minimize_batched(
        pair, {"w": tf.constant(x0n)}, batch_args=(tf.constant(tn),), jac=True
    )
    for i, r in enumerate(res.results):
        alone = dm.minimize(
            pair, {"w": tf.constant(x0n[i])}, args=(tf.constant(tn[i]),), method="L-BFGS-B"
        )
        _same(r, alone, exact=False)


@pytest.mark.skipif("jax" not in INSTALLED, reason="needs JAX")
def test_jax_compiles_once_per_fun_and_signature():
    import jax
    import jax.numpy as jnp

    traces = []

    def fun(x, t, scale):
        traces.append(1)  # runs only while JAX traces
        return scale * ((x["w"] - t) ** 2).sum() + 0.1 * (x["w"] ** 4).sum()

    with jax.enable_x64(True):
        rng = np.random.default_rng(18)
        x0 = {"w": jnp.asarray(rng.normal(size=(4, 2)))}
        t = jnp.asarray(rng.normal(size=(4, 2)))
        first = dm.minimize_batched(fun, x0, batch_args=(t,), args=(2.0,))
        n = len(traces)
        again = dm.minimize_batched(fun, x0, batch_args=(t * 1.5,), args=(3.0,))  # new data
        assert len(traces) == n and first.success.all() and again.success.all()
        assert not np.allclose(np.asarray(first.x["w"]), np.asarray(again.x["w"]))


def _nan_above(x, idx, target):
    """_np_batched, not finite where b > -0.2 (the runs step there and back off)."""
    value, grad = _np_batched(x, idx, target)
    return np.where(x["b"] > -0.2, np.nan, value), grad


def _nan_above_single(x, target):
    value, grad = _np_single(x, target)
    return (np.nan if x["b"] > -0.2 else value), grad


@exact_lbfgsb_core
@pytest.mark.parametrize("fast", [True, False])
def test_nonfinite_mid_run_goes_on_as_sequential(monkeypatch, fast):
    """nonfinite='inf': a problem whose run meets non-finite points mid-run leaves the fast
    path's array counts for its own Objective, and ends exactly as its sequential solve."""
    if not fast:
        monkeypatch.setattr(batched_fast, "available", lambda *a: False)
    x0, target = _problems(6, seed=21)
    x0["b"][:] = -1.5
    with pytest.warns(RuntimeWarning, match="not finite"):
        res = dm.minimize_batched(_nan_above, x0, batch_args=(target,), jac=True, vectorized=True)
    assert sum(r.nonfinite_count for r in res.results) > 0
    for i, r in enumerate(res.results):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            alone = dm.minimize(
                _nan_above_single, _row(x0, i), args=(target[i],), method="L-BFGS-B"
            )
        _same(r, alone, exact=True)
        assert r.nonfinite_count == alone.nonfinite_count
        _close(res.x["w"][i], alone.x["w"])


def test_fast_path_follows_the_threads_policy(monkeypatch):
    """threads=None leaves SciPy's BLAS alone during the fast path; threads=1 caps it."""
    from dict_minimize import _threads

    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.delenv(_threads.OLD_ENV_VAR, raising=False)
    ctl = _threads._controller("scipy")
    if ctl is None or not ctl.info():
        pytest.skip("no threadpoolctl or no BLAS library of SciPy's to read")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    def fun(x, idx, target):
        seen.append(max(lib["num_threads"] for lib in ctl.info()))
        return _np_batched(x, idx, target)

    x0, target = _problems(3, seed=22)
    with threadpoolctl.threadpool_limits(2):
        for threads in (None, 1):
            seen.clear()
            res = dm.minimize_batched(
                fun, x0, batch_args=(target,), jac=True, vectorized=True, threads=threads
            )
            assert res.path == "fast" and set(seen) == {2 if threads is None else 1}


@pytest.mark.parametrize("name", [n for n in ("torch", "jax") if n in INSTALLED])
def test_fast_path_result_leaves_as_per_problem_conversion(monkeypatch, name):
    """The results' x and jac leaves, converted for the whole batch at once, are those each
    problem's own conversion makes (type, dtype, shape, values), float32 leaves included;
    PyTorch leaves own their memory."""
    fw = get_framework(name)
    with fw.x64():
        x0n, tn = _problems(4, seed=2)
        x0 = {"w": fw.tensor(x0n["w"]), "b": fw.tensor(x0n["b"].astype(np.float32))}
        fun = _fw_fun(name)
        bulk = dm.minimize_batched(fun, x0, batch_args=(fw.tensor(tn),))
        monkeypatch.setattr(batched_fast, "_give_leaves", lambda *a: None)
        each = dm.minimize_batched(fun, x0, batch_args=(fw.tensor(tn),))
    assert bulk.path == each.path == "fast"
    for a, b in zip(bulk.results, each.results, strict=True):
        for field in ("x", "jac"):
            for k in ("w", "b"):
                u, v = a[field][k], b[field][k]
                assert type(u) is type(v) and u.dtype == v.dtype and u.shape == v.shape
                np.testing.assert_array_equal(fw.to_numpy(u), fw.to_numpy(v))
                if name == "torch":
                    assert u.untyped_storage().nbytes() == u.numel() * u.element_size()


@pytest.mark.parametrize("name", INSTALLED)
def test_the_backend_record_pickles_with_its_batch_hook(name: str) -> None:
    # SciPy's workers= (least_squares, differential evolution...) pickle the objective, and the
    # objective holds its backend record: the lazy batch hook must pickle too
    import pickle

    from dict_minimize.backends import get_backend

    be = get_backend(name)
    again = pickle.loads(pickle.dumps(be.batch))
    assert repr(again) == repr(be.batch) == f"lazy_batch({name!r})"
